"""Olive's failure modes, in the olive profile (`bash tools/test_olive.sh`): a failed pass raises, the CLI exits
non-zero, a GQA-blind io_config is refused before Olive runs, and Olive leaves nothing in the working directory."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from mistral_onnx.export import export, ExportError
from mistral_onnx.routes import ROUTES
from mistral_onnx.models import resolve_source
from mistral_onnx.spec import ModelSpec

pytestmark = [pytest.mark.olive,
              pytest.mark.skipif(not ROUTES["olive-onnx"].status().works, reason="needs the olive profile: bash tools/test_olive.sh")]

def test_failed_pass_raises_and_leaves_nothing(tmp_path, monkeypatch):
    "The TorchScript exporter fails inside Olive's OnnxConversion pass; export must raise, with Olive's error, and leave no folder."
    cwd = tmp_path/"cwd"; cwd.mkdir(); monkeypatch.chdir(cwd)
    with pytest.raises(ExportError) as e:
        export("embedded", tmp_path/"out", route="olive-onnx", use_dynamo_exporter=False)
    msg = str(e.value)
    assert "Olive produced no output model" in msg and "get_seq_length" in msg, msg
    assert not (tmp_path/"out").exists() and not list(tmp_path.glob(".out.partial-*"))
    assert list(cwd.iterdir()) == [], "Olive wrote into the working directory (.olive-cache?)"

GQA_BLIND = {"input_names": ["input_ids", "attention_mask", "position_ids"], "input_shapes": [[2, 8], [2, 8], [2, 8]],
             "input_types": ["int64", "int64", "int64"], "output_names": ["logits"],
             "dynamic_axes": {"input_ids": {"0": "batch_size", "1": "sequence_length"},
                              "attention_mask": {"0": "batch_size", "1": "total_sequence_length"},
                              "position_ids": {"0": "batch_size", "1": "sequence_length"}},
             "kv_cache": True}

def test_kv_cache_io_config_refused_with_the_fix(tmp_path):
    "A user io_config with kv_cache=true would size the cache from num_attention_heads: refused, corrected io_config offered."
    spec = ModelSpec.from_pretrained(resolve_source("embedded"))
    with pytest.raises(ExportError) as e:
        export("embedded", tmp_path/"out", route="olive-onnx", io_config=GQA_BLIND)
    msg = str(e.value)
    assert f"[batch, {spec.num_attention_heads}, past, {spec.head_dim}]" in msg and f"[batch, {spec.num_key_value_heads}, past" in msg, msg
    fixed = json.loads(msg.split("Fix: pass io_config=")[1].split(", or leave io_config out")[0])
    assert fixed["kv_cache"]["num_attention_heads"] == spec.num_key_value_heads
    assert fixed["kv_cache"]["hidden_size"] // fixed["kv_cache"]["num_attention_heads"] == spec.head_dim
    assert not (tmp_path/"out").exists()
    # the offered io_config exports a graph that passes the KV check and answers like PyTorch
    r = export("embedded", tmp_path/"fixed", route="olive-onnx", io_config=fixed)
    assert r.report["kv_check"]["ok"] and r.report["route_info"]["io_config"]["kv_cache"] == fixed["kv_cache"]
    from mistral_onnx.models import load_torch, torch_answers, task_words, task_prompt
    from mistral_onnx.generate import OnnxLM
    prompts = [task_prompt(w) for w in task_words(8, seed=3)]
    ref = torch_answers(*load_torch("embedded"), prompts)
    assert [a.strip() for a in OnnxLM(r.out).answers(prompts)] == [b.strip() for b in ref]

def test_cli_exits_nonzero_when_a_pass_fails(tmp_path):
    "Olive's pass fails on a config transformers cannot build (Olive itself exits 0); `mistral-onnx export` must exit 2 with the cause."
    src = tmp_path/"broken"; shutil.copytree(resolve_source("embedded"), src)
    cfg = json.loads((src/"config.json").read_text()); cfg["hidden_act"] = "no_such_activation"
    (src/"config.json").write_text(json.dumps(cfg))
    exe = Path(sys.executable).parent/"mistral-onnx"
    p = subprocess.run([str(exe), "export", str(src), str(tmp_path/"out"), "--route", "olive-optimum"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "error:" in p.stderr and "Olive produced no output model" in p.stderr and "no_such_activation" in p.stderr, p.stderr
    assert not (tmp_path/"out").exists() and not (tmp_path/".olive-cache").exists()
