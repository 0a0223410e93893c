"bench smoke test (CI, small model, well under a minute): asserts only that numbers were produced, never a speed."
import json, math
import pytest
from mistral_onnx.bench import bench, BenchResult, RUNNERS
from mistral_onnx.env import BadOption

def test_bench_smoke(exported):
    r = bench("embedded", exported["fp32"], prompt_len=8, new_tokens=8, repeats=1)
    assert isinstance(r, BenchResult)
    assert [row["runner"] for row in r.rows] == list(RUNNERS)
    for row in r.rows:
        for k in ("prefill_ms", "decode_tok_s", "peak_mb", "weight_mb", "floor_tok_s"): assert math.isfinite(row[k]), (k, row)
        assert row["prefill_ms"] > 0 and row["decode_tok_s"] > 0
    assert r.bandwidth_gbs > 0 and "cores" in r.machine
    assert "ortgenai / torch_cache decode" in r.ratios
    assert "| runner |" in r._repr_markdown_() and "ortgenai" in str(r)
    assert len(r.figure().data) >= 2
    json.dumps(r.to_dict())

def test_bench_bad_input(exported):
    with pytest.raises(BadOption, match="Unknown runner"): bench("embedded", exported["fp32"], runners=("tensorrt",))
    with pytest.raises(BadOption, match="exceeds the export's context"): bench("embedded", exported["fp32"], prompt_len=60, new_tokens=10)
    with pytest.raises(BadOption, match="at least 1"): bench("embedded", exported["fp32"], repeats=0)

def test_bench_takes_a_folder_object(exported):
    from mistral_onnx.folder import ExportFolder
    r = bench("embedded", ExportFolder(exported["fp32"]), runners=("ortgenai", "onnxruntime"), prompt_len=4, new_tokens=4, repeats=1)
    assert [row["runner"] for row in r.rows] == ["ortgenai", "onnxruntime"] and not r.errors

def test_compare_interleaves_and_writes_parts(exported, tmp_path):
    from mistral_onnx.compare import compare, CompareResult, machine_load
    jp = tmp_path/"study.json"; jp.write_text(json.dumps({"earlier": 1}))
    r = compare("embedded", {"a": exported["fp32"], "b": exported["fp32"]}, rounds=3, prompt_len=4, new_tokens=4, json_path=jp, part="p1")
    assert isinstance(r, CompareResult) and not r.errors
    assert [(x["label"], len(x["runs"]), len(x["others_cores"])) for x in r.rows] == [("a", 3, 3), ("b", 3, 3)]
    assert r.settings["orders"] == [["a/ortgenai", "b/ortgenai"], ["b/ortgenai", "a/ortgenai"], ["a/ortgenai", "b/ortgenai"]]
    assert all(x["quiet"] in (True, False, None) for x in r.rows) and "before" in r.load and "after" in r.load
    saved = json.loads(jp.read_text())
    assert saved["earlier"] == 1 and [x["label"] for x in saved["p1"]["rows"]] == ["a", "b"]
    assert r.ratios("a")["b/ortgenai"]["verdict"] in ("faster", "slower", "within the spread")
    assert "| export |" in r._repr_markdown_()
    ld = machine_load(0.05); assert ld["cores"] >= 1

def test_compare_bad_input(exported):
    from mistral_onnx.compare import compare
    with pytest.raises(BadOption, match="one folder"): compare("embedded", exported["fp32"])
    with pytest.raises(BadOption, match="No export folder"): compare("embedded", [])
    with pytest.raises(BadOption, match="retries=-1"): compare("embedded", [exported["fp32"]], retries=-1)
