"""The documentation site: every page builds offline, loads nothing from the network, links resolve, plots and widgets render,
search finds the error text, phones get one readable column, every page has previous/next, long pages a table of contents.

The site is built by `python tools/docs.py` (tools/test.sh runs it before pytest); a missing or incomplete `_site/` is built here.
Tests write only to temporary folders; `python tools/docs.py --screenshots` is the command that writes screenshots/."""
import functools, http.server, json, shutil, subprocess, sys, threading
from pathlib import Path
from urllib.parse import urlsplit
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/"tools"))
import docs  # noqa: E402

@pytest.fixture(scope="module")
def site():
    """The built site (tools/test.sh builds it just before pytest); built now when missing. A page missing from an older build
    fails test_every_page_builds rather than silently rebuilding here."""
    info = docs.SITE/"build.json"
    if not info.exists():
        p = subprocess.run([sys.executable, str(ROOT/"tools"/"docs.py")], capture_output=True, text=True, timeout=900)
        assert (docs.SITE/"build.json").exists(), p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads(info.read_text())

# ---------------------------------------------------------------- structure, without a browser
def _listed(contents):
    for i in contents:
        if isinstance(i, str): yield i
        elif "section" in i: yield from _listed(i["contents"])
        else: yield i["href"]

def test_sidebar_lists_every_page(tmp_path):
    "Pages come from the files in nbs/, not a fixed list: a new notebook or how-to appears in its section."
    shutil.copytree(docs.NBS, tmp_path/"nbs", ignore=shutil.ignore_patterns("*.ipynb_checkpoints"))
    (tmp_path/"nbs"/"howto"/"new_trick.ipynb").write_text((docs.NBS/"howto"/"int4.ipynb").read_text())
    (tmp_path/"nbs"/"12_future.ipynb").write_text((docs.NBS/"00_spec.ipynb").read_text())
    sb = docs.sidebar(tmp_path/"nbs")["website"]["sidebar"]["contents"]
    assert set(_listed(sb)) == set(docs.sources(tmp_path/"nbs"))
    sections = {i["section"]: list(_listed(i["contents"])) for i in sb if isinstance(i, dict)}
    assert sb[0] == "index.ipynb"
    assert "howto/new_trick.ipynb" in sections["How-to"] and "12_future.ipynb" in sections["API reference"]
    assert {"Tutorials", "How-to", "API reference"} <= set(sections)

def test_sidebar_lists_each_page_once():
    "A page appears in one section only (tutorial-like API pages are reached from the navbar and prose, not listed twice)."
    listed = list(_listed(docs.sidebar()["website"]["sidebar"]["contents"]))
    assert len(listed) == len(set(listed)), [s for s in listed if listed.count(s) > 1]
    assert docs.page_order(docs.sidebar()) == listed

def test_navbar_entries_open_their_pages():
    "The navbar (from _quarto.yml, which Quarto reads too) points at pages that exist; Tutorials opens a tutorial."
    nav = dict(docs.navbar())
    assert nav["Tutorials"].startswith("tutorials/") and nav["Compatibility"].startswith("11_doctor.ipynb#")
    for text, href in nav.items(): assert (docs.NBS/href.partition("#")[0]).exists(), (text, href)

def test_committed_sidebar_is_current():
    "nbs/sidebar.yml (what Quarto reads) matches the notebooks; `python tools/docs.py --sidebar` rewrites it."
    import yaml
    assert yaml.safe_load((docs.NBS/"sidebar.yml").read_text()) == docs.sidebar(), "run: python tools/docs.py --sidebar"

def test_every_page_builds(site):
    errors = {s: p["error"] for s, p in site["pages"].items() if p["error"]}
    assert not errors, "\n\n".join(f"nbs/{s}:\n{e[-1500:]}" for s, e in errors.items())
    for s in docs.sources():
        assert s in site["pages"], f"nbs/{s} has no page"
        assert (docs.SITE/site["pages"][s]["html"]).exists(), site["pages"][s]["html"]

