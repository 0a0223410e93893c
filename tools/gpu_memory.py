"""Issue 17 on the GPU machine: the int4 export of a Mistral-7B-shaped model through the model builder, before
(the builder's own `to_nbits`) and after (`mistral_onnx.quantize.low_memory_to_nbits`), in one run: peak host memory
per stage, wall time, whether the two outputs are the same tensors, and decode tokens/s of each.

Usage (the gpu helper's lease; runs on CPU too, for a try with a small model):
    python3 tools/gpu_memory.py --src /tmp/m7b/src --exports /tmp/m7b --out /tmp/gpurun/mem [--budget 300] [--ep cuda|cpu]
Writes OUT/memory.json after every part (a killed run still leaves its numbers) and prints timestamped progress.
Parts, most important first: estimate (0 s), after = low-memory int4 export (~60-90 s on the H200 machine for 7B),
before = the builder's own int4 (~90 s, peaks near 36 GB of host memory), same (the two outputs compared tensor by
tensor, ~15 s), decode (tokens/s of each, interleaved, ~30 s with model loads). A part that would not fit in what is left of
--budget is skipped and says so. The two exports are written under EXPORTS/int4-lowmem and EXPORTS/int4-builder and
removed at the end unless --keep.
"""
from __future__ import annotations
import argparse, json, shutil, sys, time, traceback
from pathlib import Path

T0 = time.time()
def say(msg): print(f"[{time.strftime('%H:%M:%S', time.gmtime())} +{time.time() - T0:5.0f}s] {msg}", flush=True)

