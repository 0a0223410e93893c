"""The widgets notebook in JupyterLab, in headless Chromium: run it, export through the ExportPanel, stream an answer in
the ChatPanel. Screenshots go to a temporary folder, or to the folder MISTRAL_ONNX_SCREENSHOTS names
(`MISTRAL_ONNX_SCREENSHOTS=screenshots pytest tests/test_browser_jupyterlab.py` refreshes the committed ones)."""
import json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
import pytest
from browser import browser

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SHOTS = Path(os.environ["MISTRAL_ONNX_SCREENSHOTS"]).absolute() if os.environ.get("MISTRAL_ONNX_SCREENSHOTS") else Path(tempfile.mkdtemp(prefix="mo-shots-"))

def _ensure_jupyterlab():
    "Install JupyterLab (the dev extra has it) if this environment lacks it."
    if not (BIN/"jupyter-lab").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", str(ROOT/"constraints.txt"), "jupyterlab"], check=True)

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _settings(folder:Path):
    "JupyterLab user settings: every cell in the DOM (no windowing), no news or update checks (the network is closed)."
    for name, value in (("notebook-extension/tracker", {"windowingMode": "none"}),
                        ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False})):
        f = folder/"@jupyterlab"/f"{name}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))

@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server of our own on 127.0.0.1 with a token, serving a copy of nbs/09_widgets.ipynb; stopped by PID."
    _ensure_jupyterlab()
    root = tmp_path/"root"; root.mkdir()
    nb = json.loads((ROOT/"nbs"/"09_widgets.ipynb").read_text())
    nb["metadata"].pop("kernelspec", None)   # as a notebook from elsewhere: JupyterLab asks "Select Kernel" on first open
    (root/"09_widgets.ipynb").write_text(json.dumps(nb))
    _settings(tmp_path/"settings")
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path/"settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path/"workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path/"runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path/"config"), "PYTHONUNBUFFERED": "1"}
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path/"jupyterlab.log", "w")
    proc = subprocess.Popen([str(BIN/"jupyter-lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url="]
                            + (["--allow-root"] if os.geteuid() == 0 else []),
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2); break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"JupyterLab did not start (exit {proc.poll()}):\n" + (tmp_path/"jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield dict(base=base, token=token, root=root, log=tmp_path/"jupyterlab.log")
    finally:
        try: os.killpg(proc.pid, signal.SIGTERM)           # the server and the kernel it started, by the server's PID
        except ProcessLookupError: pass
        try: proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()

def _wait(cond, timeout, what, page=None, every=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v: return v
        if page is not None: page.wait_for_timeout(every * 1000)
        else: time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")

CELLS_STATE = """() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt')?.innerText || '').trim());
  const errors = [...document.querySelectorAll('.jp-Notebook [data-mime-type="application/vnd.jupyter.stderr"]')]
                 .map(e => e.innerText).filter(t => /Error|Traceback/.test(t));
  return {n: cells.length, done: prompts.filter(p => /^\\[\\d+\\]:$/.test(p)).length, prompts, errors};
}"""

def test_widgets_notebook_in_jupyterlab(lab):
    SHOTS.mkdir(exist_ok=True)
    frames = []   # kernel websocket messages the browser received, to see the answer arrive in pieces
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f if isinstance(f, str) else f.decode("utf-8", "replace"))))
        page.goto(f"{lab['base']}/lab/tree/09_widgets.ipynb?token={lab['token']}")
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
        # First open: JupyterLab may ask which kernel to start ("Select Kernel"); accept its choice (python3).
        dialogs = []
        def kernel_ready():
            dlg = page.locator(".jp-Dialog")
            if dlg.count() and dlg.first.is_visible():
                dialogs.append(dlg.first.inner_text())
                page.screenshot(path=str(SHOTS/"jupyterlab_select_kernel.png"))
                page.locator(".jp-Dialog .jp-mod-accept").first.click()
            return page.locator(".jp-Toolbar-kernelName").first.inner_text().strip() not in ("", "No Kernel") and \
                   page.locator(".jp-Dialog").count() == 0
        _wait(kernel_ready, 60, "a kernel for the notebook", page)
        assert any("Select Kernel" in d for d in dialogs), dialogs
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        def all_ran():
            s = page.evaluate(CELLS_STATE)
            if s["errors"]: raise AssertionError("a cell failed in JupyterLab:\n" + "\n".join(s["errors"])[-3000:])
            return s["n"] and s["done"] == s["n"]
        _wait(all_ran, 150, "every cell to run", page, every=1)
        page.screenshot(path=str(SHOTS/"jupyterlab_notebook_ran.png"))

        # The "Try it" ExportPanel is the last one: fill it and click Run.
        exp = page.locator(".mo-export").last
        exp.scroll_into_view_if_needed()
        exp.locator(".mo-out input").fill("exports/browser-int4")
        exp.locator(".mo-precision select").select_option("int4")
        exp.locator("button.mo-run").click()
        card = exp.locator(".mo-result .mo-card-ok, .mo-result .mo-card-error")
        card.first.wait_for(timeout=120_000)
        text = card.first.inner_text()
        exp.screenshot(path=str(SHOTS/"jupyterlab_export_panel.png"))
        assert "PASS" in text and "Export done" in text, text
        assert "mistral-onnx export embedded" in text and "--precision int4" in text, text
        assert (lab["root"]/"exports"/"browser-int4"/"model.onnx").exists()

        # The ChatPanel got the new folder from the export (on_done); stream an answer.
        chat = page.locator(".mo-chat").last
        chat.scroll_into_view_if_needed()
        assert chat.locator(".mo-folder input").input_value().endswith("browser-int4")
        chat.locator(".mo-prompt textarea").fill("reverse: jupyterlab")
        n0 = len(frames)
        chat.locator("button.mo-run").click()
        _wait(lambda: "tokens/s" in chat.locator(".mo-stats").inner_text() or "Failed" in chat.locator(".mo-stats").inner_text(),
              60, "the streamed answer", page)
        answer = chat.locator(".mo-answer").inner_text().strip()
        chat.screenshot(path=str(SHOTS/"jupyterlab_chat_panel.png"))
        assert "tokens/s" in chat.locator(".mo-stats").inner_text(), chat.locator(".mo-stats").inner_text()
        assert answer == "balretypuj", answer
        # The browser received the answer growing piece by piece: widget updates holding partial answers (with the cursor).
        partial = {m.group(1) for f in frames[n0:] for m in re.finditer(r"<pre style='white-space:pre-wrap;margin:4px 0'>([^<]*)<span", f)}
        assert len(partial) >= 5, sorted(partial)

        # A bad source: the card shows the error's message and its fix, not a traceback.
        exp.locator(".mo-source input").fill("/no/such/model")
        exp.locator("button.mo-run").click()
        err = exp.locator(".mo-result .mo-card-error")
        err.wait_for(timeout=60_000)
        exp.screenshot(path=str(SHOTS/"jupyterlab_export_error.png"))
        text = err.inner_text()
        assert "neither an existing folder nor a hub id" in text and "Fix:" in text and "Traceback" not in text, text

        # The BenchPanel (where this install has mistral_onnx.bench): small sizes, the plotly chart and the table.
        import importlib.util
        if importlib.util.find_spec("mistral_onnx.bench") is None:
            print("mistral_onnx.bench is not installed: BenchPanel not exercised in the browser"); return
        bench = page.locator(".mo-bench").last
        bench.scroll_into_view_if_needed()
        assert bench.locator(".mo-exported input").input_value().endswith("browser-int4")
        for cls, v in ((".mo-prompt-len", "8"), (".mo-new-tokens", "8"), (".mo-repeats", "1")):
            bench.locator(f"{cls} input").fill(v); bench.locator(f"{cls} input").press("Enter")
        bench.locator(".mo-runners select").select_option(label=["ortgenai", "onnxruntime"])
        bench.locator("button.mo-run").click()
        bench.locator(".mo-bench-out .js-plotly-plot, .mo-bench-out .mo-card-error").first.wait_for(timeout=150_000)
        page.wait_for_timeout(1000)
        bench.screenshot(path=str(SHOTS/"jupyterlab_bench_panel.png"))
        assert bench.locator(".mo-bench-out .mo-card-error").count() == 0, bench.locator(".mo-bench-out").inner_text()
        table = bench.locator(".mo-bench-out table").first.inner_text()
        assert "ortgenai" in table and "onnxruntime" in table and "torch_cache" not in table, table
