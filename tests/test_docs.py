"""The documentation site: every page builds offline, loads nothing from the network, links resolve, plots and widgets render.

The site is built by `python tools/docs.py` (tools/test.sh runs it before pytest); a missing or incomplete `_site/` is built here."""
import functools, http.server, json, shutil, subprocess, sys, threading
from pathlib import Path
from urllib.parse import urlsplit
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/"tools"))
import docs  # noqa: E402

SHOTS = ROOT/"screenshots"

@pytest.fixture(scope="module")
def site():
    "The built site (tools/test.sh builds it just before pytest); built now when missing or when a notebook has no page."
    info = docs.SITE/"build.json"
    if not info.exists() or set(json.loads(info.read_text())["pages"]) != set(docs.sources()):
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
                    '<link rel="stylesheet" href="//cdn.jsdelivr.net/x.css"></head>').replace("</main>", '<a href="nowhere.html">x</a></main>'))
    (copy/"howto"/"choose_route.html").unlink()
    problems = docs.check_site(copy)
    assert any("script from the network: https://cdn.plot.ly" in p for p in problems), problems
    assert any("style from the network: //cdn.jsdelivr.net" in p for p in problems), problems
    assert any("broken link nowhere.html" in p for p in problems), problems
    assert any("page missing: howto/choose_route.html" in p for p in problems), problems

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

def _open(browser, url, wait_for, shot=None):
    "Open `url` with every non-local request blocked and recorded; wait for `wait_for`; return (found, blocked, errors).\n\n    `errors` holds uncaught page errors and local files that answered 404."
    page = browser.new_page(viewport={"width": 1280, "height": 900})
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
    if shot:
        el = page.locator(wait_for).first if found else None
        if el: el.scroll_into_view_if_needed()
        SHOTS.mkdir(exist_ok=True); page.screenshot(path=str(SHOTS/shot))
    page.close()
    return found, blocked, errors

@pytest.mark.browser
def test_browser_home_plot_widget(served):
    from browser import browser
    url = served["site"]
    with browser() as b:
        found, blocked, errors = _open(b, url + "index.html", ".mo-sidebar a.active", "docs-home.png")
        assert found and not blocked and not errors, (blocked, errors)
        # plotly.js ran: the figure div got its SVG from plotly.js shipped inside the page
        found, blocked, errors = _open(b, url + "howto/int4.html", ".plotly-graph-div .main-svg", "docs-plot.png")
        assert found >= 1 and not blocked and not errors, (found, blocked, errors)
        # the widget manager ran: the saved progress bar became a live ipywidgets view
        found, blocked, errors = _open(b, url + "tutorials/export_mistral_7b.html", ".jupyter-widgets.widget-hprogress", "docs-widget.png")
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
