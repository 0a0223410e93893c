"The widget panels headless: build each, set its values, click() Run, wait for the thread, and look at what it shows."
import html, json, threading, time
from pathlib import Path
import pytest
from mistral_onnx import widgets
from mistral_onnx.widgets import ExportPanel, ChatPanel, BenchPanel, error_text
from mistral_onnx.export import STAGES, Cancelled, ExportError
from mistral_onnx.models import SourceError, task_words, task_prompt
from mistral_onnx.check import CheckError
from mistral_onnx.generate import OnnxLM, GenerationError
from mistral_onnx.env import BadOption

def _partials(folder:Path): return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)

def test_export_panel_int4_progress_card_and_folder(tmp_path):
    p = ExportPanel()
    p.out.value = str(tmp_path/"int4")
    p.ep.value = "cpu"; p.precision.value = "int4"
    p.run.click()
    assert p.busy and p.run.disabled and not p.cancel.disabled     # click() returned while the export runs
    thread = p.thread
    p.run.click()                                                   # a second click while it runs is ignored
    assert p.thread is thread
    p.wait()
    assert p.error is None, p.result.value
    assert {s for s, f, m in p.seen} == set(STAGES)                 # every stage reported, quantize included for int4
    assert p.bars == sorted(p.bars) and p.bars[-1] == 1.0 and len(set(p.bars)) >= 4
    assert p.bar.bar_style == "success" and not p.run.disabled and p.cancel.disabled
    assert any("quantiz" in l for l in p.lines) and len(p.log.outputs) == len(p.lines)
    card = p.result.value
    assert "KV check" in card and "PASS" in card and "16 cache tensors" in card     # 4 layers x key/value x past/present
    assert f"mistral-onnx export embedded {tmp_path/'int4'} --route builder --precision int4 --ep cpu" in card
    rep = json.loads((tmp_path/"int4"/"export_report.json").read_text())
    assert rep["precision"] == "int4" and f"{rep['bytes']/1e6:.2f} MB" in card and f"{rep['seconds']:.1f} s" in card
    assert _partials(tmp_path) == []

def test_export_panel_bad_source_shows_the_fix(tmp_path):
    p = ExportPanel(source=str(tmp_path/"no-such-model"), out=tmp_path/"o")
    p.run.click(); p.wait()
    assert isinstance(p.error, SourceError) and p.bar.bar_style == "danger"
    assert "neither an existing folder nor a hub id" in p.result.value and "Fix:" in p.result.value
    assert "Traceback" not in p.result.value
    assert "was not created; no partial folder left" in p.result.value
    assert sorted(x.name for x in tmp_path.iterdir()) == []

def test_export_panel_empty_fields_and_existing_folder(exported, tmp_path):
    p = ExportPanel(source="  ", out=tmp_path/"o")
    p.run.click(); p.wait()
    assert isinstance(p.error, BadOption) and "No model source" in p.result.value
    p = ExportPanel(out=exported["fp32"])
    before = sorted(f.name for f in exported["fp32"].iterdir())
    p.run.click(); p.wait()
    assert isinstance(p.error, ExportError) and "already exists" in p.result.value and "overwrite" in p.result.value
    assert "is still there, as before" in p.result.value
    assert sorted(f.name for f in exported["fp32"].iterdir()) == before

def test_export_panel_cancel_leaves_nothing(tmp_path):
    p = ExportPanel(out=tmp_path/"c")
    p.run.click()
    deadline = time.time() + 120
    while not any(s == "convert" for s, f, m in p.seen) and p.busy and time.time() < deadline: time.sleep(0.05)
    p.cancel.click(); p.wait()
    assert isinstance(p.error, Cancelled), error_text(p.error) if p.error else "finished before the cancel"
    assert "Cancelled" in p.result.value and p.bar.bar_style == "warning"
    assert not (tmp_path/"c").exists() and _partials(tmp_path) == []
    assert "was not created; no partial folder left" in p.result.value

def test_export_panel_precisions_follow_provider():
    p = ExportPanel()
    assert p.ep.options and "cpu" in p.ep.options
    assert "fp16" not in p.precision.options and "int4" in p.precision.options
    if "cuda" in p.ep.options:
        p.ep.value = "cuda"; assert "fp16" in p.precision.options