def decode_speed(folders:dict, prompt_len=128, new_tokens=128, repeats=3):
    "Greedy decode tokens/s of ORT GenAI on each export, runs interleaved (A, B, A, B, ...) so both see the same machine; best of `repeats`."
    import onnxruntime_genai as og
    models, res = {}, {}
    for k, folder in folders.items():
        t = time.time(); models[k] = og.Model(str(folder)); res[k] = {"load_s": round(time.time() - t, 2)}
    for _ in range(repeats):
        for k, model in models.items():
            cfg = json.loads((Path(folders[k])/"genai_config.json").read_text())["model"]
            ids = [(7 * i + 11) % (cfg["vocab_size"] - 3) + 3 for i in range(prompt_len)]
            total = prompt_len + new_tokens
            window = (cfg["decoder"].get("sliding_window") or {}).get("window_size") or 0
            p = og.GeneratorParams(model)
            p.set_search_options(max_length=min(max(total, window), cfg.get("context_length") or total), min_length=total, do_sample=False)
            g = og.Generator(model, p)
            t0 = time.perf_counter(); g.append_tokens(ids); g.generate_next_token(); g.get_next_tokens(); t1 = time.perf_counter()
            for _ in range(new_tokens - 1): g.generate_next_token(); g.get_next_tokens()
            t2 = time.perf_counter(); del g
            tps = (new_tokens - 1) / (t2 - t1)
            if tps > res[k].get("decode_tokens_per_s", 0):
                res[k].update(prefill_s=round(t1 - t0, 4), decode_s=round(t2 - t1, 4), decode_tokens_per_s=round(tps, 2))
    models.clear()
    return {**res, "prompt_len": prompt_len, "new_tokens": new_tokens, "repeats": repeats, "order": "interleaved, best of repeats"}

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", required=True, help="Hugging Face model folder (Mistral-7B-shaped, random weights)")
    ap.add_argument("--exports", required=True, help="folder for the two int4 exports")
    ap.add_argument("--out", required=True, help="folder for memory.json")
    ap.add_argument("--budget", type=float, default=300, help="seconds for the whole script")
    ap.add_argument("--ep", default=None, help="cuda or cpu (default: cuda when torch sees a GPU)")
    ap.add_argument("--keep", action="store_true", help="keep the two exports")
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    exports = Path(a.exports); exports.mkdir(parents=True, exist_ok=True)
    res = {"issue": 17, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "command": "python3 tools/gpu_memory.py " + " ".join(sys.argv[1:]), "parts": {}, "errors": {}, "skipped": {}}
    def save(): (out/"memory.json").write_text(json.dumps(res, indent=1, default=str))
    expected = {"estimate": 5, "after": 120, "before": 150, "same": 30, "decode": 45}
    def part(name, fn):
        left = a.budget - (time.time() - T0)
        if left < expected[name]:
            res["skipped"][name] = f"{left:.0f} s left of the {a.budget:.0f} s budget; this part takes about {expected[name]} s"
            say(f"skip {name}: {res['skipped'][name]}"); save(); return None
        say(f"== {name}"); t = time.time()
        try:
            v = fn(); res["parts"][name] = {"seconds": round(time.time() - t, 2), **(v or {})}
            say(json.dumps(res["parts"][name], default=str)[:1500])
        except Exception as e:
            res["errors"][name] = f"{type(e).__name__}: {str(e)[:2000]}"; traceback.print_exc()
        save(); return res["parts"].get(name)

    try:
        from mistral_onnx.bench import machine
        res["machine"] = machine()
    except Exception as e: res["machine"] = f"unknown ({e})"
    try:
        from mistral_onnx.env import versions
        res["versions"] = versions()
    except Exception as e: res["versions"] = f"unknown ({e})"
    ep = a.ep
    if ep is None:
        try:
            import torch; ep = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError: ep = "cpu"
    res["execution_provider"] = ep
    from mistral_onnx.quantize import profile_builder, compare_models
    from mistral_onnx.resources import estimate_export_resources, free_resources, weight_bytes, folder_weight_bytes
    from mistral_onnx.spec import ModelSpec, num_parameters
    src = Path(a.src)
    spec = ModelSpec.from_config(json.loads((src/"config.json").read_text()))
    sdt = json.loads((src/"config.json").read_text()).get("torch_dtype") or json.loads((src/"config.json").read_text()).get("dtype") or spec.dtype
    res.update({"source": str(src), "source_bytes": weight_bytes(src), "parameters": num_parameters(spec), "source_dtype": sdt,
                "free_before": free_resources(exports)})
    save()

    def estimate():
        return {k: estimate_export_resources(spec, "int4", low_memory=low, execution_provider=ep, source_dtype=sdt).to_dict()
                for k, low in (("after", True), ("before", False))}
    part("estimate", estimate)

    def export(low):
        def f():
            d = exports/("int4-lowmem" if low else "int4-builder"); shutil.rmtree(d, ignore_errors=True)
            lines = []
            r = profile_builder(src, d, "int4", ep, low_memory=low,
                                log=lambda l: (lines.append(l), print("   " + l, flush=True) if l.startswith(("mistral_onnx", "Saving ONNX", "Reading layer 0", "Saving GenAI")) else None))
            sp = r["stage_peak_rss_bytes"]
            r["peak_above_load_over_source"] = round((sp["peak"] - sp.get("load", 0)) / r["source_bytes"], 3)
            r["folder_bytes"] = folder_weight_bytes(d)
            r["log_tail"] = [l for l in lines if l.startswith("mistral_onnx")][-4:]
            return r
        return f
    part("after", export(True))
    part("before", export(False))
    if "after" in res["parts"] and "before" in res["parts"]:
        part("same", lambda: compare_models(exports/"int4-lowmem", exports/"int4-builder"))
    dec = {k: exports/d for k, d in (("after", "int4-lowmem"), ("before", "int4-builder")) if k in res["parts"]}
    if dec: part("decode", lambda: decode_speed(dec))
    p = res["parts"]
    if "after" in p and "before" in p:
        b, l = p["before"]["stage_peak_rss_bytes"]["peak"], p["after"]["stage_peak_rss_bytes"]["peak"]
        res["summary"] = {"peak_rss_before_bytes": b, "peak_rss_after_bytes": l, "peak_ratio_after_over_before": round(l / b, 3),
                          "peak_over_source_before": round(b / res["source_bytes"], 3), "peak_over_source_after": round(l / res["source_bytes"], 3),
                          "peak_above_load_over_source_before": p["before"]["peak_above_load_over_source"],
                          "peak_above_load_over_source_after": p["after"]["peak_above_load_over_source"],
                          "stage_peak_rss_bytes_before": p["before"]["stage_peak_rss_bytes"], "stage_peak_rss_bytes_after": p["after"]["stage_peak_rss_bytes"],
                          "seconds_before": p["before"]["seconds"], "seconds_after": p["after"]["seconds"],
                          "same_tensors": p.get("same", {}).get("same_tensors"),
                          "decode_tokens_per_s_before": p.get("decode", {}).get("before", {}).get("decode_tokens_per_s"),
                          "decode_tokens_per_s_after": p.get("decode", {}).get("after", {}).get("decode_tokens_per_s")}
        say("summary " + json.dumps(res["summary"]))
    if not a.keep:
        for d in ("int4-lowmem", "int4-builder"): shutil.rmtree(exports/d, ignore_errors=True)
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()); res["wall_s"] = round(time.time() - T0, 1)
    save(); say("done")

if __name__ == "__main__": main()
