"The torch route as a user meets it: the CLI exports, the folder passes the KV check, ORT GenAI answers as transformers does."
import json
from pathlib import Path
import pytest
from conftest import cli
from fastcore.test import test_fail as fails

@pytest.fixture(scope="module")
def torch_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch")/"fp32"
    p = cli("export", "embedded", out, "--route", "torch")
    assert p.returncode == 0, p.stdout + p.stderr
    return out, p

def test_cli_export_reports_stages(torch_export):
    out, p = torch_export
    for stage in ("load", "convert", "write", "check"): assert f"[{stage:>8}]" in p.stdout
    assert "Obtain model graph" in p.stdout          # torch.onnx's own steps drive the progress
    r = json.loads((out/"export_report.json").read_text())
    assert r["route"] == "torch" and r["kv_check"]["ok"]
    info = r["route_info"]
    assert info["opset"] == 23 and "Attention" in info["ops"]
    assert set(info["parity_max_abs_diff"]) == {"3", "19"} and all(v < 1e-3 for v in info["parity_max_abs_diff"].values())

def test_graph_and_genai_config(torch_export):
    from mistral_onnx.check import check_kv, graph_io
    from mistral_onnx.models import resolve_source
    from mistral_onnx.spec import ModelSpec
    out, _ = torch_export
    spec = ModelSpec.from_pretrained(resolve_source("embedded"))
    assert check_kv(out, spec).ok
    io = graph_io(out/"model.onnx")
    assert io["inputs"]["past_key_values.0.key"][1] == ("batch_size", spec.num_key_value_heads, "past_sequence_length", spec.head_dim)
    assert io["inputs"]["attention_mask"][1] == ("batch_size", "total_sequence_length")
    g = json.loads((out/"genai_config.json").read_text())
    assert g["search"]["past_present_share_buffer"] is False
    assert "sliding_window" not in g["model"]["decoder"]
    assert g["model"]["decoder"]["inputs"]["position_ids"] == "position_ids"
    assert (g["model"]["eos_token_id"], g["model"]["bos_token_id"], g["model"]["context_length"]) == (2, 1, 64)

def test_same_answers_as_transformers_past_the_window(torch_export):
    from mistral_onnx.generate import OnnxLM
    from mistral_onnx.models import load_torch, task_prompt, task_words, torch_answers
    out, _ = torch_export
    words = task_words(50, seed=3) + task_words(10, seed=4, min_len=12)
    assert sum(len(w) == 12 for w in words) >= 10
    prompts = [task_prompt(w) for w in words]
    model, tok = load_torch("embedded")
    ours = OnnxLM(out).answers(prompts)
    ref = torch_answers(model, tok, prompts)
    assert [a.strip() for a in ours] == [a.strip() for a in ref]

def test_cli_generate(torch_export):
    out, _ = torch_export
    p = cli("generate", out, "reverse: abcdef")
    assert p.returncode == 0, p.stderr

def test_unsupported_precision_fails_fast(tmp_path):
    p = cli("export", "embedded", tmp_path/"q", "--route", "torch", "--precision", "int8")
    assert p.returncode == 2 and "precision 'int8' cannot run on cpu with the torch route" in p.stderr and "route 'builder'" in p.stderr, p.stderr
    assert list(tmp_path.iterdir()) == []

def test_int4(torch_export, tmp_path):
    "int4 through the same route: every projection 4-bit, the folder a third of fp32's size, greedy answers as transformers on 45+ of 50."
    from mistral_onnx.export import export
    from mistral_onnx.generate import OnnxLM
    from mistral_onnx.models import load_torch, task_prompt, task_words, torch_answers, task_score
    fp32, _ = torch_export
    r = export("embedded", tmp_path/"int4", route="torch", precision="int4")
    info = r.report["route_info"]["int4"]
    assert info["matmul_nbits"] >= 4 * 7 and info["matmul_fp32_after"] <= 1       # q, k, v, o, gate, up, down in each of 4 layers
    assert r.report["bytes"] < 0.5 * json.loads((fp32/"export_report.json").read_text())["bytes"]
    words = task_words(50, seed=3); prompts = [task_prompt(w) for w in words]
    model, tok = load_torch("embedded")
    ours, ref = OnnxLM(r.out).answers(prompts), torch_answers(model, tok, prompts)
    same = sum(a.strip() == b.strip() for a, b in zip(ours, ref))
    print(f"int4: {same}/50 equal to transformers fp32, accuracy {task_score(words, ours):.0%} (transformers {task_score(words, ref):.0%})")
    assert same >= 45

def test_baked_length_is_caught(tmp_path, monkeypatch):
    "A graph traced without a dynamic sequence axis runs at the traced length only; the route's parity check refuses it."
    import threading
    import mistral_onnx.torch_route as tr
    from mistral_onnx.export import ExportError
    from mistral_onnx.models import resolve_source
    from mistral_onnx.spec import ModelSpec
    full = tr.dynamic_shapes
    def baked(spec):
        ids, mask, pos, kv = full(spec)
        return ({0: ids[0]}, mask, {0: pos[0]}, kv)
    monkeypatch.setattr(tr, "dynamic_shapes", baked)
    src = resolve_source("embedded"); spec = ModelSpec.from_pretrained(src)
    from mistral_onnx.routes import Job, route
    fails(lambda: tr.route_torch(Job(route("torch"), src, spec, tmp_path, "fp32", "cpu", log=lambda s: None, progress=lambda *a: None)),
              contains="does not run at prompt length 3")
    assert not (tmp_path/"genai_config.json").exists()

def test_cancel_between_stages(tmp_path):
    import threading
    import mistral_onnx.torch_route as tr
    from mistral_onnx.export import Cancelled
    from mistral_onnx.models import resolve_source
    from mistral_onnx.spec import ModelSpec
    src = resolve_source("embedded"); spec = ModelSpec.from_pretrained(src)
    ev = threading.Event()
    def progress(stage, frac, msg):
        if "loading" in msg: ev.set()
    from mistral_onnx.routes import Job, route
    fails(lambda: tr.route_torch(Job(route("torch"), src, spec, tmp_path, "fp32", "cpu", log=lambda s: None, progress=progress, cancel=ev)),
              contains="cancelled")
    assert not (tmp_path/"model.onnx").exists()
