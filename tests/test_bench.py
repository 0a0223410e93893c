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
