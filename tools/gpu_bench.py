"""Mistral-7B-v0.1's shapes on a GPU, in one run: random fp16 weights -> export fp16 and int4 for CUDA through
mistral_onnx's `export` -> `validate` against transformers -> `bench` side by side (with and without CUDA graph).

Usage (on the GPU machine, with onnxruntime-gpu and onnxruntime-genai-cuda importable):
    python tools/gpu_bench.py OUT_DIR [--work /tmp/m7b] [--layers 32] [--skip-int4]
Writes OUT_DIR/gpu_results.json after every stage (a partial run still leaves its numbers) and OUT_DIR/gpu_bench.log.
"""
from __future__ import annotations
import argparse, json, os, resource, shutil, sys, time, traceback
from pathlib import Path

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out"); ap.add_argument("--work", default="/tmp/m7b")
    ap.add_argument("--layers", type=int, default=None, help="fewer layers for a quick try (default: Mistral-7B's 32)")
    ap.add_argument("--skip-int4", action="store_true"); ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256); ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    out, work = Path(a.out), Path(a.work); out.mkdir(parents=True, exist_ok=True); work.mkdir(parents=True, exist_ok=True)
    import torch
    from mistral_onnx.export import export, versions
    from mistral_onnx.validate import validate, load_reference
    from mistral_onnx.bench import bench, random_mistral, machine, bandwidth_gbs
    from mistral_onnx.spec import ModelSpec, num_parameters
    res = {"machine": machine(), "versions": versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "command": "python tools/gpu_bench.py " + " ".join(sys.argv[1:]), "stages": {}, "errors": {}}
    def save(): (out/"gpu_results.json").write_text(json.dumps(res, indent=1, default=str))
    def stage(name, fn):
        t = time.time(); print(f"== {name}", flush=True)
        try:
            v = fn(); res["stages"][name] = {"seconds": round(time.time() - t, 2), **(v or {})}
            print(json.dumps(res["stages"][name], default=str)[:3000], flush=True)
        except Exception as e:
            res["errors"][name] = f"{type(e).__name__}: {e}"; traceback.print_exc()
        save()
    res["bandwidth_gbs"] = bandwidth_gbs("cuda", mb=1024); save()
    overrides = {"num_hidden_layers": a.layers} if a.layers else None
    src = work/"src"
    def make():
        random_mistral(src, overrides, dtype="float16", device="cuda")
        torch.cuda.empty_cache()
        spec = ModelSpec.from_pretrained(src)
        return {"parameters": num_parameters(spec), "bytes": sum(f.stat().st_size for f in src.glob("*.safetensors"))}
    stage("make_model", make)
    model_bytes = res["stages"]["make_model"]["bytes"]
    def exp(precision):
        def f():
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            r = export(src, work/precision, precision=precision, execution_provider="cuda", overwrite=True,
                       progress=lambda s, fr, m: print(f"   [{s}] {fr:.0%} {m}", flush=True))
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
            return {"export_seconds": r.report["seconds"], "stage_seconds": r.report["stage_seconds"], "bytes": r.report["bytes"],
                    "builder_peak_rss_bytes": peak, "peak_rss_over_model_bytes": peak / model_bytes,
                    "children_peak_before": r0 * 1024, "runtime_options": r.report["runtime_options"], "command": r.report["command"]}
        return f
    ref = {}
    def val(precision):
        def f():
            if "m" not in ref: ref["m"] = load_reference(src, "cuda", "float16")
            r = validate(src, work/precision, reference=ref["m"], progress=lambda s, fr, m: print(f"   [{s}] {fr:.0%} {m}", flush=True))
            print(r, flush=True)
            return r.to_dict()
        return f
    def variant_without_graph(precision):
        "A folder sharing the export's files whose genai_config has CUDA graph off."
        d = work/f"{precision}-nograph"; shutil.rmtree(d, ignore_errors=True); d.mkdir()
        for f in (work/precision).iterdir():
            if f.name != "genai_config.json": (d/f.name).symlink_to(f)
        g = json.loads((work/precision/"genai_config.json").read_text())
        for po in g["model"]["decoder"]["session_options"].get("provider_options", []):
            if "cuda" in po: po["cuda"]["enable_cuda_graph"] = "0"
        (d/"genai_config.json").write_text(json.dumps(g, indent=2))
        return d
    def ben(precision, runners):
        def f():
            ref.clear(); torch.cuda.empty_cache()     # two copies of the fp16 model would not leave room for the runners
            rs = {}
            r = bench(src, work/precision, runners=runners, prompt_len=a.prompt_len, new_tokens=a.new_tokens, repeats=a.repeats,
                      progress=lambda s, fr, m: print(f"   [{s}] {fr:.0%} {m}", flush=True))
            print(r, flush=True); rs["default"] = r.to_dict()
            torch.cuda.empty_cache()
            r2 = bench(src, variant_without_graph(precision), runners=("ortgenai",), prompt_len=a.prompt_len, new_tokens=a.new_tokens, repeats=a.repeats)
            print("without CUDA graph:\n" + str(r2), flush=True); rs["no_cuda_graph"] = r2.to_dict()
            return rs
        return f
    stage("export_fp16", exp("fp16"))
    stage("validate_fp16", val("fp16"))
    stage("bench_fp16", ben("fp16", ("ortgenai", "onnxruntime", "torch_cache", "torch_nocache")))
    if not a.skip_int4:
        shutil.rmtree(work/"fp16-nograph", ignore_errors=True)
        stage("export_int4", exp("int4"))
        stage("validate_int4", val("int4"))
        stage("bench_int4", ben("int4", ("ortgenai", "onnxruntime")))
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()); save()
    print("== done", flush=True)

if __name__ == "__main__": main()
