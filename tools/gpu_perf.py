#!/usr/bin/env python
"""GPU performance, round 2 (issue 16): batch sweep, prompt-length cost, and a profile of one fp16 decode step.

Usage (on the GPU machine; the gpu helper's tools/gpu_run.sh runs it from a scratch folder):
    python3 tools/gpu_perf.py --src /tmp/m7b/src --exports /tmp/m7b --out /tmp/gpurun/perf [--budget-s 400]
It writes OUT/perf.json after every step. On a machine without CUDA it runs the ORT GenAI and transformers steps on
the CPU (fp32 transformers, the fp32/ export) and records the profile steps as errors: a dry run for the script.

Expected time on one H200 at Mistral-7B's shapes: ~6.5 min (profile with CUDA graph ~1.2, ORT batch ~0.7, ORT prompt
lengths ~0.7, transformers load ~0.7, transformers batch ~1.2, transformers prompt lengths ~1, profile without CUDA
graph ~1). Every step runs in its own try/except and records its error; once --budget-s has passed the remaining
steps are skipped and say so. Steps in order (most wanted first): ort_batch, profile_cuda_graph, ort_prompt,
torch_batch, torch_prompt, profile_no_graph.

  batch    decode tok/s (aggregate) at batch 1, 8, 32: ORT GenAI vs transformers `generate` (fp16, its KV cache);
           128-token prompts, 64 new tokens, greedy, median of 2. ORT GenAI batches need `past_present_share_buffer`
           false (the builder's shared buffer refuses batch > 1 at prefill), which rules out CUDA graph, and a
           full-length cache (the window-long cache fails without the shared buffer): a variant folder is made with
           hard links (onnxruntime refuses symlinked external data that resolves outside the folder).
  prompt   ms per generated token (32 new) after a 128 / 1k / 4k / 8k-token prompt, batch 1, ORT GenAI (full-length cache
           variant, shared buffer and CUDA graph as exported) and transformers; also the prefill ms.
  profile  PyTorch's profiler (CUPTI: it sees ORT's kernels too; nsys makes no report on that machine) over 16 fp16
           decode steps of ORT GenAI (CUDA graph on and off), kernels grouped as GEMV/GEMM, attention, norm, rotary,
           elementwise, memcpy; launch gaps = the span of the steps minus the time the GPU ran a kernel; host gap =
           the unprofiled wall time per step minus the GPU's busy time.
"""
from __future__ import annotations
import argparse, csv, io, json, os, shutil, statistics, subprocess, sys, tempfile, time, traceback
from pathlib import Path

T0 = time.time()

def log(*a): print(f"[{time.time()-T0:7.1f}s]", *a, flush=True)

# ---------------------------------------------------------------- variants of the export
def variant(exported:Path, out:Path, share_buffer:bool|None=None, cuda_graph:bool|None=None, full_cache:bool=True) -> Path:
    "A folder with the export's data hard-linked (copied if it cannot be) and genai_config / GQA attributes changed."
    import onnx
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in exported.iterdir():
        if f.name in ("genai_config.json", "model.onnx") or not f.is_file(): continue
        try: os.link(f, out/f.name)
        except OSError: shutil.copy2(f, out/f.name)
    m = onnx.load(str(exported/"model.onnx"), load_external_data=False)
    if full_cache:
        for n in m.graph.node:
            if n.op_type == "GroupQueryAttention":
                for at in n.attribute:
                    if at.name == "sliding_window_cache": at.i = 0    # full-length cache; GQA still masks the window
    onnx.save(m, str(out/"model.onnx"))
    g = json.loads((exported/"genai_config.json").read_text())
    dec = g["model"]["decoder"]
    if full_cache: dec.pop("sliding_window", None)
    if share_buffer is not None: g["search"]["past_present_share_buffer"] = share_buffer
    if cuda_graph is not None:
        for po in dec.setdefault("session_options", {}).setdefault("provider_options", []):
            if "cuda" in po: po["cuda"]["enable_cuda_graph"] = "1" if cuda_graph else "0"
    (out/"genai_config.json").write_text(json.dumps(g, indent=2))
    return out

def context_of(folder:Path) -> int:
    g = json.loads((folder/"genai_config.json").read_text())
    return g["model"].get("context_length") or g["search"]["max_length"]

# ---------------------------------------------------------------- runners
def Ort(folder:Path):
    "bench's ORT GenAI runner (through DecodeSession) on `folder`: `.run(ids, new_tokens) -> (prefill_s, decode_s)`, ids a batch."
    from mistral_onnx.bench import GenaiBench
    from mistral_onnx.folder import ExportFolder
    return GenaiBench(ExportFolder.of(folder), None, None)

