"validate: passes on each route's fp32 export of the embedded model; fails, naming phase and step, on broken ones."
import pytest
from mistral_onnx.export import export, ExportError
from mistral_onnx.validate import validate, rewire_present, drop_window
from mistral_onnx.folder import CheckError
from mistral_onnx.env import BadOption

def test_builder_fp32_passes(exported):
    r = validate("embedded", exported["fp32"])
    assert r.ok, str(r)
    names = {p.name for p in r.phases}
    assert {"prefill", "decode", "decode > window", "prefill > window", "batch (unequal prompts)", "max_length < window"} <= names
    assert {p.runner for p in r.phases} == {"onnxruntime", "ortgenai"}
    assert sum(p.count for p in r.phases if p.runner == "onnxruntime" and p.name.startswith("decode")) >= 64
    assert "PASS" in str(r) and "PASS" in r._repr_markdown_()

def test_torch_route_fp32_passes(tmp_path):
    try: out = export("embedded", tmp_path/"torch", route="torch").out
    except ExportError as e: pytest.fail(f"the torch route could not export here: {e}")
    r = validate("embedded", out)
    assert r.ok, str(r)

def test_swapped_cache_fails_at_first_decode_step(exported, tmp_path):
    bad = rewire_present(exported["fp32"], tmp_path/"bad")
    r = validate("embedded", bad, runners=("onnxruntime",))
    assert not r.ok
    assert all(p.ok for p in r.phases if p.name.startswith("prefill"))   # prefill does not read the cache
    first = r.failures[0]
    assert first.name == "decode" and "decode step 0" in first.first_bad, str(r)
    assert "FAIL" in str(r) and "decode step 0" in str(r)

def test_ignored_window_fails_past_the_window(exported, tmp_path):
    nw = drop_window(exported["fp32"], tmp_path/"nw")
    r = validate("embedded", nw)
    assert not r.ok
    assert r.failures[0].name == "KV check", str(r)                     # validate reads the folder as `check` does
    assert all(p.ok for p in r.phases if p.runner != "check" and "window" not in p.name and not p.name.startswith("batch")), str(r)   # within the window nothing changes
    bad = [p for p in r.failures if p.runner == "onnxruntime"]
    assert bad and all("window" in p.name for p in bad)
    assert "position 16" in bad[0].first_bad, bad[0].first_bad          # the first position beyond a window of 16

def test_int4_judged_by_overlap_and_task(exported):
    r = validate("embedded", exported["int4"], accuracy_prompts=50)
    assert r.accuracy is not None and all(p.tol is None for p in r.phases)
    assert all(p.overlap > 0.5 for p in r.phases), str(r)

def test_bad_input(exported, tmp_path):
    with pytest.raises(BadOption, match="does not fit"): validate("embedded", exported["fp32"], sequences=[(60, 10)])
    with pytest.raises(BadOption, match="Unknown precision"): validate("embedded", exported["fp32"], precision="fp8")
    with pytest.raises(CheckError, match="genai_config"): validate("embedded", tmp_path)
    with pytest.raises(BadOption, match="choose from onnxruntime, ortgenai"): validate("embedded", exported["fp32"], runners=("tensorrt",))

def test_folder_object_and_old_runner_names(exported):
    "An ExportFolder is taken as well as a path; the runner names validate used before (graph, genai) still work."
    from mistral_onnx.folder import ExportFolder
    r = validate("embedded", ExportFolder(exported["fp32"]), sequences=[(3, 2)], runners=("graph", "genai"))
    assert r.ok and [p.runner for p in r.phases] == ["onnxruntime", "onnxruntime", "ortgenai", "ortgenai"], str(r)

def test_ring_cache_fails_client_phases_with_the_reason(tmp_path):
    "The builder's window-long cache: ORT GenAI refuses a batch of unequal prompts and a max_length below the window (issue 12)."
    ring = export("embedded", tmp_path/"ring", window_cache="ring").out
    r = validate("embedded", ring, runners=("ortgenai",))
    assert sorted(p.name for p in r.failures) == ["batch (unequal prompts)", "max_length < window"], str(r)
    assert any("ring" in n and "--window-cache ring" in n for n in r.notes), r.notes

def test_other_tools_layout_is_reported_not_raised(exported, tmp_path):
    "An Optimum-layout folder (graph, no genai_config.json): every runner skipped with the reason and the fix; no exception."
    import shutil
    opt = tmp_path/"optimum"; shutil.copytree(exported["fp32"], opt); (opt/"genai_config.json").unlink()
    r = validate("embedded", opt)
    assert not r.ok and all(p.error.startswith("skipped") for p in r.phases) and "Optimum" in r.notes[0]