def test_pages_and_sections(site):
    "Home, the tutorials and how-tos this issue asks for, and an API page per numbered notebook."
    html = {p["html"] for p in site["pages"].values()}
    assert {"index.html", "tutorials/export_mistral_7b.html", "tutorials/train_embedded.html", "howto/choose_route.html",
            "howto/int4.html", "howto/execution_providers.html", "howto/versions_doctor.html", "howto/troubleshooting.html"} <= html
    api = [s for s in docs.sources() if s[0].isdigit()]
    assert api and all(site["pages"][s]["section"] == "API reference" for s in api)

def test_api_pages_render_show_doc(site):
    "Exported functions appear with their signature and docments table (nbdev's show_doc)."
    spec = (docs.SITE/"spec.html").read_text()
    assert 'id="kv_cache_bytes"' in spec and "tokens held in the cache" in spec      # a docments comment of kv_cache_bytes
    export = (docs.SITE/"export.html").read_text()
    assert 'id="export"' in export and "folder to create" in export

def test_flagged_cells_are_not_run(site):
    "gpu/slow/train cells are skipped as nbdev-test skips them; the Mistral-7B tutorial shows them as code."
    p = site["pages"]["tutorials/export_mistral_7b.ipynb"]
    assert set(p["skipped"].values()) == {"gpu"} and p["executed"] > 5
    page = (docs.SITE/"tutorials/export_mistral_7b.html").read_text()
    assert "mistralai/Mistral-7B-Instruct-v0.3" in page and "tropxe" in page     # the real command shown, the embedded run's answer

def test_gpu_cells_say_they_were_not_run(site):
    "A skipped GPU cell carries a visible note, and the tutorial states what to expect from the saved GPU results."
    page = (docs.SITE/"tutorials/export_mistral_7b.html").read_text()
    assert page.count("Not run here: this cell needs a GPU") == 2 and "NVIDIA" in page
    res = json.loads((docs.NBS/"tutorials"/"gpu_results.json").read_text())
    tok = res["stages"]["bench_int4"]["default"]["rows"][0]["decode_tok_s"]
    assert f"{tok:.0f} tokens/s" in page and "host memory (peak)" in page and "GPU memory (peak)" in page

def test_tables_with_pipes_render_as_tables(site):
    "A `|` inside a cell (`max |diff|`) is escaped: the GPU page's validation tables are <table>s, not a run-on line of pipes."
    from bs4 import BeautifulSoup
    soup = BeautifulSoup((docs.SITE/"tutorials/gpu_benchmark.html").read_text(), "html.parser")
    assert not [p for p in soup.find_all("p") if p.get_text().count("|") > 6]
    assert any("max |diff|" in td.get_text() for td in soup.find_all("td"))

def test_titles_are_plain_text(site):
    "Backticks in a notebook's title are code in the heading and gone from the browser tab and the sidebar."
    from bs4 import BeautifulSoup
    for p in site["pages"].values():
        soup = BeautifulSoup((docs.SITE/p["html"]).read_text(), "html.parser")
        assert "`" not in soup.title.get_text() and "`" not in soup.find(id="page-title").get_text(), p["html"]
        assert "`" not in soup.select_one(".mo-sidebar").get_text(), p["html"]

def test_plotly_js_served_once(site):
    "Pages with figures load site_libs/plotly.min.js instead of inlining 5 MB each."
    figs = [p["html"] for p in site["pages"].values() if "plotly-graph-div" in (docs.SITE/p["html"]).read_text()]
    assert figs
    for h in figs:
        text = (docs.SITE/h).read_text()
        assert "site_libs/plotly.min.js" in text and "plotly.js v" not in text and len(text) < 2_000_000, h
    assert (docs.SITE/"site_libs"/"plotly.min.js").stat().st_size > 1_000_000

def test_site_furniture(site):
    "Favicon, version, search index, previous/next on every page, a table of contents where a page has more than three sections."
    assert (docs.SITE/"favicon.svg").exists() and (docs.SITE/"pagefind"/"pagefind-ui.js").exists()
    home = (docs.SITE/"index.html").read_text()
    assert f"v{docs.version()}" in home and 'rel="icon"' in home
    problems = [p for p in docs.check_site() if "previous/next" in p or "table of contents" in p]
    assert not problems, "\n".join(problems)

