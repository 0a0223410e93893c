"""Build the documentation site offline, from the notebooks, and check it.

    python tools/docs.py                # build _site/ (about 6.5 CPU-minutes, mostly the notebooks), then check; exit 1 on any problem
    python tools/docs.py --check        # only check an existing _site/
    python tools/docs.py --sidebar      # only regenerate nbs/sidebar.yml (run before `nbdev-docs` if you have Quarto)
    python tools/docs.py --screenshots  # write screenshots/docs-*.png from the built _site/ (headless Chromium)
    python -m http.server -d _site      # read it: search needs http://, not file://

Quarto cannot be installed on our machines (the `quarto-cli` wheel downloads its binary at install time), so `nbdev-docs`
stays the command for users who have it (`_quarto.yml` asks Quarto for the same search, table of contents, page navigation,
copy buttons and dark mode), and this is the build we run and test. Libraries do the work wherever one does it:
nbdev processes the notebooks, nbclient runs them, nbconvert's JupyterLab template renders them (its light and dark
themes are the page themes), Pagefind indexes the site for offline search, the widget manager and require.js render
saved widget state, plotly.js is plotly's own bundle, served once. Our code is the shell around the pages (navbar,
sidebar, breadcrumbs, table of contents, previous/next), a few lines of script (theme switch, copy buttons), and checks.

1. `nbs/sidebar.yml` is generated from the notebooks that exist (home, Tutorials, How-to, API reference), each page
   once; Quarto reads the same file (`custom_sidebar = true` in pyproject). The navbar comes from `_quarto.yml`.
2. nbdev's `proc_nbs` (the work of `nbdev-proc-nbs`, without its attempt to download Quarto) writes `_proc/`:
   frontmatter, `show_doc` for every exported symbol (docments tables), hidden/exported cells removed, doc links.
3. Each notebook is executed (a copy; the sources are never written), with cells flagged `gpu`/`slow`/`train` skipped
   as `nbdev-test` skips them and their saved outputs kept (the page says they were not run here). Noise is turned down
   at its source with the libraries' own switches (`TRANSFORMERS_VERBOSITY`, `TQDM_DISABLE`, ...); nothing is deleted.
4. nbconvert renders each processed notebook to HTML; `postprocess` makes links local, gives headings Quarto's ids,
   adds the table of contents and loads plotly.js from `site_libs/` instead of inlining it in every page.
5. Pagefind (npm, pinned) indexes `_site/` into `_site/pagefind/`; the search box is Pagefind's own UI.
6. `check_site` verifies: every notebook has a page, nothing loads from the network, every internal link (and #anchor)
   resolves, no machine paths, at most 10 log lines a page, previous/next links, a table of contents on long pages.
   `_site/build.json` records each page's time, skipped cells and errors.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time, tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from urllib.parse import urlsplit, unquote

ROOT = Path(__file__).resolve().parent.parent
NBS, PROC, SITE = ROOT/"nbs", ROOT/"_proc", ROOT/"_site"
NPM_DIR = ROOT/"build"/"docs-npm"
NPM_PACKAGES = {"@jupyter-widgets/html-manager": "1.0.15", "requirejs": "2.3.8", "pagefind": "1.6.0"}
"npm packages, pinned: the widget manager (ipywidgets 8 state), the AMD loader it needs, and Pagefind (search index and UI)"
SHOTS = ROOT/"screenshots"
KERNEL_ENV = {"TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
              "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore::FutureWarning"}
"Each library's own switch for its chatter, set in the kernels that run the notebooks (the libraries read them at import)"
MAX_LOG_LINES = 10
"Most stderr lines a page may show"
MACHINE_PATH_RE = re.compile(r"(?:/work/|/home/\w+/|/root/)[\w./+-]*|[\w./-]*site-packages[\w./-]*|[\w./-]*/\.venv/[\w./-]*")
"Paths of the machine that built the page (install commands like `python -m venv .venv` are fine)"

def _cfg() -> dict: return tomllib.loads((ROOT/"pyproject.toml").read_text())["tool"]["nbdev"]
def skip_flags() -> tuple: return tuple(_cfg().get("tst_flags", "").split())
def site_url() -> str:
    m = re.search(r'site-url:\s*"?([^"\n]+)"?', (NBS/"nbdev.yml").read_text())
    return m.group(1).rstrip("/") + "/" if m else ""

# ---------------------------------------------------------------- 1. pages and the sidebar
TUTORIALS = ("tutorials/export_mistral_7b", "tutorials/gpu_benchmark", "tutorials/train_embedded")
"Reading order of the Tutorials section; other notebooks in nbs/tutorials follow"

def sources(nbs:Path=NBS) -> list:
    "Every page source under `nbs/`: notebooks and .md files, skipping `_`/`.` names as nbdev does."
    out = []
    for p in sorted(nbs.rglob("*")):
        rel = p.relative_to(nbs)
        if p.suffix not in (".ipynb", ".md") or any(s.startswith(("_", ".")) for s in rel.parts): continue
        if ".ipynb_checkpoints" in rel.parts: continue
        out.append(rel.as_posix())
    return out

def sidebar(nbs:Path=NBS) -> dict:
    "The sidebar as Quarto's `website.sidebar.contents`, from the pages that exist, each page once."
    srcs = sources(nbs)
    stem = {s.rsplit(".", 1)[0]: s for s in srcs}
    tut = [stem[t] for t in TUTORIALS if t in stem] + [s for s in srcs if s.startswith("tutorials/") and s.rsplit(".", 1)[0] not in TUTORIALS]
    howto = [s for s in srcs if s.startswith("howto/")]
    api = [s for s in srcs if "/" not in s and re.match(r"\d", s)]
    other = [s for s in srcs if s not in tut + howto + api and s.rsplit(".", 1)[0] != "index"]
    contents = [stem["index"]] if "index" in stem else []
    for name, items in (("Tutorials", tut), ("How-to", howto), ("API reference", api), ("More", other)):
        if items: contents.append({"section": name, "contents": items})
    return {"website": {"sidebar": {"contents": contents}}}

def page_order(sb:dict) -> list:
    "Every source the sidebar lists, in reading order (the order of previous/next)."
    def walk(items):
        for i in items:
            if isinstance(i, str): yield i
            elif "section" in i: yield from walk(i["contents"])
            elif i.get("href"): yield i["href"]
    return list(dict.fromkeys(walk(sb["website"]["sidebar"]["contents"])))

def navbar(nbs:Path=NBS) -> list:
    "The navbar's (text, source#fragment) pairs, from `_quarto.yml` (Quarto reads the same entries)."
    import yaml
    nav = (yaml.safe_load((nbs/"_quarto.yml").read_text()).get("website", {}).get("navbar") or {})
    return [(i["text"], i["href"]) for i in nav.get("left", []) if isinstance(i, dict) and i.get("href")]

def version() -> str:
    "The package version, read from `mistral_onnx/__init__.py` (nbdev keeps it there)."
    m = re.search(r'__version__\s*=\s*"([^"]+)"', (ROOT/"mistral_onnx"/"__init__.py").read_text())
    return m.group(1) if m else "?"

def write_sidebar(nbs:Path=NBS) -> Path:
    import yaml
    text = "# generated by tools/docs.py from the notebooks in nbs/; do not edit\n" + yaml.safe_dump(sidebar(nbs), sort_keys=False)
    p = nbs/"sidebar.yml"
    if not p.exists() or p.read_text() != text: p.write_text(text)
    return p

# ---------------------------------------------------------------- 2. nbdev's processing
def _light_eval(cell):
    "nbdev's choice of cells to run for `show_doc`, less the cells that mix imports with other work (we execute those in step 3)."
    import ast, nbdev.processors as P
    ok = P._do_eval_nbdev(cell)
    if not ok or cell.directives_.keys() & {"export", "exports", "exporti", "exec_doc"} or P._show_docs(cell.parsed_()): return ok
    return all(isinstance(t, (ast.Import, ast.ImportFrom)) for t in cell.parsed_())

def _proc_one(job):
    "Process one notebook the way `nbdev-proc-nbs` does (nbdev's `FilterDefaults` processors); return an error or None."
    src, dst = job
    import nbdev.processors as P, nbdev.serve_drv
    if not hasattr(P, "_do_eval_nbdev"): P._do_eval_nbdev, P._do_eval = P._do_eval, _light_eval
    try: nbdev.serve_drv.main((Path(src), Path(dst), P.FilterDefaults)); return None
    except Exception as e: return f"nbdev could not process it: {type(e).__name__}: {e}"[:3000]

def process(n_workers:int=2) -> dict:
    """`nbdev-proc-nbs` into _proc/, with nbdev's own pieces; return {source: error} for notebooks it could not process.

    Three differences from calling the command: it does not try to download Quarto (nbdev does when `quarto` is missing),
    one notebook's error does not stop the others, and `show_doc` set-up runs only exported, import-only and `show_doc`
    cells (nbdev also runs cells that mix imports with other work, which here means whole exports; step 3 runs them anyway)."""
    import multiprocessing, nbdev.quarto, nbdev.doclinks
    from nbdev.serve import _proc_file, _rm_stale
    from nbdev.config import get_config
    cwd = os.getcwd(); os.chdir(ROOT)
    try:
        nbdev.quarto.refresh_quarto_yml()            # nbs/nbdev.yml from pyproject; _quarto.yml is kept
        nbdev.doclinks._build_modidx()
        cfg = get_config()
        chk = max(cfg.config_file.stat().st_mtime, Path(nbdev.quarto.__file__).stat().st_mtime)
        if PROC.exists() and PROC.stat().st_mtime < chk: shutil.rmtree(PROC)
        PROC.mkdir(exist_ok=True)
        _rm_stale(PROC, NBS)
        files = [f for f in sorted(NBS.rglob("*")) if f.is_file() and not any(x.startswith(("_proc", ".")) for x in f.relative_to(NBS).parts[:-1])]
        jobs, errors = [], {}
        for f in files:
            rel = f.relative_to(NBS)
            if any(x.startswith(".") for x in rel.parts) or ".ipynb_checkpoints" in rel.parts: continue
            if f.suffix == ".ipynb" and rel.as_posix() not in sources(): continue
            if f.name.startswith("_") and f.name not in ("_quarto.yml", "_brand.yml") and not f.name.startswith("_metadata"): continue
            r = _proc_file(f, cache=PROC, path=NBS)
            if r: jobs.append((str(r[0]), str(r[1])))
        with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for (src, dst), err in zip(jobs, pool.map(_proc_one, jobs)):
                if err:
                    errors[Path(src).relative_to(NBS).as_posix()] = err
                    Path(dst).unlink(missing_ok=True)
        PROC.touch()
    finally: os.chdir(cwd)
    return errors

# ---------------------------------------------------------------- 3. execution
def _directives(src:str) -> dict:
    "The `#| ...` lines at the top of a cell: {'gpu': '', 'eval': 'false', ...}."
    out = {}
    for line in src.splitlines():
        line = line.strip()
        if not line: continue
        if not line.startswith("#|"): break
        body = line[2:].strip()
        for w in ([body] if ":" in body else body.split()):
            k, _, v = w.partition(":")
            out[k.strip()] = v.strip()
    return out

def skipped(cell, flags=None) -> str|None:
    "Why a code cell is not run for the docs (a flag it carries, or `eval: false`), else None."
    d = _directives(cell.source)
    for f in flags or skip_flags():
        if f in d: return f
    if d.get("eval", "").lower() == "false": return "eval: false"
    return None

CACHE = ROOT/"build"/"docs-exec"

def _cache_key(rel:str) -> str:
    "Hash of what a notebook's outputs depend on here: the notebook, the package's code and the embedded model."
    import hashlib
    h = hashlib.sha256((NBS/rel).read_bytes())
    for f in sorted((ROOT/"mistral_onnx").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts: h.update(f.name.encode()); h.update(f.read_bytes())
    return h.hexdigest()[:20]

def execute_cached(rel:str, use_cache:bool=False) -> dict:
    "`execute`, reusing a clean earlier run of the same inputs when `use_cache` (`--cache`: for editing docs, never for CI)."
    f = CACHE/f"{rel.replace('/', '__')}.{_cache_key(rel)}.json" if use_cache else None
    if f and f.exists(): return {**json.loads(f.read_text()), "cached": True}
    r = execute(rel)
    if f and not r["error"]: f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(r))
    return r

def execute(rel:str, timeout:int=300) -> dict:
    "Execute a copy of nbs/`rel` (cwd = its folder, as nbdev-test does); return outputs by cell id, widget state, timing."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    src = NBS/rel
    nb = nbformat.read(src, as_version=4)
    flags = skip_flags()
    skips = {c.id: skipped(c, flags) for c in nb.cells if c.cell_type == "code"}
    run = [i for i, why in skips.items() if why is None and nb.cells[[c.id for c in nb.cells].index(i)].source.strip()]
    res = dict(rel=rel, seconds=0.0, executed=len(run), skipped={i: w for i, w in skips.items() if w}, error=None, outputs={}, widgets=None)
    if not run: return res

    class Client(NotebookClient):
        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if cell.cell_type == "code" and skips.get(cell.id): return cell      # flagged: keep the saved outputs
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    os.environ["PLOTLY_RENDERER"] = "notebook"        # this worker's kernel inherits it: figures work offline (postprocess serves plotly.js once)
    os.environ.update(KERNEL_ENV)
    os.environ.pop("IN_TEST", None)
    t0 = time.time()
    client = Client(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(src.parent)}},
                    store_widget_state=True, record_timing=False)
    try: client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e: res["error"] = str(e)[-3000:]
    except Exception as e: res["error"] = f"{type(e).__name__}: {e}"[-3000:]
    res["seconds"] = round(time.time() - t0, 1)
    res["outputs"] = {c.id: (c.get("outputs", []), c.get("execution_count")) for c in nb.cells
                      if c.cell_type == "code" and not skips.get(c.id)}
    res["widgets"] = nb.metadata.get("widgets")
    return json.loads(json.dumps(res, default=str))

# ---------------------------------------------------------------- 4. rendering
def frontmatter(nb) -> dict:
    "The YAML frontmatter nbdev puts in a raw first cell (title, description, output-file)."
    import yaml
    if nb.cells and nb.cells[0].cell_type == "raw" and nb.cells[0].source.startswith("---"):
        try: return yaml.safe_load(nb.cells[0].source.strip().strip("-")) or {}
        except Exception: return {}
    return {}

def page_path(rel:str, fm:dict) -> str:
    "Where a source's page lands in the site: its `output-file` beside it, else its path with .html."
    p = Path(rel)
    return (p.parent/fm["output-file"]).as_posix() if fm.get("output-file") else p.with_suffix(".html").as_posix()

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ATTR_RE = re.compile(r"(\]\([^)\s]*\))\{[^}\n]*\}")            # Quarto link attributes: [source](url){target="_blank" ...}
PLOTLY_JS_RE = re.compile(r"\s*/\*\*?\s*\*?\s*plotly\.js v\d")
TOC_MIN = 3
"Pages with more headings (h2, h3) than this get an on-page table of contents"
MATHJAX_CDN_RE = re.compile(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"></script>')

SKIP_NOTE = {"gpu": '<div class="mo-note">Not run here: this cell needs a GPU (<code>#| gpu</code>; <code>nbdev-test --flags gpu</code> runs it). '
                     'Any output or figures next to it come from a saved GPU run, which the page names.</div>',
             "slow": '<div class="mo-note">Not run here: a long cell (<code>#| slow</code>); any output shown is from a saved run.</div>',
             "train": '<div class="mo-note">Not run here: training (<code>#| train</code>, minutes of CPU); the output shown is from the saved run.</div>',
             "other": '<div class="mo-note">Not run here (<code>{flag}</code>); any output shown is from a saved run.</div>'}
"The note a page shows above a cell the docs build does not run"

def clean(nb, run:dict|None):
    "A processed notebook made ready for nbconvert: executed outputs in, Quarto-only metadata and directives out."
    import nbformat
    fm = frontmatter(nb)
    if fm: nb.cells = nb.cells[1:]
    outs, skips = (run or {}).get("outputs", {}), (run or {}).get("skipped", {})
    keep = []
    for c in nb.cells:
        c.pop("has_sd", None)
        c.metadata.pop("execution", None)                       # nbdev writes numeric `total` timings nbformat rejects
        if c.cell_type == "markdown":
            if "AUTOGENERATED! DO NOT EDIT" in c.source: continue
            c.source = ATTR_RE.sub(r"\1", c.source)
        if c.cell_type != "code": keep.append(c); continue
        if c.get("id") in outs:
            o, n = outs[c.id]
            c.outputs = [nbformat.from_dict(x) for x in o]; c.execution_count = n
        d = _directives(c.source)
        if d.get("include", "").lower() == "false": continue
        if d.get("output", "").lower() == "false": c.outputs = []
        c.source = "\n".join(l for l in c.source.splitlines() if not l.lstrip().startswith("#|")).strip("\n")
        if d.get("echo", "").lower() == "false": c.metadata.setdefault("tags", []).append("remove_input")
        for o in c.get("outputs", []):
            for k in ("text/markdown", "text/html"):
                if k in o.get("data", {}): o["data"][k] = ATTR_RE.sub(r"\1", "".join(o["data"][k])) if k == "text/markdown" else "".join(o["data"][k])
        if not c.source and not c.get("outputs"): continue
        if re.search(r"^\s*(test_eq|test_fail|test_ne|test_close|test_is|assert)\b", c.source, re.M): c.metadata.setdefault("tags", []).append("mo-test")
        if skips.get(c.get("id")):
            keep.append(nbformat.v4.new_markdown_cell(SKIP_NOTE.get(skips[c.id], SKIP_NOTE["other"]).format(flag=skips[c.id])))
            c.metadata.setdefault("tags", []).append("mo-not-run")
        keep.append(c)
    nb.cells = keep
    if run and run.get("widgets"): nb.metadata["widgets"] = run["widgets"]
    elif not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])):
        nb.metadata.pop("widgets", None)                       # empty state: no widget manager on the page
    return nb, fm

TEMPLATE = r"""{%- extends "index.html.j2" -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block notebook_css %}
{%- set r = resources.site.root -%}
<link rel="stylesheet" href="{{ r }}site_libs/jupyterlab/index.css">
<link rel="stylesheet" id="mo-jp-light" href="{{ r }}site_libs/jupyterlab/theme-light.css">
<link rel="stylesheet" id="mo-jp-dark" href="{{ r }}site_libs/jupyterlab/theme-dark.css">
<script>/* before the first paint: the reader's choice, else the system's */
(function(){var t=localStorage.getItem("mo-theme")||(matchMedia("(prefers-color-scheme: dark)").matches?"dark":"light");
document.documentElement.dataset.theme=t;document.getElementById(t==="dark"?"mo-jp-light":"mo-jp-dark").disabled=true;})();</script>
{% endblock notebook_css %}
{% block extra_css %}
<link rel="icon" type="image/svg+xml" href="{{ resources.site.root }}favicon.svg">
<link rel="stylesheet" href="{{ resources.site.root }}pagefind/pagefind-ui.css">
<link rel="stylesheet" href="{{ resources.site.root }}styles.css">
{% endblock extra_css %}
{%- block body_header -%}
{%- set s = resources.site -%}
<body class="jp-Notebook mo-site" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light" data-root="{{ s.root }}">
<header class="mo-navbar">
<a class="mo-brand" href="{{ s.root }}index.html"><img src="{{ s.root }}favicon.svg" alt="" width="22" height="22">{{ s.name }}</a>
<span class="mo-version" title="package version">v{{ s.version }}</span>
<nav class="mo-nav" aria-label="sections">{% for text, href, active in s.navbar %}<a href="{{ href }}"{% if active %} aria-current="true"{% endif %}>{{ text | e }}</a>{% endfor %}</nav>
<div id="mo-search" class="mo-search" role="search"></div>
<button class="mo-theme" type="button" aria-label="switch light or dark theme" title="light / dark">&#9680;</button>
</header>
<div class="mo-layout">
<nav class="mo-sidebar" aria-label="pages"><details class="mo-menu" open><summary>Pages</summary>{{ s.sidebar }}</details></nav>
<main class="mo-content" data-pagefind-body>
<nav class="mo-crumbs" aria-label="breadcrumbs" data-pagefind-ignore><a href="{{ s.root }}index.html">Home</a>{% if s.section != "Home" %} › <span>{{ s.section }}</span>{% endif %} › <span>{{ s.title_text | e }}</span></nav>
<header class="mo-title"><h1 class="title" id="page-title">{{ s.title_html }}</h1>
{% if s.description %}<p class="description">{{ s.description }}</p>{% endif %}</header>
<nav id="mo-toc" class="mo-toc" aria-label="on this page" data-pagefind-ignore></nav>
{%- endblock body_header -%}
{% block body_footer %}
{%- set s = resources.site -%}
<nav class="mo-pager" aria-label="previous and next" data-pagefind-ignore>
{% if s.prev %}<a class="mo-prev" rel="prev" href="{{ s.prev[1] }}"><small>Previous</small>{{ s.prev[0] | e }}</a>{% else %}<span></span>{% endif %}
{% if s.next %}<a class="mo-next" rel="next" href="{{ s.next[1] }}"><small>Next</small>{{ s.next[0] | e }}</a>{% endif %}
</nav>
<footer class="mo-footer" data-pagefind-ignore>mistral_onnx {{ s.version }}. Built offline by <code>tools/docs.py</code> from <code>nbs/{{ s.source }}</code>.</footer>
</main></div>
<script src="{{ s.root }}pagefind/pagefind-ui.js"></script>
<script src="{{ s.root }}site_libs/site.js"></script>
</body>
{% endblock body_footer %}
"""

SITE_JS = r"""// The site's only script of our own: theme switch, copy buttons, search box, menus folded on phones.
(function () {
  var root = document.body.dataset.root || "";
  function setTheme(t) {
    document.documentElement.dataset.theme = t; localStorage.setItem("mo-theme", t);
    document.getElementById("mo-jp-light").disabled = t === "dark"; document.getElementById("mo-jp-dark").disabled = t !== "dark";
    document.body.dataset.jpThemeLight = String(t !== "dark");
  }
  setTheme(document.documentElement.dataset.theme || "light");
  document.querySelector(".mo-theme").addEventListener("click", function () {
    setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
  });
  document.querySelectorAll(".jp-CodeCell .jp-InputArea-editor").forEach(function (ed) {
    var b = document.createElement("button"); b.type = "button"; b.className = "mo-copy"; b.textContent = "Copy";
    b.setAttribute("aria-label", "copy this code");
    b.addEventListener("click", function () {
      var text = ed.querySelector("pre").innerText, done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done);
      else { var t = document.createElement("textarea"); t.value = text; document.body.appendChild(t); t.select(); document.execCommand("copy"); t.remove(); done(); }
    });
    ed.appendChild(b);
  });
  if (window.PagefindUI) new PagefindUI({ element: "#mo-search", showSubResults: true, showImages: false, resetStyles: false,
                                          baseUrl: new URL(root || "./", location.href).pathname });
  if (matchMedia("(max-width: 900px)").matches) document.querySelectorAll("details.mo-menu, details.mo-toc-box").forEach(function (d) { d.open = false; });
})();
"""

def _md_inline(s:str) -> str:
    import mistune
    html = mistune.html(str(s)).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", html, flags=re.S)

def sidebar_html(pages:dict, here:str) -> str:
    "The sidebar as nested lists, links relative to page `here`."
    import yaml
    root = "../" * here.count("/")
    def link(item):
        src, text = (item, None) if isinstance(item, str) else (item.get("href"), item.get("text"))
        p = pages.get(src)
        if not p: return ""
        cls = ' class="active" aria-current="page"' if p["html"] == here else ""
        text = text or ("Home" if p["html"] == "index.html" else p["title"])
        return f'<li><a{cls} href="{root}{p["html"]}">{_md_inline(plain(text))}</a></li>'
    parts = ["<ul>"]
    for item in yaml.safe_load((NBS/"sidebar.yml").read_text())["website"]["sidebar"]["contents"]:
        if isinstance(item, dict) and "section" in item:
            parts.append(f'<li class="mo-section"><span>{_esc(item["section"])}</span><ul>' + "".join(map(link, item["contents"])) + "</ul></li>")
        else: parts.append(link(item))
    return "".join(parts + ["</ul>"])

def _esc(s): import html; return html.escape(str(s))

def plain(md:str) -> str:
    "A title as plain text (for the browser tab and links): markdown's backticks and stars dropped."
    return re.sub(r"[`*]", "", str(md))

def render(nb, fm:dict, rel:str, pages:dict, template_dir:Path, order:list|None=None) -> str:
    "One page's HTML."
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    here = pages[rel]["html"]; root = "../" * here.count("/")
    c = Config()
    c.TagRemovePreprocessor.remove_input_tags = {"remove_input"}
    c.TagRemovePreprocessor.enabled = True
    ex = HTMLExporter(config=c, template_file="docs.html.j2", template_name="lab", extra_template_paths=[str(template_dir)],
                      exclude_input_prompt=True, exclude_output_prompt=True,
                      require_js_url=root + "site_libs/require.js",
                      widget_renderer_url=root + "site_libs/html-manager/embed-amd.js", mathjax_url="")
    def link(src):
        href, _, frag = src.partition("#")
        p = pages.get(href)
        return root + p["html"] + (f"#{frag}" if frag else "") if p else None
    nav = [(t, link(h), h.partition("#")[0] == rel) for t, h in navbar()]
    order = order or []
    i = order.index(rel) if rel in order else None
    near = lambda j: (plain(pages[order[j]]["title"]) if pages[order[j]]["html"] != "index.html" else "Home", link(order[j])) \
        if i is not None and 0 <= j < len(order) and order[j] in pages else None
    title = fm.get("title") or Path(rel).stem
    site = dict(root=root, name=_cfg().get("title", "docs"), version=version(), title_html=_md_inline(title), title_text=plain(title),
                description=_md_inline(fm["description"]) if fm.get("description") else "", source=rel, section=pages[rel]["section"],
                sidebar=sidebar_html(pages, here), navbar=[(t, h, a) for t, h, a in nav if h],
                prev=near(i - 1) if i else None, next=near(i + 1) if i is not None else None)
    body, _ = ex.from_notebook_node(nb, resources={"site": site, "metadata": {"name": plain(title)}})
    return body

def _section_of(rel:str, sb:dict) -> str:
    "The sidebar section a page belongs to: where it is listed by path, else where it is linked."
    items = [(it["section"], i) for it in sb["website"]["sidebar"]["contents"] if isinstance(it, dict) and "section" in it for i in it["contents"]]
    return next((sec for sec, i in items if i == rel), None) or next((sec for sec, i in items if isinstance(i, dict) and i.get("href") == rel), "Home")

def pandoc_id(text:str) -> str:
    "The id Quarto (pandoc) gives a heading, which nbdev's doc links point at: lowercase, spaces to dashes."
    s = re.sub(r"[^\w\s.\-]", "", text.strip().lower())
    return re.sub(r"\s+", "-", s) or "section"

def heading_ids(nb) -> set:
    "The ids the page's headings will get (markdown cells and markdown outputs such as show_doc's)."
    texts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    texts += ["".join(o["data"]["text/markdown"]) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    return {pandoc_id(re.sub(r"[`*]", "", m)) for t in texts for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", t, re.M)}

def postprocess(html:str, here:str, pages:dict, base_url:str, anchors:dict|None=None, repaired:list|None=None) -> str:
    "Links made local (site URL and .ipynb links to pages), Quarto-style heading ids, plotly's MathJax CDN tag removed."
    from bs4 import BeautifulSoup
    html = MATHJAX_CDN_RE.sub("", html)   # plotly 7's HTML renderer hard-codes a MathJax <script> from a CDN; figures need it only for LaTeX labels
    soup = BeautifulSoup(html, "html.parser")
    root = "../" * here.count("/")
    by_src = {rel: p["html"] for rel, p in pages.items()}
    renamed, seen = {}, set()
    toc = []
    for h in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        if h.get("id") == "page-title": continue
        new = pandoc_id(h.get_text().replace("¶", ""))
        while new in seen: new += "-1"
        seen.add(new)
        if h.get("id"): renamed["#" + h["id"]] = "#" + new
        h["id"] = new
        if h.name in ("h2", "h3") and not h.find_parent(class_="mo-title"): toc.append((h.name, h.get_text().replace("¶", "").strip(), new))
    box = soup.find(id="mo-toc")
    if box is not None and len(toc) > TOC_MIN:       # Quarto's `toc: true`: h2 and h3, on pages with more than TOC_MIN sections
        items = "".join(f'<li class="mo-toc-{n}"><a href="#{i}">{_esc(t)}</a></li>' for n, t, i in toc)
        box.append(BeautifulSoup(f'<details class="mo-toc-box" open><summary>On this page</summary><ul>{items}</ul></details>', "html.parser"))
    elif box is not None: box.decompose()
    for sc in soup.find_all("script"):               # plotly's notebook renderer inlines plotly.js (5 MB) once per page: load the site's copy
        if not sc.get("src") and sc.string and PLOTLY_JS_RE.match(sc.string):
            sc.string = ""; sc["src"] = root + "site_libs/plotly.min.js"
    for a in soup.find_all("a", href=True):
        href = a["href"]
        if base_url and href.startswith(base_url):            # nbdev's doc links point at the published site
            href = root + href[len(base_url):]
            page, _, frag = href[len(root):].partition("#")
            if frag and anchors is not None and page in anchors and frag not in anchors[page]:
                href = root + page                              # a symbol without a show_doc section (private or patched)
                if repaired is not None: repaired.append(f"{here}: {a['href']} -> {href}")
        parts = urlsplit(href)
        if not parts.scheme and not href.startswith(("#", "//")) and parts.path.endswith((".ipynb", ".md")):
            target = (Path(here).parent/unquote(parts.path)).as_posix()
            target = os.path.normpath(target)
            src = next((s for s in by_src if s == target), None)
            if src: href = os.path.relpath(by_src[src], Path(here).parent.as_posix() or ".") + (f"#{parts.fragment}" if parts.fragment else "")
        a["href"] = renamed.get(href, href)
    return str(soup)

# ---------------------------------------------------------------- 5. static files
def npm_libs(dest:Path) -> dict:
    "Install the pinned npm packages into build/docs-npm (once) and copy what the pages load into `dest`."
    mods = NPM_DIR/"node_modules"
    want = [mods/"@jupyter-widgets/html-manager/dist/embed-amd.js", mods/"requirejs/require.js", mods/".bin"/"pagefind"]
    def installed(): 
        try: return {n: json.loads((mods/n/"package.json").read_text())["version"] for n in NPM_PACKAGES}
        except FileNotFoundError: return {}
    if installed() != NPM_PACKAGES or not all(p.exists() for p in want):
        npm = shutil.which("npm")
        if not npm: raise SystemExit("docs: npm is needed to install the widget manager and require.js. Fix: `apt-get install -y npm` (or install Node.js).")
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        cmd = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", "--prefix", str(NPM_DIR)] + \
              [f"{n}@{v}" for n, v in NPM_PACKAGES.items()]
        print("$ " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0: raise SystemExit(f"docs: npm install failed (exit {p.returncode}):\n{p.stderr[-2000:]}\nFix: check that the npm registry is reachable.")
    (dest/"html-manager").mkdir(parents=True, exist_ok=True)
    for f in (mods/"@jupyter-widgets/html-manager/dist").iterdir():
        if f.suffix != ".map" and f.name not in ("embed.js", "libembed-amd.js"): shutil.copy2(f, dest/"html-manager"/f.name)
    shutil.copy2(mods/"requirejs/require.js", dest/"require.js")
    return installed()

def site_files(out:Path):
    "The files every page shares: JupyterLab's CSS (light and dark themes, from nbconvert), plotly.js, our script, styles, favicon."
    import plotly
    from jupyter_core.paths import jupyter_path
    lab = next(Path(d) for d in jupyter_path("nbconvert", "templates", "lab", "static") if (Path(d)/"index.css").exists())
    (out/"site_libs"/"jupyterlab").mkdir(parents=True, exist_ok=True)
    for f in ("index.css", "theme-light.css", "theme-dark.css"): shutil.copy2(lab/f, out/"site_libs"/"jupyterlab"/f)
    shutil.copy2(Path(plotly.__file__).parent/"package_data"/"plotly.min.js", out/"site_libs"/"plotly.min.js")
    (out/"site_libs"/"site.js").write_text(SITE_JS)
    for f in ("styles.css", "favicon.svg"): shutil.copy2(NBS/f, out/f)

def pagefind(site:Path) -> str:
    "Index the built site with Pagefind (its UI and index land in site/pagefind/); return what it printed last."
    exe = NPM_DIR/"node_modules"/".bin"/"pagefind"
    p = subprocess.run([str(exe), "--site", str(site), "--output-subdir", "pagefind", "--exclude-selectors", ".anchor-link, .mo-copy"],
                       capture_output=True, text=True)
    if p.returncode != 0: raise SystemExit(f"docs: pagefind failed (exit {p.returncode}):\n{(p.stdout + p.stderr)[-2000:]}")
    return [l for l in p.stdout.splitlines() if l.strip()][-1] if p.stdout.strip() else ""

def widget_fonts(out:Path, dirs:set):
    """The widget manager's icon font, where it looks for it.

    embed-amd.js resolves its webpack chunks (Font Awesome's font files) against the page's own folder, under
    `@jupyter-widgets/` and `@jupyter-widgets/html-manager/dist/`, not against its script; without these copies every widget
    page has 404s (and icons on buttons are blank). The browser asks for woff2 first, so only woff2 files are copied."""
    fonts = [f for f in (out/"site_libs"/"html-manager").iterdir() if f.suffix == ".woff2"]
    for d in dirs:
        for sub in ("@jupyter-widgets", "@jupyter-widgets/html-manager/dist"):
            (out/d/sub).mkdir(parents=True, exist_ok=True)
            for f in fonts: shutil.copy2(f, out/d/sub/f.name)

# ---------------------------------------------------------------- 6. checks
def check_site(site:Path=SITE) -> list:
    "Problems with a built site: missing pages, network scripts/styles, broken internal links or anchors."
    from bs4 import BeautifulSoup
    problems = []
    info = json.loads((site/"build.json").read_text()) if (site/"build.json").exists() else None
    if info is None: return [f"{site}/build.json missing: run python tools/docs.py"]
    for s in sources():
        if s not in info["pages"]: problems.append(f"page missing: nbs/{s} has no page (build again)")
        elif not (site/info["pages"][s]["html"]).exists(): problems.append(f"page missing: {info['pages'][s]['html']} (from nbs/{s})")
    ids, soups = {}, {}
    for f in sorted(site.rglob("*.html")):
        if "site_libs" in f.parts or "pagefind" in f.parts: continue
        rel = f.relative_to(site).as_posix()
        soup = BeautifulSoup(f.read_text(), "html.parser")
        soups[rel] = soup
        ids[rel] = {t["id"] for t in soup.find_all(id=True)} | {t["name"] for t in soup.find_all("a", attrs={"name": True})}
    for rel, soup in soups.items():
        for t in soup.find_all("script", src=True):
            if urlsplit(t["src"]).scheme or t["src"].startswith("//"): problems.append(f"{rel}: script from the network: {t['src']}")
        for t in soup.find_all("link", href=True):
            if "stylesheet" in (t.get("rel") or []) or t.get("as") in ("script", "style", "font"):
                if urlsplit(t["href"]).scheme or t["href"].startswith("//"): problems.append(f"{rel}: style from the network: {t['href']}")
        for t in soup.find_all("style"):
            for u in re.findall(r"@import\s+(?:url\()?['\"]?((?:https?:)?//[^'\")\s]+)", t.get_text()): problems.append(f"{rel}: @import from the network: {u}")
        for t in soup.find_all(["img", "iframe", "source"], src=True):
            if urlsplit(t["src"]).scheme in ("http", "https"): problems.append(f"{rel}: {t.name} from the network: {t['src']}")
        for t in soup.find_all(["a", "link", "script", "img"]):
            ref = t.get("href") or t.get("src")
            if not ref or t.name == "link" and ref.startswith("http"): continue
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("//", "mailto:", "javascript:", "data:")): continue
            target = rel if not parts.path else os.path.normpath((Path(rel).parent/unquote(parts.path)).as_posix())
            if not (site/target).exists(): problems.append(f"{rel}: broken link {ref}"); continue
            if parts.fragment and target in ids and parts.fragment not in ids[target]: problems.append(f"{rel}: broken anchor {ref}")
    for rel, soup in soups.items():
        if "pagefind" in Path(rel).parts: continue
        text = soup.get_text(" ")
        for m in sorted(set(MACHINE_PATH_RE.findall(text)))[:3]: problems.append(f"{rel}: machine path on the page: {m}")
        logs = sum(len(e.get_text().strip().splitlines()) for e in soup.select('[data-mime-type="application/vnd.jupyter.stderr"]'))
        if logs > MAX_LOG_LINES: problems.append(f"{rel}: {logs} log lines (stderr) on the page, more than {MAX_LOG_LINES}: quiet them at their source")
        if soup.find(class_="mo-content") is not None:
            pager = soup.select(".mo-pager a[href]")
            if not pager: problems.append(f"{rel}: no previous/next link")
            n = len([h for h in soup.select(".mo-content h2, .mo-content h3") if not h.find_parent(class_="mo-title")])
            if n > TOC_MIN and not soup.select(".mo-toc a[href]"): problems.append(f"{rel}: {n} sections and no table of contents")
    for rel, p in info["pages"].items():
        if p.get("error"): problems.append(f"nbs/{rel} did not build: {[l for l in p['error'].splitlines() if l.strip()][-1][:200]} (see _site/build.json)")
    return problems

# ---------------------------------------------------------------- screenshots
SHOT_LIST = (("docs-home-1366.png", "index.html", 1366, None), ("docs-home-390.png", "index.html", 390, None),
             ("docs-search.png", "index.html", 1366, "search"), ("docs-diagnose.png", "diagnose.html", 1366, None),
             ("docs-7b-tutorial.png", "tutorials/export_mistral_7b.html", 1366, "#what-to-expect-on-a-gpu"),
             ("docs-diagram.png", "kv_cache.html", 1366, ".jp-RenderedSVG"), ("docs-dark.png", "diagnose.html", 1366, "dark"),
             ("docs-plot.png", "howto/int4.html", 1366, ".plotly-graph-div"),
             ("docs-widget.png", "tutorials/export_mistral_7b.html", 1366, ".jupyter-widgets.widget-hprogress"))
"(file, page, viewport width, what to show: a selector scrolled to, 'search' typed, or 'dark' theme)"

def serve(site:Path):
    "Serve `site` on 127.0.0.1 from a thread; return (server, base URL)."
    import functools, http.server, threading
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"

def screenshots(site:Path=SITE, dest:Path=SHOTS) -> list:
    "PNG screenshots of the built site in headless Chromium (tests/browser.py finds it), written to `dest`."
    sys.path.insert(0, str(ROOT/"tests"))
    from browser import browser
    srv, url = serve(site)
    dest.mkdir(parents=True, exist_ok=True); out = []
    try:
        with browser() as b:
            for name, page, width, what in SHOT_LIST:
                pg = b.new_page(viewport={"width": width, "height": 900 if width > 500 else 844})
                if what == "dark": pg.add_init_script("localStorage.setItem('mo-theme', 'dark')")
                pg.goto(url + page, wait_until="load")
                if what == "search":
                    pg.fill(".pagefind-ui__search-input", "Expected size")
                    pg.wait_for_selector(".pagefind-ui__result-link", timeout=15_000)
                elif what and what != "dark":
                    pg.wait_for_selector(what, timeout=15_000); pg.locator(what).first.evaluate(f"e => e.scrollIntoView({{block: '{'start' if what[0] == '#' else 'center'}'}})")
                pg.wait_for_timeout(300)
                pg.screenshot(path=str(dest/name)); out.append(dest/name); pg.close()
    finally: srv.shutdown()
    return out

# ---------------------------------------------------------------- the command
def build(n_workers:int=2, out:Path=SITE, only:list|None=None, use_cache:bool=False) -> dict:
    "Build the whole site into `out`; return the build record (also written to out/build.json)."
    import nbformat, yaml
    t0 = time.time()
    write_sidebar()
    print("== nbdev-proc-nbs (nbdev's processing into _proc/)", flush=True)
    proc_errors = process(n_workers)
    for k, v in proc_errors.items(): print(f"   {k}: {v.splitlines()[-1][:200]}", flush=True)
    srcs = [s for s in sources() if not only or s in only]
    print(f"== executing {len(srcs)} notebooks after {time.time() - t0:.0f} s of processing ({n_workers} at a time)", flush=True)
    runs = {}
    nb_srcs = [s for s in srcs if s.endswith(".ipynb")]
    import multiprocessing
    with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:   # fresh processes: nbdev's processing left state a fork would copy
        futs = {pool.submit(execute_cached, s, use_cache): s for s in sorted(nb_srcs, key=_cost_hint)}
        for f in as_completed(futs):
            s = futs[f]
            try: runs[s] = f.result()
            except Exception as e: runs[s] = dict(rel=s, seconds=0, executed=0, skipped={}, error=f"{type(e).__name__}: {e}", outputs={}, widgets=None)
            r = runs[s]
            print(f"   {s}: {r['executed']} cells in {r['seconds']:.0f} s" + (" (cached)" if r.get("cached") else "") + f", {len(r['skipped'])} skipped" + (" - ERROR: " + ANSI_RE.sub("", r["error"]).strip().splitlines()[-1][:200] if r["error"] else ""), flush=True)
    print(f"== rendering ({time.time() - t0:.0f} s so far)", flush=True)
    if out.exists(): shutil.rmtree(out)
    (out/"site_libs").mkdir(parents=True)
    npm = npm_libs(out/"site_libs")
    site_files(out)
    sb = yaml.safe_load((NBS/"sidebar.yml").read_text())
    order = page_order(sb)
    pages, nbs = {}, {}
    for s in srcs:
        p = PROC/s
        if s.endswith(".md"):
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell((NBS/s).read_text())])
            m = re.match(r"^---\n(.*?)\n---\n", nb.cells[0].source, re.S)
            fm = yaml.safe_load(m.group(1)) if m else {}
            if m: nb.cells[0].source = nb.cells[0].source[m.end():]
            h1 = re.search(r"^# (.+)$", nb.cells[0].source, re.M)
            if h1 and not fm.get("title"): fm["title"] = h1.group(1); nb.cells[0].source = nb.cells[0].source.replace(h1.group(0), "", 1)
            nbs[s] = (nb, fm)
        else:
            if p.exists() and s not in proc_errors: nb = nbformat.read(p, as_version=4)
            else: nb = nbformat.read(NBS/s, as_version=4)      # nbdev could not process it: show the source and say so
            nb, fm = clean(nb, runs.get(s))
            if not fm:
                h1 = next((c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# ")), None)
                fm = {"title": h1.source.splitlines()[0][2:] if h1 else Path(s).stem}
            nbs[s] = (nb, fm)
        r = runs.get(s, {})
        err = proc_errors.get(s) or r.get("error")
        if err: err = ANSI_RE.sub("", err)
        pages[s] = dict(html=page_path(s, nbs[s][1]), title=nbs[s][1].get("title", s), section=_section_of(s, sb),
                        seconds=r.get("seconds", 0), executed=r.get("executed", 0), skipped=r.get("skipped", {}), error=err)
    anchors = {pages[s]["html"]: heading_ids(nb) for s, (nb, fm) in nbs.items()}
    repaired = []
    with tempfile.TemporaryDirectory() as td:
        (Path(td)/"docs.html.j2").write_text(TEMPLATE)
        for s, (nb, fm) in nbs.items():
            if pages[s]["error"]:
                nb.cells.insert(0, nbformat.v4.new_markdown_cell(
                    "**This page did not build cleanly** (the docs build records it in `build.json` and fails):\n\n```\n" + pages[s]["error"][-1500:] + "\n```"))
        jobs = [(s, nb, fm, pages, td, order, anchors, str(out)) for s, (nb, fm) in nbs.items()]
        with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for r in pool.map(_render_page, jobs): repaired += r
    widget_fonts(out, {Path(p["html"]).parent for s, p in pages.items() if nbs[s][0].metadata.get("widgets")})
    print("== pagefind: " + pagefind(out), flush=True)
    info = dict(seconds=round(time.time() - t0, 1), cpus=os.cpu_count(), npm=npm, pages=pages, doc_links_to_page_top=repaired)
    (out/"build.json").write_text(json.dumps(info, indent=1))
    return info

def _render_page(job) -> list:
    "Render one page and write it (a worker of `build`); return the doc links that had to point at a page's top."
    s, nb, fm, pages, td, order, anchors, out = job
    repaired, here = [], pages[s]["html"]
    html = postprocess(render(nb, fm, s, pages, Path(td), order), here, pages, site_url(), anchors, repaired)
    (Path(out)/here).parent.mkdir(parents=True, exist_ok=True)
    (Path(out)/here).write_text(html)
    return repaired

def _cost_hint(rel):
    "Start the notebooks known to be long first, so two workers finish together."
    heavy = ("07_generate", "08_bench", "06_validate", "05_diagnose", "03a", "03_export", "09_widgets", "11_doctor", "04_check")
    return next((i for i, h in enumerate(heavy) if rel.startswith(h)), len(heavy))

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check an existing _site/")
    ap.add_argument("--sidebar", action="store_true", help="only regenerate nbs/sidebar.yml")
    ap.add_argument("--workers", type=int, default=2, help="notebooks executed at once")
    ap.add_argument("--cache", action="store_true", help="reuse executed outputs of unchanged notebooks (build/docs-exec); not for CI")
    ap.add_argument("--only", nargs="*", help="build only these sources (paths under nbs/), for trying a page")
    ap.add_argument("--screenshots", action="store_true", help="write screenshots/docs-*.png from the built _site/")
    a = ap.parse_args(argv)
    if a.sidebar: print(f"wrote {write_sidebar()}"); return 0
    if a.screenshots:
        for f in screenshots(): print(f"wrote {f.relative_to(ROOT)}")
        return 0
    if not a.check:
        info = build(a.workers, only=a.only, use_cache=a.cache)
        print(f"== built {len(info['pages'])} pages into {SITE.relative_to(ROOT)}/ in {info['seconds']:.0f} s")
        for s, p in info["pages"].items(): print(f"   {p['html']:<40} {p['section']:<14} {p['title']}" + ("  ERROR" if p["error"] else ""))
    problems = check_site()
    if a.only: problems = [p for p in problems if not p.startswith("page missing") and not re.search(r"broken (link|anchor)|previous/next", p)]   # pages not built
    for p in problems: print("docs problem:", p)
    print("docs check: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    import docs                      # run as the module `docs`, so worker processes can find `execute` by name
    sys.exit(docs.main())