def Torch(source:Path, device:str="cuda", dtype:str="float16"):
    "bench's transformers runner (`generate` with its KV cache) on `source`."
    import torch
    from transformers import AutoModelForCausalLM
    from mistral_onnx.bench import TorchBench
    return TorchBench(None, None, None, model=AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype)).to(device).eval())

def rand_ids(b, n, vocab, seed=0):
    import numpy as np
    return np.random.default_rng(seed).integers(3, vocab, size=(b, n)).tolist()

def timed(runner, ids, new_tokens, repeats):
    runner.run(ids, min(new_tokens, 8))     # warm-up (allocations, CUDA graph capture)
    ts = [runner.run(ids, new_tokens) for _ in range(repeats)]
    pre = statistics.median(t[0] for t in ts); dec = statistics.median(t[1] for t in ts)
    b = len(ids)
    return {"prefill_ms": pre * 1e3, "decode_ms_per_step": dec * 1e3 / (new_tokens - 1),
            "decode_tok_s": b * (new_tokens - 1) / dec, "runs_ms": [[round(a * 1e3, 2), round(c * 1e3, 2)] for a, c in ts]}

# ---------------------------------------------------------------- parts
def over(a) -> bool: return time.time() - T0 > a.budget_s

def ort_batch(a, res, work):
    out = res.setdefault("batch", {"settings": {"prompt_len": 128, "new_tokens": a.new_tokens, "repeats": 2, "batches": a.batches,
                                                "ortgenai": "past_present_share_buffer false, CUDA graph off, full-length cache"}})
    ort = Ort(variant(a.exported, work/"batch", share_buffer=False, cuda_graph=False))
    for b in a.batches:
        if over(a): out[f"ortgenai_b{b}"] = {"error": "skipped: time budget spent"}; continue
        try: out[f"ortgenai_b{b}"] = timed(ort, rand_ids(b, 128, a.vocab), a.new_tokens, 2); log("ortgenai batch", b, out[f"ortgenai_b{b}"]["decode_tok_s"])
        except Exception as e: out[f"ortgenai_b{b}"] = {"error": f"{type(e).__name__}: {e}"}; traceback.print_exc()

def torch_batch(a, res, work):
    out = res["batch"]
    tor = get_torch(a)
    for b in a.batches:
        if over(a): out[f"torch_b{b}"] = {"error": "skipped: time budget spent"}; continue
        try: out[f"torch_b{b}"] = timed(tor, rand_ids(b, 128, a.vocab), a.new_tokens, 2); log("torch batch", b, out[f"torch_b{b}"]["decode_tok_s"])
        except Exception as e: out[f"torch_b{b}"] = {"error": f"{type(e).__name__}: {e}"}; traceback.print_exc()
    out["ratios"] = {f"b{b}": out[f"ortgenai_b{b}"]["decode_tok_s"] / out[f"torch_b{b}"]["decode_tok_s"]
                     for b in a.batches if "decode_tok_s" in out.get(f"ortgenai_b{b}", {}) and "decode_tok_s" in out.get(f"torch_b{b}", {})}

_TORCH = {}
_ORT = {}
def get_torch(a):
    if "m" not in _TORCH: log("loading transformers", a.dtype); t = time.time(); _TORCH["m"] = Torch(a.source, a.device, a.dtype); log(f"  {time.time()-t:.0f} s")
    return _TORCH["m"]

def ort_prompt(a, res, work):
    out = res.setdefault("prompt", {"settings": {"lengths": a.lengths, "new_tokens": 32, "repeats": 2, "batch": 1,
                                                 "ortgenai": "full-length cache (sliding_window_cache=0, window masked by GQA), shared buffer and CUDA graph as exported"}})
    ctx = context_of(a.exported)
    ort = Ort(variant(a.exported, work/"prompt"))
    for n in a.lengths:
        if n + 32 > ctx: out[f"ortgenai_{n}"] = {"error": f"prompt {n} + 32 exceeds the export's context {ctx}"}; continue
        if over(a): out[f"ortgenai_{n}"] = {"error": "skipped: time budget spent"}; continue
        try: out[f"ortgenai_{n}"] = timed(ort, rand_ids(1, n, a.vocab), 32, 2); log("ortgenai prompt", n, out[f"ortgenai_{n}"]["decode_ms_per_step"])
        except Exception as e:
            out[f"ortgenai_{n}"] = {"error": f"{type(e).__name__}: {e}"}; traceback.print_exc()
            try:   # a new max_length per generator may not go with CUDA graph: the same without it
                if "nograph" not in _ORT:
                    _ORT["nograph"] = Ort(variant(a.exported, work/"prompt_nograph", cuda_graph=False))
                out[f"ortgenai_nograph_{n}"] = timed(_ORT["nograph"], rand_ids(1, n, a.vocab), 32, 2)
            except Exception as e2: out[f"ortgenai_nograph_{n}"] = {"error": f"{type(e2).__name__}: {e2}"}
    del ort; _ORT.clear()

