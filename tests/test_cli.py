"The mistral-onnx command as a user runs it: a subprocess, exit codes, messages that name the cause and the fix."
import json, shutil
from pathlib import Path
import onnx
from conftest import cli

def test_export_check_generate_int4(tmp_path):
    out = tmp_path/"int4"
    p = cli("export", "embedded", out, "--precision", "int4")
    assert p.returncode == 0, p.stderr
    for stage in ("load", "convert", "quantize", "write", "check"): assert f"[{stage:>8}]" in p.stdout
    assert json.loads((out/"export_report.json").read_text())["precision"] == "int4"
    p = cli("check", out); assert p.returncode == 0 and "PASS" in p.stdout
    p = cli("generate", out, "reverse: abcdef"); assert p.returncode == 0, p.stderr
    from mistral_onnx.generate import OnnxLM
    assert p.stdout.strip() == OnnxLM(out).generate("reverse: abcdef").strip()   # the CLI streams what the API answers
    assert "tokens/s" in p.stderr

def _drop_input(src, dst, name):
    shutil.copytree(src, dst)
    m = onnx.load(str(dst/"model.onnx"), load_external_data=False)
    keep = [i for i in m.graph.input if i.name != name]
    del m.graph.input[:]; m.graph.input.extend(keep)
    onnx.save(m, str(dst/"model.onnx"))

def test_check_names_missing_cache_input(exported, tmp_path):
    _drop_input(exported["fp32"], tmp_path/"broken", "past_key_values.2.value")
    p = cli("check", tmp_path/"broken")
    assert p.returncode == 1
    assert "FAIL past_key_values.2.value: missing" in p.stdout

def test_check_names_query_head_sized_cache(exported, tmp_path):
    dst = tmp_path/"mha"; shutil.copytree(exported["fp32"], dst)
    m = onnx.load(str(dst/"model.onnx"), load_external_data=False)
    for vi in m.graph.input:
        if vi.name == "past_key_values.0.key": vi.type.tensor_type.shape.dim[1].dim_value = 8
    onnx.save(m, str(dst/"model.onnx"))
    p = cli("check", dst)
    assert p.returncode == 1 and "past_key_values.0.key" in p.stdout and "num_attention_heads (8)" in p.stdout

def test_failures_name_cause_and_fix(exported, tmp_path):
    p = cli("export", tmp_path/"missing", tmp_path/"o"); assert p.returncode == 2 and "neither an existing folder" in p.stderr
    assert not (tmp_path/"o").exists()
    p = cli("export", "embedded", exported["fp32"]); assert p.returncode == 2 and "--overwrite" in p.stderr
    p = cli("export", "embedded", tmp_path/"f16", "--precision", "fp16"); assert p.returncode == 2 and "cannot run on cpu" in p.stderr
    p = cli("check", tmp_path); assert p.returncode == 2 and "genai_config.json" in p.stderr
    p = cli("generate", exported["fp32"], "   "); assert p.returncode == 2 and "empty" in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == []

def test_demo(tmp_path):
    p = cli("demo", "--out", tmp_path/"demo", cwd=tmp_path)   # the 500 held-out prompts; exits 1 below 99%
    assert p.returncode == 0, p.stdout + p.stderr
    assert "KV check" in p.stdout and "PASS" in p.stdout and "accuracy" in p.stdout

def test_window_cache_flag(tmp_path):
    "`--window-cache ring` reaches the builder and the report's reproduce line; the default is full; other routes refuse the flag."
    out = tmp_path/"ring"
    p = cli("export", "embedded", out, "--window-cache", "ring")
    assert p.returncode == 0, p.stderr
    rep = json.loads((out/"export_report.json").read_text())
    assert rep["route_info"]["window_cache"] == "ring" and "--window-cache ring" in rep["command"]
    p = cli("export", "embedded", tmp_path/"t", "--route", "torch", "--window-cache", "ring")
    assert p.returncode == 2 and "builder route only" in p.stderr and not (tmp_path/"t").exists(), p.stderr
    p = cli("export", "embedded", tmp_path/"x", "--window-cache", "wide")
    assert p.returncode == 2 and "invalid choice" in p.stderr

def _block_sizes(folder) -> set:
    m = onnx.load(str(folder/"model.onnx"), load_external_data=False)
    return {a.i for n in m.graph.node if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "block_size"}

def test_int4_block_size_flag(tmp_path):
    "`--int4-block-size` reaches every MatMulNBits node and the reproduce line; the default is 128 here; fp32 refuses it."
    out = tmp_path/"b64"
    p = cli("export", "embedded", out, "--precision", "int4", "--int4-block-size", "64")
    assert p.returncode == 0, p.stderr
    assert _block_sizes(out) == {64}
    assert "--int4-block-size 64" in json.loads((out/"export_report.json").read_text())["command"]
    p = cli("export", "embedded", tmp_path/"d", "--recipe", "int4-rtn"); assert p.returncode == 0, p.stderr
    assert _block_sizes(tmp_path/"d") == {128}          # int4-rtn's rule: the embedded model's widths (128, 384) all divide by 128
    p = cli("export", "embedded", tmp_path/"f", "--int4-block-size", "64")
    assert p.returncode == 2 and "--precision int4" in p.stderr and not (tmp_path/"f").exists(), p.stderr
    p = cli("export", "embedded", tmp_path/"g", "--precision", "int4", "--int4-block-size", "48")
    assert p.returncode == 2 and "invalid choice" in p.stderr

def test_int4_default_block_per_provider(tmp_path):
    "CPU int4 of a model whose widths divide by 256 gets blocks of 256 (measured fastest on CPU), and runs."
    from mistral_onnx.bench import random_mistral
    src = random_mistral(tmp_path/"src", {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
                                          "num_key_value_heads": 2, "vocab_size": 32000})
    p = cli("export", src, tmp_path/"q", "--recipe", "int4-rtn"); assert p.returncode == 0, p.stderr   # int4-rtn's per-provider rule (the CPU default is int4-hqq, block 32)
    assert _block_sizes(tmp_path/"q") == {256}
    p = cli("generate", tmp_path/"q", "hello", "--raw", "--max-new-tokens", "4"); assert p.returncode == 0, p.stderr
    # the CUDA refusals (`builder._refuse_cuda_block`, `ExportFolder.model('cuda')`) are tested in their notebooks: here the CLI
    # refuses --ep cuda earlier, because this machine has no CUDA runtime