def test_no_machine_paths_or_log_noise(site):
    "No page shows this machine's paths (site-packages, .venv/..., /work/...) or more than MAX_LOG_LINES lines of logs."
    problems = [p for p in docs.check_site() if "machine path" in p or "log lines" in p]
    assert not problems, "\n".join(problems)

def test_no_network_scripts_or_styles(site):
    problems = [p for p in docs.check_site() if "network" in p]
    assert not problems, "\n".join(problems)

def test_internal_links_resolve(site):
    problems = [p for p in docs.check_site() if "broken" in p]
    assert not problems, "\n".join(problems)

def test_check_catches_cdn_and_missing_page(site, tmp_path, monkeypatch):
    "The checker is not a rubber stamp: a CDN script, a CDN stylesheet, a broken link and a missing page are each reported."
    copy = tmp_path/"site"
    shutil.copytree(docs.SITE, copy)
    page = copy/"howto"/"int4.html"
    page.write_text(page.read_text().replace("</head>", '<script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script>'
                    '<link rel="stylesheet" href="//cdn.jsdelivr.net/x.css"></head>').replace("</main>", '<a href="nowhere.html">x</a></main>')
                    .replace('class="mo-pager"', 'class="mo-gone"')
                    .replace('<footer', '<pre>File "/work/main/.venv/lib/python3.11/site-packages/torch/x.py"</pre><footer')
                    .replace("</main>", '<div data-mime-type="application/vnd.jupyter.stderr"><pre>' + "INFO x\n" * 11 + "</pre></div></main>"))
    (copy/"howto"/"choose_route.html").unlink()
    problems = docs.check_site(copy)
    assert any("script from the network: https://cdn.plot.ly" in p for p in problems), problems
    assert any("style from the network: //cdn.jsdelivr.net" in p for p in problems), problems
    assert any("broken link nowhere.html" in p for p in problems), problems
    assert any("page missing: howto/choose_route.html" in p for p in problems), problems
    assert any("howto/int4.html: machine path" in p and "site-packages" in p for p in problems), problems
    assert any("howto/int4.html: 11 log lines" in p for p in problems), problems
    assert any("howto/int4.html: no previous/next" in p for p in problems), problems

# ---------------------------------------------------------------- in a browser
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.fixture(scope="module")
def served(site, tmp_path_factory):
    "The site and a tampered copy (widget manager and plotly.js pointed at CDNs), served on 127.0.0.1."
    bad = tmp_path_factory.mktemp("bad")/"site"
    shutil.copytree(docs.SITE, bad)
    w = bad/"tutorials"/"export_mistral_7b.html"
    w.write_text(w.read_text().replace("../site_libs/html-manager/embed-amd.js", "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.15/dist/embed-amd.js"))
    servers = {}
    for name, d in (("site", docs.SITE), ("bad", bad)):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(d)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers[name] = (srv, f"http://127.0.0.1:{srv.server_address[1]}/")
    yield {k: u for k, (s, u) in servers.items()}
    for s, _ in servers.values(): s.shutdown()

def _open(browser, url, wait_for, width=1280):
    "Open `url` with every non-local request blocked and recorded; wait for `wait_for`; return (found, blocked, errors).\n\n    `errors` holds uncaught page errors and local files that answered 404."
    page = browser.new_page(viewport={"width": width, "height": 900})
    blocked, errors = [], []
    def route(r):
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"): r.continue_()
        else: blocked.append(r.request.url); r.abort()
    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    try: page.wait_for_selector(wait_for, timeout=20_000); found = page.locator(wait_for).count()
    except Exception: found = 0
    page.close()
    return found, blocked, errors

@pytest.mark.browser
def test_browser_home_plot_widget(served):
    from browser import browser
    url = served["site"]
    with browser() as b:
        found, blocked, errors = _open(b, url + "index.html", ".mo-sidebar a.active")
        assert found and not blocked and not errors, (blocked, errors)
        # plotly.js ran: the figure div got its SVG from plotly.js shipped inside the page
        found, blocked, errors = _open(b, url + "howto/int4.html", ".plotly-graph-div .main-svg")
        assert found >= 1 and not blocked and not errors, (found, blocked, errors)
        # the widget manager ran: the saved progress bar became a live ipywidgets view
        found, blocked, errors = _open(b, url + "tutorials/export_mistral_7b.html", ".jupyter-widgets.widget-hprogress")
        assert found >= 1 and not blocked and not errors, (found, blocked, errors)