def torch_prompt(a, res, work):
    out = res["prompt"]
    tor = get_torch(a)
    for n in a.lengths:
        if over(a): out[f"torch_{n}"] = {"error": "skipped: time budget spent"}; continue
        try: out[f"torch_{n}"] = timed(tor, rand_ids(1, n, a.vocab), 32, 2); log("torch prompt", n, out[f"torch_{n}"]["decode_ms_per_step"])
        except Exception as e: out[f"torch_{n}"] = {"error": f"{type(e).__name__}: {e}"}; traceback.print_exc()

CATEGORIES = [("attention", ("groupqueryattention", "flash", "fmha", "attention", "mha", "xqa", "softmax")),
              ("rotary", ("rotary",)),
              ("norm", ("layernorm", "rmsnorm", "norm")),
              ("gemv_gemm", ("gemv", "gemm", "cutlass", "matmul", "xmma", "cublas", "sm90", "sm80", "nvjet", "splitk", "fpa_intb", "dequant")),
              ("elementwise", ("elementwise", "add", "mul", "silu", "sigmoid", "cast", "copy", "concat", "gather", "reduce", "argmax", "topk"))]

def categorize(name:str) -> str:
    n = name.lower()
    for c, keys in CATEGORIES:
        if any(k in n for k in keys): return c
    return "other"

