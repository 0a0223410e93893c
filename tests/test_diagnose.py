"`mistral-onnx diagnose` as a user runs it: a broken export, an Olive workflow config, bad paths."
import json, shutil
from pathlib import Path
import onnx, pytest
from conftest import cli
from mistral_onnx.spec import MISTRAL_7B_V01

@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    "The embedded model exported once for this module (fp32, cpu)."
    from mistral_onnx.export import export
    return export("embedded", tmp_path_factory.mktemp("diag")/"fp32").out

def _past_heads(src, dst, heads):
    "A copy of an export whose past_key_values inputs declare `heads` heads in dimension 1."
    shutil.copytree(src, dst)
    m = onnx.load(str(dst/"model.onnx"), load_external_data=False)
    for vi in m.graph.input:
        if vi.name.startswith("past_key_values."): vi.type.tensor_type.shape.dim[1].dim_value = heads
    onnx.save(m, str(dst/"model.onnx"))
    return dst

def test_good_export_passes(fp32):
    p = cli("diagnose", fp32)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "(exported folder): OK" in p.stdout

def test_query_head_sized_cache_is_named(fp32, tmp_path):
    cfg = json.loads((fp32/"export_report.json").read_text())["source_config"]
    H, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]      # 8 and 2, read from the model, not from diagnose
    p = cli("diagnose", _past_heads(fp32, tmp_path/"broken", H))
    assert p.returncode == 1, p.stdout + p.stderr
    out = p.stdout
    assert "FAIL past_key_values.0.key" in out and "FAIL past_key_values.3.value" in out
    assert f"in past_key_values.0.key: got {kv} (num_key_value_heads), expected {H} (num_attention_heads)" in out, out
    assert "export it again" in out

def test_olive_kv_cache_io_config(tmp_path):
    (tmp_path/"mistral-7b").mkdir(); (tmp_path/"mistral-7b"/"config.json").write_text(json.dumps(MISTRAL_7B_V01))
    io = {"input_names": ["input_ids", "attention_mask"], "input_shapes": [[1, 8], [1, 8]], "input_types": ["int64", "int64"],
          "output_names": ["logits"], "kv_cache": True}
    wf = {"input_model": {"type": "HfModel", "model_path": "mistral-7b", "io_config": io},
          "passes": {"c": {"type": "OnnxConversion"}}}
    (tmp_path/"wf.json").write_text(json.dumps(wf))
    p = cli("diagnose", tmp_path/"wf.json", "--write-fixed", tmp_path/"fixed.json")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "got 8 (num_key_value_heads), expected 32 (num_attention_heads)" in p.stdout
    fixed = json.loads((tmp_path/"fixed.json").read_text())["input_model"]["io_config"]
    # the io_config the olive-onnx route offers: kv_cache sized so that Olive builds [batch, 8, past, 128]
    kc = fixed["kv_cache"]
    assert kc["num_attention_heads"] == MISTRAL_7B_V01["num_key_value_heads"]
    assert kc["hidden_size"] // kc["num_attention_heads"] == MISTRAL_7B_V01["hidden_size"] // MISTRAL_7B_V01["num_attention_heads"]
    assert {k: v for k, v in fixed.items() if k not in ("kv_cache", "dynamic_shapes")} == {k: v for k, v in io.items() if k != "kv_cache"}
    p = cli("diagnose", tmp_path/"fixed.json"); assert p.returncode == 0, p.stdout
    # a hub id cannot be read offline: the error says to pass --config, and with it the same problem is found
    wf["input_model"]["model_path"] = "mistralai/Mistral-7B-v0.1"; (tmp_path/"hub.json").write_text(json.dumps(wf))
    p = cli("diagnose", tmp_path/"hub.json"); assert p.returncode == 2 and "--config" in p.stderr, p.stderr
    p = cli("diagnose", tmp_path/"hub.json", "--config", tmp_path/"mistral-7b"/"config.json"); assert p.returncode == 1

def test_bad_paths(tmp_path):
    p = cli("diagnose", tmp_path/"none"); assert p.returncode == 2 and "does not exist" in p.stderr
    p = cli("diagnose", tmp_path); assert p.returncode == 2 and "neither genai_config.json" in p.stderr

def test_naive_dummy_cache_reproduces_the_mismatch():
    "The naive cache (num_attention_heads) fails in torch.cat with this model's two numbers; the spec's cache runs."
    import torch
    from mistral_onnx.models import load_torch, EMBEDDED_DIR
    from mistral_onnx.diagnose import dummy_cache, cache_step, step_args, explain
    from mistral_onnx.spec import ModelSpec
    cfg = json.loads((EMBEDDED_DIR/"config.json").read_text())
    H, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    spec = ModelSpec.from_pretrained(EMBEDDED_DIR)
    model, _ = load_torch("embedded")
    step = cache_step(model)
    with pytest.raises(RuntimeError) as e:
        with torch.inference_mode(): step(*step_args(spec, dummy_cache(spec, naive=True)))
    assert str(e.value) == f"Sizes of tensors must match except in dimension 2. Expected size {H} but got size {kv} for tensor number 1 in the list."
    x = explain(e.value, spec)
    assert (x.expected_fields, x.got_fields) == (["num_attention_heads"], ["num_key_value_heads"])
    with torch.inference_mode(): logits = step(*step_args(spec, dummy_cache(spec)))
    assert tuple(logits.shape) == (1, 1, cfg["vocab_size"])

MISTRAL_TEXTS = [
    "Sizes of tensors must match except in dimension 2. Expected size 32 but got size 8 for tensor number 1 in the list.",
    "Sizes of tensors must match except in dimension 2. Expected 32 in dimension 1 but got 8 for tensor number 1 in the list",
    "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: past_key_values.1.key for the following indices\n"
    " index: 1 Got: 32 Expected: 8\n Please fix either the inputs/outputs or the model."]

@pytest.mark.parametrize("text", MISTRAL_TEXTS)
def test_explain_mistral_7b(text):
    from mistral_onnx.diagnose import explain
    from mistral_onnx.spec import ModelSpec
    x = explain(text, ModelSpec.from_config(MISTRAL_7B_V01))
    assert x.kind == "heads"
    assert {x.got: x.got_fields, x.expected: x.expected_fields} == {32: ["num_attention_heads"], 8: ["num_key_value_heads"]}

def test_explain_llama_and_head_size():
    from mistral_onnx.diagnose import explain
    from mistral_onnx.spec import ModelSpec
    llama = ModelSpec.from_config({"model_type": "llama", "num_hidden_layers": 22, "num_attention_heads": 32,
                                   "num_key_value_heads": 4, "hidden_size": 2048, "vocab_size": 32000})
    x = explain("Expected size 32 but got size 4 for tensor number 1 in the list", llama, route="optimum")
    assert (x.expected_fields, x.got_fields) == (["num_attention_heads"], ["num_key_value_heads"]) and "1432" in x.fix
    qwen3 = ModelSpec.from_config({"model_type": "qwen3", "num_hidden_layers": 28, "num_attention_heads": 16,
                                   "num_key_value_heads": 8, "head_dim": 128, "hidden_size": 1024, "vocab_size": 151936})
    x = explain("index: 3 Got: 64 Expected: 128", qwen3, route="torch")
    assert x.kind == "head_dim" and (x.got_fields, x.expected_fields) == (["hidden_size // num_attention_heads"], ["head_dim"])
    assert "config.head_dim" in x.fix