@pytest.mark.browser
def test_browser_every_plot_and_widget_page(served, site):
    "Every page that carries a plotly figure or widget state renders it offline."
    from browser import browser
    url = served["site"]
    checks = []
    for p in site["pages"].values():
        text = (docs.SITE/p["html"]).read_text()
        if "plotly-graph-div" in text: checks.append((p["html"], ".plotly-graph-div .main-svg"))
        if "application/vnd.jupyter.widget-view+json" in text: checks.append((p["html"], ".jupyter-widgets"))
    assert len(checks) >= 2, checks
    bad = []
    with browser() as b:
        for html, sel in checks:
            found, blocked, errors = _open(b, url + html, sel)
            if not found or blocked or errors: bad.append((html, sel, found, blocked, errors[:3]))
    assert not bad, bad

@pytest.mark.browser
def test_browser_check_fails_on_cdn(served):
    "The same check fails when a page would load the widget manager from a CDN: the request is caught and nothing renders."
    from browser import browser
    with browser() as b:
        found, blocked, _ = _open(b, served["bad"] + "tutorials/export_mistral_7b.html", ".jupyter-widgets.widget-hprogress")
    assert blocked and "cdn.jsdelivr.net" in blocked[0] and found == 0

@pytest.mark.browser
def test_browser_search_finds_the_error_text(served):
    "Typing the error's words into the home page's search box lists the diagnosis page (Pagefind, offline)."
    from browser import browser
    with browser() as b:
        page = b.new_page()
        page.goto(served["site"] + "index.html", wait_until="load")
        page.fill(".pagefind-ui__search-input", "Expected size")
        page.wait_for_selector(".pagefind-ui__result-link", timeout=20_000)
        links = page.eval_on_selector_all(".pagefind-ui__result-link", "els => els.map(e => e.getAttribute('href'))")
    assert any(l.split("#")[0].endswith("/diagnose.html") for l in links), links

@pytest.mark.browser
def test_browser_phone_width(served, site):
    "At 390 px no page scrolls sideways and the text column is at least 300 px wide."
    from browser import browser
    bad = []
    with browser() as b:
        page = b.new_page(viewport={"width": 390, "height": 844})
        for p in site["pages"].values():
            page.goto(served["site"] + p["html"], wait_until="load")
            m = page.evaluate("""() => ({scroll: document.documentElement.scrollWidth, view: innerWidth,
                                 text: Math.max(...[...document.querySelectorAll('.mo-content .jp-RenderedMarkdown p')].map(e => e.getBoundingClientRect().width), 0)})""")
            if m["scroll"] > m["view"] or m["text"] < 300: bad.append((p["html"], m))
    assert not bad, bad

@pytest.mark.browser
def test_browser_copy_buttons_and_dark_mode(served):
    "Code cells get a copy button that copies the code; the theme switch turns the page dark, and it stays dark on the next page."
    from browser import browser
    with browser() as b:
        ctx = b.new_context(permissions=["clipboard-read", "clipboard-write"])
        page = ctx.new_page()
        page.goto(served["site"] + "spec.html", wait_until="load")
        assert page.locator(".jp-CodeCell .mo-copy").count() >= 3
        page.locator(".jp-CodeCell .mo-copy").first.click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.strip() and copied.strip() in page.locator(".jp-CodeCell .jp-InputArea-editor pre").first.inner_text()
        light = page.evaluate("getComputedStyle(document.body).backgroundColor")
        page.click(".mo-theme")
        dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
        page.goto(served["site"] + "index.html", wait_until="load")
        assert light != dark and page.evaluate("document.documentElement.dataset.theme") == "dark"
        ctx.close()

@pytest.mark.browser
def test_screenshots_command_writes_where_told(site, tmp_path):
    "`python tools/docs.py --screenshots` writes screenshots/; the function writes wherever it is told (here a temp folder)."
    files = docs.screenshots(docs.SITE, tmp_path)
    assert {f.name for f in files} == {n for n, *_ in docs.SHOT_LIST} and all(f.stat().st_size > 10_000 for f in files)