def kineto_profile(folder:Path, steps:int=16, ort=None) -> dict:
    "One ORT GenAI decode step, from PyTorch's profiler (CUPTI sees every kernel of the process, ORT's included); `ort`: a loaded runner of `folder`."
    import numpy as np, torch
    from torch.profiler import profile as tprofile, ProfilerActivity
    ort = ort or Ort(folder); og = ort.og
    g0 = json.loads((folder/"genai_config.json").read_text())
    win = (g0["model"]["decoder"].get("sliding_window") or {}).get("window_size") or 0   # a ring cache must hold the window
    p = og.GeneratorParams(ort.model); n = 128 + 2 * steps + 40
    p.set_search_options(max_length=min(max(n, win), context_of(folder)), min_length=n, do_sample=False)
    g = og.Generator(ort.model, p)
    g.append_tokens(np.random.default_rng(0).integers(3, 32000, size=(1, 128)).astype(np.int32))
    for _ in range(20): g.generate_next_token(); g.get_next_tokens()     # warm-up (CUDA graph captured)
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(steps): g.generate_next_token(); g.get_next_tokens()
    torch.cuda.synchronize(); wall = (time.perf_counter() - t) * 1e3 / steps
    with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps): g.generate_next_token(); g.get_next_tokens()
        torch.cuda.synchronize()
    kern = []
    for e in prof.events():
        if str(getattr(e, "device_type", "")).endswith("CUDA"):
            st, en = e.time_range.start, e.time_range.end
            name = e.name
            cat = "memcpy/memset" if ("Memcpy" in name or "Memset" in name or "memcpy" in name.lower()) else categorize(name)
            kern.append((st, en - st, cat, name))
    del g, ort
    if not kern: raise RuntimeError("the profiler saw no CUDA kernel (CUPTI not available?)")
    kern.sort()
    span = kern[-1][0] + kern[-1][1] - kern[0][0]
    busy, end = 0.0, kern[0][0]
    for st, du, _, _ in kern:
        if st + du > end: busy += st + du - max(st, end); end = st + du
    by_cat, by_name = {}, {}
    for _, du, cat, name in kern:
        by_cat[cat] = by_cat.get(cat, 0) + du; by_name[name] = by_name.get(name, 0) + du
    kt = sum(by_cat.values())
    return {"tool": "torch.profiler (CUPTI), times in us", "steps": steps, "wall_ms_per_step_unprofiled": wall,
            "gpu_span_ms_per_step": span / 1e3 / steps, "gpu_busy_ms_per_step": busy / 1e3 / steps,
            "launch_gap_ms_per_step": (span - busy) / 1e3 / steps, "launch_gap_share_of_span": (span - busy) / span if span else None,
            "host_gap_ms_per_step": wall - busy / 1e3 / steps, "kernels_per_step": len(kern) / steps,
            "kernel_share": {c: v / kt for c, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
            "kernel_ms_per_step": {c: v / 1e3 / steps for c, v in by_cat.items()},
            "top_kernels": [{"name": n[:160], "category": categorize(n), "ms_per_step": v / 1e3 / steps}
                            for n, v in sorted(by_name.items(), key=lambda kv: -kv[1])[:15]]}

def profile(tag, graph):
    def f(a, res, work):
        out = res.setdefault("profile", {})
        if a.device != "cuda": raise RuntimeError("no CUDA device: the profile needs one")
        v = variant(a.exported, work/f"prof_{tag}", cuda_graph=graph, full_cache=False)
        out[tag] = kineto_profile(v); log("profile", tag, json.dumps(out[tag]["kernel_share"]))
    return f

# in this order: the most wanted first, ORT GenAI loads kept together, transformers loaded once
STEPS = [("ort_batch", ort_batch), ("profile_cuda_graph", profile("cuda_graph", True)), ("ort_prompt", ort_prompt),
         ("torch_batch", torch_batch), ("torch_prompt", torch_prompt), ("profile_no_graph", profile("no_graph", False))]

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, required=True, help="the Hugging Face folder (transformers side)")
    ap.add_argument("--exports", type=Path, required=True, help="folder holding the export(s): fp16/ (else fp32/) is used")
    ap.add_argument("--out", type=Path, required=True, help="folder to write perf.json into")
    ap.add_argument("--steps", default=",".join(n for n, _ in STEPS))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 1024, 4096, 8192])
    ap.add_argument("--new-tokens", type=int, default=64, help="new tokens per batch-sweep run")
    ap.add_argument("--budget-s", type=float, default=400, help="start no new measurement after this many seconds")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir())/"gpu_perf")
    a = ap.parse_args()
    a.source = a.src
    a.exported = next((a.exports/p for p in ("fp16", "fp32") if (a.exports/p/"genai_config.json").exists()), a.exports)
    a.work.mkdir(parents=True, exist_ok=True); a.out.mkdir(parents=True, exist_ok=True)
    res = {"command": "python tools/gpu_perf.py " + " ".join(sys.argv[1:]), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "exported": str(a.exported), "errors": {}, "seconds": {}}
    def save(): (a.out/"perf.json").write_text(json.dumps(res, indent=1, default=str))
    try:
        import torch
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
        a.dtype = "float16" if a.device == "cuda" else "float32"
        a.vocab = json.loads((a.source/"config.json").read_text())["vocab_size"]
        res["device"], res["torch_dtype"] = a.device, a.dtype
        from mistral_onnx.bench import machine, bandwidth_gbs
        res["machine"] = machine(); res["bandwidth_gbs"] = bandwidth_gbs(a.device, mb=1024 if a.device == "cuda" else 256)
        wbytes = sum(f.stat().st_size for f in a.exported.iterdir() if f.suffix in (".data", ".onnx") or f.name.endswith(".onnx.data"))
        res["export_weight_bytes"] = wbytes; res["floor_tok_s_all_weights"] = res["bandwidth_gbs"] * 1e9 / wbytes
        from importlib.metadata import version
        res["versions"] = {}
        for d in ("onnxruntime-gpu", "onnxruntime", "onnxruntime-genai-cuda", "onnxruntime-genai", "torch", "transformers"):
            try: res["versions"][d] = version(d)
            except Exception: pass
    except Exception as e: res["errors"]["setup"] = f"{type(e).__name__}: {e}"; traceback.print_exc()
    save()
    steps = dict(STEPS)
    for name in a.steps.split(","):
        if over(a): res["errors"][name] = f"skipped: time budget ({a.budget_s:.0f} s) spent"; save(); continue
        t = time.time(); log("== step", name)
        try: steps[name](a, res, a.work)
        except Exception as e: res["errors"][name] = f"{type(e).__name__}: {str(e)[:1500]}"; traceback.print_exc()
        res["seconds"][name] = round(time.time() - t, 1); save()
    _TORCH.clear()
    res["total_seconds"] = round(time.time() - T0, 1); save()
    log("wrote", a.out/"perf.json")

if __name__ == "__main__":
    main()