def test_chat_panel_streams_answers(exported):
    words = task_words(5, seed=7)
    c = ChatPanel(exported["fp32"], max_new_tokens=20)
    right = 0
    for w in words:
        c.prompt.value = task_prompt(w)
        c.run.click(); c.wait()
        assert c.error is None, c.stats.value
        assert len(c.pieces) >= len(w) - 1        # streamed piece by piece, not in one block
        assert "tokens/s" in c.stats.value and c.text in html.unescape(c.answer.value)
        right += c.text.strip() == w[::-1]
    assert right >= 4, f"{right}/5 reversals right"
    lm = OnnxLM(exported["fp32"])                 # the panel shows what the library generates
    assert c.text == lm.generate(task_prompt(words[-1]), max_new_tokens=20)

def test_chat_panel_sampling_and_errors(exported, tmp_path):
    c = ChatPanel(exported["int4"], prompt=task_prompt("sampling"))
    c.mode.value = "sample"; c.temperature.value = 0.7
    assert not c.temperature.disabled
    c.run.click(); c.wait()
    assert c.error is None and c.pieces and "tokens/s" in c.stats.value
    c.prompt.value = "   "; c.run.click(); c.wait()
    assert isinstance(c.error, GenerationError) and "empty" in c.stats.value
    for folder, words in (("", "No exported folder"), (str(tmp_path/"nope"), "is not a folder"), (str(tmp_path), "genai_config.json")):
        c = ChatPanel(folder); c.run.click(); c.wait()
        assert isinstance(c.error, BadOption if folder == "" else CheckError) and words in c.stats.value and "Fix" in c.stats.value

def test_bench_panel_without_bench_module_says_so(monkeypatch, exported):
    monkeypatch.setattr(widgets, "_bench_module", lambda: None)
    b = BenchPanel(exported=exported["fp32"])
    assert "not in this install" in b.note.value
    b.run.click(); b.wait()
    assert "no bench module" in str(b.error)
    assert "no bench module" in b.out.outputs[-1]["data"]["text/html"]

def test_bench_panel_runs_bench(exported):
    pytest.importorskip("mistral_onnx.bench")
    b = BenchPanel("embedded", exported["fp32"], prompt_len=8, new_tokens=8, repeats=2)
    assert {"ortgenai", "torch_cache"} <= set(b.runners.options), "the bench module names its runners"
    b.runners.value = ("ortgenai", "torch_cache")
    b.run.click(); b.wait()
    assert b.error is None, error_text(b.error)
    assert sorted(r["runner"] for r in b.bench_result.rows) == ["ortgenai", "torch_cache"]
    assert {s for s, f, m in b.seen} >= {"load", "bench"} and b.bar.value == 1.0
    figure, table = b.out.outputs
    plot = figure["data"]["application/vnd.plotly.v1+json"]
    assert [t["x"] for t in plot["data"] if t["type"] == "bar"][0] == ["ortgenai", "torch_cache"]
    assert "ortgenai" in table["data"]["text/markdown"] and "torch_cache" in table["data"]["text/markdown"]
    b.runners.value = (); b.run.click(); b.wait()
    assert "No runner chosen" in b.out.outputs[-1]["data"]["text/html"]
    b.runners.value = ("ortgenai",); b.exported.value = ""; b.run.click(); b.wait()
    assert isinstance(b.error, BadOption) and "No exported folder" in b.out.outputs[-1]["data"]["text/html"]

def test_export_panel_validates_against_pytorch(tmp_path):
    pytest.importorskip("mistral_onnx.validate")
    p = ExportPanel(out=tmp_path/"v")
    p.validate.value = True
    p.run.click(); p.wait()
    assert p.error is None, p.result.value
    row = p.result.value.split("<b>validation</b>")[1].split("</tr>")[0]
    assert "PASS" in row and "prefill" in row and "decode" in row, row   # the report's phases, in the details

def test_export_panel_route_the_doctor_rejects(tmp_path):
    from mistral_onnx.routes import ROUTES
    bad = [r for r in ROUTES if not ROUTES[r].status().works]
    if not bad: pytest.skip("every route works in this environment")
    p = ExportPanel(out=tmp_path/"o")
    assert (f"{bad[0]} (not here)", bad[0]) in p.route.options
    p.route.value = bad[0]
    assert "cannot work here" in p.route_note.value and "Fix:" in p.route_note.value
    p.run.click(); p.wait()
    assert isinstance(p.error, ExportError) and "Fix" in p.result.value and "Traceback" not in p.result.value
    assert sorted(x.name for x in tmp_path.iterdir()) == []
