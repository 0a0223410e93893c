#!/usr/bin/env python
"""CPU side by side: our ORT GenAI exports (fp32, int4) against transformers, llama.cpp and OpenVINO GenAI.

One process, every runner loaded once and run in turn (A B C ..., A B C ..., order rotated each round), the same
prompt ids, the same number of new tokens, greedy, the same threads. During every timed run the CPU time used by
*other* processes is read from /proc/stat (all cores' busy time minus this process's own); a run is kept as quiet
when that is below `--max-load` cores, else it is retried (up to `--retries` times) and, if never quiet, the least
loaded attempt is kept and flagged. Each number in the output says the load it was measured under.

Stages (each cached in --work, so a re-run only measures):
  models   random-weight Mistrals: 55m (SMALL_55M) and 850m (hidden 2048, 16 layers, 32/8 heads, intermediate 5632)
  exports  ours: fp32 and int4 with the builder (`mistral_onnx.export`)
  peers    llama.cpp GGUF f32 + Q4_0 (`mistral_onnx.peers`), OpenVINO IR fp32 + int4 (`optimum-cli export openvino`)
  bench    the interleaved runs -> the `peers` section of nbs/tutorials/cpu_results.json
Other modes: --recipes (int4 builder recipes on 850m against llama.cpp Q4_0, and each recipe's accuracy on the
embedded model), --threads-sweep (ORT GenAI decode with 1 and 2 threads).

Run it in the project's .venv-peers (mistral_onnx + llama-cpp-python + openvino-genai); optimum-cli may live in
another venv (--optimum-cli, default .venv-ov/bin/optimum-cli). Expected time on 2 idle cores: first run ~25 min
(conversions ~12, measuring ~12); later runs ~12 min; much longer on a loaded machine (retries).

  .venv-peers/bin/python tools/cpu_peers.py                   # models, exports, peers, bench (55m and 850m)
  .venv-peers/bin/python tools/cpu_peers.py --models 55m --rounds 3
  .venv-peers/bin/python tools/cpu_peers.py --recipes --models 850m
  .venv-peers/bin/python tools/cpu_peers.py --threads-sweep
"""
from __future__ import annotations
import argparse, gc, json, os, platform, statistics, sys, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import numpy as np

MODELS = {
    "55m": None,   # mistral_onnx.bench.SMALL_55M
    "850m": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 16, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 8192, "sliding_window": None},
}
RUNNER_ORDER = ["ortgenai_fp32", "ortgenai_int4", "torch_cache", "llamacpp_f32", "llamacpp_q4_0", "openvino", "openvino_f32", "openvino_int4"]
THREAD_RUNNERS = ["ortgenai_fp32_t1", "ortgenai_int4_t1"]   # add with --runners to measure 1 thread beside 2 in the same rounds

# ---------------------------------------------------------------- load of other processes
HZ = os.sysconf("SC_CLK_TCK")

def _cpu_now():
    "(busy jiffies of all cores, steal jiffies, this process's CPU seconds, wall seconds)"
    f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    v = [int(x) for x in f]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    t = os.times()
    return user + nice + system + irq + softirq, steal, t.user + t.system, time.perf_counter()

def others_cores(a, b) -> dict:
    "CPU used by other processes between two `_cpu_now` samples, in cores; and the hypervisor's steal."
    wall = max(b[3] - a[3], 1e-9)
    busy = (b[0] - a[0]) / HZ; own = b[2] - a[2]
    return {"others": max(busy - own, 0.0) / wall, "steal": (b[1] - a[1]) / HZ / wall, "own": own / wall}

# ---------------------------------------------------------------- stages
def log(*a): print(time.strftime("%H:%M:%S"), *a, flush=True)

def build_models(work:Path, names) -> dict:
    from mistral_onnx.bench import random_mistral, SMALL_55M
    out = {}
    for n in names:
        d = work/"models"/n
        if not (d/"model.safetensors").exists() and not any(d.glob("model*.safetensors")):
            log(f"building random Mistral {n}")
            random_mistral(d, SMALL_55M if n == "55m" else MODELS[n])
        out[n] = d
    return out

def export_ours(src:Path, out:Path, precision:str, extra_options:dict|None=None) -> Path:
    from mistral_onnx.export import export
    if (out/"export_report.json").exists(): return out
    log(f"export {src.name} {precision} {extra_options or ''} -> {out}")
    t = time.time()
    export(src, out, precision=precision, extra_options=extra_options or None)
    log(f"  done in {time.time()-t:.0f} s")
    return out

def folder_mb(p:Path, suffixes=(".onnx", ".data", ".gguf", ".bin")) -> float:
    p = Path(p)
    files = [p] if p.is_file() else [f for f in p.iterdir() if f.is_file()]
    return sum(f.stat().st_size for f in files if f.suffix in suffixes or f.name.endswith(".onnx.data")) / 1e6

class OrtBench:
    "ORT GenAI (bench.GenaiBench's loop) with the thread count set through og.Config.overlay."
    def __init__(self, folder, name, threads):
        import onnxruntime_genai as og
        self.og, self.name = og, name
        cfg = og.Config(str(folder))
        cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(cfg)
        from mistral_onnx.check import read_genai_config
        g = read_genai_config(folder)
        self.context = g["model"].get("context_length") or g["search"]["max_length"]
        self.window = (g["model"]["decoder"].get("sliding_window") or {}).get("window_size") or 0   # a ring cache must hold the window
        self.weight_mb = folder_mb(folder)
        from mistral_onnx.bench import decode_bytes
        self.decode_mb = decode_bytes(Path(folder)/"model.onnx")["decode"] / 1e6
    def run(self, ids, new_tokens):
        p = self.og.GeneratorParams(self.model)
        total = len(ids) + new_tokens
        p.set_search_options(max_length=min(max(total, self.window), self.context), min_length=total, do_sample=False)
        gen = self.og.Generator(self.model, p)
        t0 = time.perf_counter()
        gen.append_tokens(ids); gen.generate_next_token(); gen.get_next_tokens()
        t1 = time.perf_counter()
        for _ in range(new_tokens - 1): gen.generate_next_token(); gen.get_next_tokens()
        return t1 - t0, time.perf_counter() - t1

class TorchCache:
    "transformers `generate` with its cache (bench.TorchBench's timing: a 1-token generate is the prefill)."
    name = "torch_cache"
    def __init__(self, src, threads):
        import torch
        from transformers import AutoModelForCausalLM
        torch.set_num_threads(threads)
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
        self.weight_mb = sum(p.numel() for p in self.model.parameters()) * 4 / 1e6
        emb = self.model.get_input_embeddings().weight
        self.decode_mb = self.weight_mb - (0 if self.model.config.tie_word_embeddings else emb.numel() * 4 / 1e6)
    def _gen(self, x, n):
        t = time.perf_counter()
        with self.torch.inference_mode():
            self.model.generate(x, attention_mask=self.torch.ones_like(x), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                use_cache=True, pad_token_id=0, max_length=None)
        return time.perf_counter() - t
    def run(self, ids, new_tokens):
        x = self.torch.tensor([ids])
        first = self._gen(x, 1); whole = self._gen(x, new_tokens)
        return first, max(whole - first, 1e-9)

def make_runner(name, m:Path, work:Path, threads:int, optimum_cli:str|None):
    "Load one runner of model folder `m` by name."
    from mistral_onnx import peers
    exp = work/"exports"
    if name == "ortgenai_fp32": return OrtBench(exp/f"{m.name}-fp32", name, threads)
    if name == "ortgenai_int4": return OrtBench(exp/f"{m.name}-int4", name, threads)
    if name in ("ortgenai_fp32_t1", "ortgenai_int4_t1"):   # the same export with one intra-op thread (the threads default)
        return OrtBench(exp/f"{m.name}-{name.split('_')[1]}", name, 1)
    if name.startswith("ortgenai_int4_"):   # a recipe: ortgenai_int4_<recipe>
        return OrtBench(exp/f"{m.name}-{name[len('ortgenai_'):]}", name, threads)
    if name == "torch_cache": return TorchCache(m, threads)
    if name.startswith("llamacpp_"):
        r = peers.LlamaCppBench(exp/f"{m.name}-fp32", kind=name.split("_", 1)[1], source=m, threads=threads, n_ctx=8192)
        return r
    if name.startswith("openvino"):
        wf = "int4" if name == "openvino_int4" else "fp32"
        ir = peers.openvino_for(m, wf, optimum_cli)
        return peers.OpenVINOBench(exp/f"{m.name}-fp32", weight_format=wf, precision="f32" if name == "openvino_f32" else None,
                                   ir=ir, threads=threads)
    raise ValueError(name)

def prepare_peers(m:Path, names, optimum_cli):
    "Convert for the peers asked for (cached); returns {runner: error} for those that cannot be prepared."
    errors = {}
    if not any(n.startswith(("llamacpp", "openvino")) for n in names): return errors
    from mistral_onnx import peers
    for kind in ("f32", "q4_0"):
        if f"llamacpp_{kind}" in names:
            try: log(f"gguf {kind} of {m.name}"); peers.gguf_for(m, kind)
            except Exception as e: errors[f"llamacpp_{kind}"] = f"{type(e).__name__}: {str(e)[:400]}"
    for wf, rs in (("fp32", ("openvino", "openvino_f32")), ("int4", ("openvino_int4",))):
        if any(r in names for r in rs):
            try: log(f"openvino {wf} of {m.name}"); t = time.time(); peers.openvino_for(m, wf, optimum_cli); log(f"  {time.time()-t:.0f} s")
            except Exception as e:
                for r in rs: errors[r] = f"{type(e).__name__}: {str(e)[:400]}"
    return errors

def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"): return int(line.split()[1]) / 1e3
    return 0.0

def measure(runners:dict, ids, new_tokens, rounds, max_load, retries, each_round=None) -> dict:
    "Interleaved timed runs with the load of other processes during each; per runner: runs and medians. `each_round()` runs after each round."
    names = list(runners)
    if not names: return {}
    runs = {n: [] for n in names}
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for n in order:
            best = None
            for attempt in range(retries + 1):
                a = _cpu_now(); pre, dec = runners[n].run(ids, new_tokens); b = _cpu_now()
                ld = others_cores(a, b)
                rec = {"prefill_ms": round(pre * 1e3, 3), "decode_ms": round(dec * 1e3, 3), "others_cores": round(ld["others"], 3),
                       "steal_cores": round(ld["steal"], 3), "attempt": attempt, "quiet": ld["others"] < max_load}
                if best is None or rec["others_cores"] < best["others_cores"]: best = rec
                if rec["quiet"]: break
                time.sleep(1.0 + attempt)
            runs[n].append(best)
            log(f"  round {i+1}/{rounds} {n:16} prefill {best['prefill_ms']:9.1f} ms  decode {(new_tokens-1)/best['decode_ms']*1e3:8.1f} tok/s"
                f"  others {best['others_cores']:.2f} cores{'' if best['quiet'] else '  (NOT quiet)'}")
        if each_round: each_round()
    out = {}
    for n in names:
        q = [r for r in runs[n] if r["quiet"]]
        use = q or runs[n]
        pre = statistics.median(r["prefill_ms"] for r in use); dec = statistics.median(r["decode_ms"] for r in use)
        out[n] = {"prefill_ms": pre, "decode_tok_s": (new_tokens - 1) / dec * 1e3, "quiet_runs": len(q), "runs_total": len(runs[n]),
                  "others_cores_median": statistics.median(r["others_cores"] for r in use),
                  "others_cores_max": max(r["others_cores"] for r in use), "measured_on": "quiet runs" if q else "CONTENDED runs (none quiet)",
                  "weight_mb": getattr(runners[n], "weight_mb", None), "decode_mb": getattr(runners[n], "decode_mb", None), "runs": runs[n]}
    return out

def bench_model(m:Path, names, args, extra_loaders:dict|None=None) -> dict:
    "Load the runners for model folder `m`, warm each up, measure interleaved."
    from mistral_onnx.bench import bandwidth_gbs
    from mistral_onnx.spec import ModelSpec, num_parameters
    spec = ModelSpec.from_pretrained(m)
    ids = [int(t) for t in np.random.default_rng(0).integers(3, spec.vocab_size, size=args.prompt_len)]
    errors = {}
    runners, load_s, peak = {}, {}, {}
    for n in names:
        need_mb = num_parameters(spec) * (4 if ("fp32" in n or n in ("torch_cache", "llamacpp_f32", "openvino")) else 1) / 1e6 * 1.3
        if mem_available_mb() < need_mb + 1500:
            errors[n] = f"skipped: {mem_available_mb():.0f} MB available, it needs about {need_mb:.0f} MB"; log(n, errors[n]); continue
        try:
            t = time.time(); log(f"load {n}")
            r = (extra_loaders or {}).get(n, lambda: make_runner(n, m, Path(args.work), args.threads, args.optimum_cli))()
            r.run(ids, args.new_tokens)       # warm-up
            runners[n], load_s[n] = r, round(time.time() - t, 2)
        except Exception as e:
            errors[n] = f"{type(e).__name__}: {str(e).splitlines()[0][:400] if str(e) else ''}"; log(f"  {n} failed: {errors[n]}")
            traceback.print_exc()
    # the floor's bandwidth: read by every core, 1 GiB (bench.bandwidth_gbs), measured before and after every round; this VM's
    # memory bandwidth moves with its neighbours (37-65 GB/s seen on one day), so the floor takes the best of them
    bws = [bandwidth_gbs("cpu")]
    log(f"measuring {len(runners)} runners on {m.name}: {args.rounds} rounds, prompt {args.prompt_len}, {args.new_tokens} new, {args.threads} threads")
    res = measure(runners, ids, args.new_tokens, args.rounds, args.max_load, args.retries,
                  each_round=lambda: bws.append(bandwidth_gbs("cpu", repeats=3)))
    bw = max(bws)
    for n, r in res.items():
        r["load_s"] = load_s[n]
        if r.get("decode_mb"): r["floor_tok_s"] = bw * 1e3 / r["decode_mb"]
    del runners; gc.collect()
    return {"model": m.name, "parameters": num_parameters(spec), "config": {k: getattr(spec, k, None) for k in
            ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size")},
            "bandwidth_gbs": bw, "bandwidth_gbs_rounds": [round(b, 1) for b in bws], "rows": res, "errors": errors}

def ratios(rows:dict) -> dict:
    out = {}
    for ours in ("ortgenai_fp32", "ortgenai_int4"):
        if ours not in rows: continue
        if ours + "_t1" in rows: out[f"{ours} 2 threads / 1 thread decode"] = rows[ours]["decode_tok_s"] / rows[ours + "_t1"]["decode_tok_s"]
        for peer, r in rows.items():
            if peer.startswith("ortgenai"): continue
            out[f"{ours} / {peer} decode"] = rows[ours]["decode_tok_s"] / r["decode_tok_s"]
            out[f"{ours} / {peer} prefill speed"] = r["prefill_ms"] / rows[ours]["prefill_ms"]
    return out

def versions() -> dict:
    from importlib.metadata import version
    out = {}
    for p in ("onnxruntime", "onnxruntime-genai", "torch", "transformers", "llama-cpp-python", "openvino", "openvino-genai"):
        try: out[p] = version(p)
        except Exception: out[p] = None
    if out["llama-cpp-python"] is None:       # imported from a source tree (PYTHONPATH + LLAMA_CPP_LIB_PATH)
        try: import llama_cpp; out["llama-cpp-python"] = llama_cpp.__version__ + " (source tree, libllama built here with -march=native)"
        except Exception: pass
    return out

def write_results(path:Path, key:str, value):
    "Set one top-level key of the results JSON, keeping the others (written atomically)."
    d = json.loads(path.read_text()) if path.exists() else {}
    d[key] = value
    tmp = path.with_suffix(".json.part"); tmp.write_text(json.dumps(d, indent=1) + "\n"); tmp.replace(path)

def read_key(path:Path, key:str) -> dict:
    return (json.loads(path.read_text()) if path.exists() else {}).get(key, {})

def header(args) -> dict:
    from mistral_onnx.bench import machine
    return {"machine": machine() + ", shared with other agents' work", "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "command": "python tools/cpu_peers.py " + " ".join(sys.argv[1:]), "versions": versions(),
            "settings": {"prompt_len": args.prompt_len, "new_tokens": args.new_tokens, "threads": args.threads, "rounds": args.rounds,
                         "max_load_cores": args.max_load, "retries": args.retries, "greedy": True,
                         "prompt_cache": "off (llama.cpp reset() before each run; OpenVINO prefix caching disabled)"}}

# ---------------------------------------------------------------- int4 recipes
RECIPES = {   # name -> builder extra_options (on top of precision int4); "int4" is the export default
    "int4": {},
    "int4_b128": {"block_size": 128},
    "int4_b64": {"block_size": 64},
    "int4_b256": {"block_size": 256},
    "int4_asym_b128": {"block_size": 128, "is_symmetric": False},
    "int4_acc1": {"accuracy_level": 1},
    "int4_gather": {"op_types_to_quantize": "MatMul/Gather"},
    "int4_b128_gather": {"block_size": 128, "op_types_to_quantize": "MatMul/Gather"},
    "int4_b32_lm8": {"matmul_mixed_precision": "last_matmul:int8"},
}

def recipes(args, models):
    from mistral_onnx.validate import task_accuracy
    from mistral_onnx.models import resolve_source
    names = args.recipe_names or list(RECIPES)
    out = {"about": "int4 builder recipes (extra_options) on the 850m model beside llama.cpp Q4_0 and the ORT GenAI fp32 "
                    "export, and each recipe's held-out accuracy on the embedded model (task_accuracy, n prompts)",
           "recipes": {k: RECIPES[k] for k in names}, **header(args)}
    emb = resolve_source("embedded")
    acc, acc_err = {}, {}
    if not args.no_accuracy:
        for k in ["fp32"] + names:
            try:
                f = export_ours(emb, Path(args.work)/"exports"/f"embedded-{k}", "fp32" if k == "fp32" else "int4", RECIPES.get(k))
                t = time.time(); acc[k] = task_accuracy(f, n=args.accuracy_n); log(f"accuracy {k}: {acc[k]:.3f} ({time.time()-t:.0f} s)")
            except Exception as e:
                acc_err[k] = f"{type(e).__name__}: {str(e)[:600]}"; log(f"accuracy {k} failed: {acc_err[k]}")
            out["accuracy"] = {"n": args.accuracy_n, "exact_match": acc, "errors": acc_err}
            write_results(Path(args.out), "int4_recipes", {**read_key(Path(args.out), "int4_recipes"), **out})
    for mn, m in models.items():
        bad = {}
        for k in names:
            try: export_ours(m, Path(args.work)/"exports"/f"{m.name}-{k}", "int4", RECIPES[k])
            except Exception as e: bad["ortgenai_" + k] = f"{type(e).__name__}: {str(e)[:600]}"; log(f"export {k} failed: {bad['ortgenai_' + k]}")
        export_ours(m, Path(args.work)/"exports"/f"{m.name}-fp32", "fp32")
        if args.prepare_only: continue
        errs = prepare_peers(m, ["llamacpp_q4_0", "openvino_int4"], args.optimum_cli)
        rn = ["ortgenai_" + k for k in names if "ortgenai_" + k not in bad] + ["llamacpp_q4_0", "openvino_int4"]
        loaders = {"ortgenai_int4": lambda m=m: OrtBench(Path(args.work)/"exports"/f"{m.name}-int4", "ortgenai_int4", args.threads)}
        r = bench_model(m, rn, args, loaders)
        r["errors"].update(errs); r["errors"].update(bad)
        for k in names:
            row = r["rows"].get("ortgenai_" + k)
            if row: row["file_mb"] = folder_mb(Path(args.work)/"exports"/f"{m.name}-{k}")
        if "llamacpp_q4_0" in r["rows"]: r["rows"]["llamacpp_q4_0"]["file_mb"] = r["rows"]["llamacpp_q4_0"]["weight_mb"]
        r["ratios_vs_llamacpp_q4_0"] = {n: {"decode": row["decode_tok_s"] / r["rows"]["llamacpp_q4_0"]["decode_tok_s"],
                                            "prefill_speed": r["rows"]["llamacpp_q4_0"]["prefill_ms"] / row["prefill_ms"]}
                                        for n, row in r["rows"].items() if "llamacpp_q4_0" in r["rows"]}
        out[mn] = r
    if args.prepare_only: return
    write_results(Path(args.out), "int4_recipes", {**read_key(Path(args.out), "int4_recipes"), **out})
    log("wrote int4_recipes to", args.out)

# ---------------------------------------------------------------- threads
def threads_sweep(args, models):
    out = {"about": "ORT GenAI decode and prefill with 1 and 2 intra-op threads, interleaved", **header(args)}
    for mn, m in models.items():
        exp = Path(args.work)/"exports"
        for p in ("fp32", "int4"): export_ours(m, exp/f"{m.name}-{p}", p)
        loaders = {f"ortgenai_{p}_t{t}": (lambda p=p, t=t: OrtBench(exp/f"{m.name}-{p}", f"ortgenai_{p}_t{t}", t))
                   for p in ("fp32", "int4") for t in (1, 2)}
        out[mn] = bench_model(m, list(loaders), args, loaders)
    write_results(Path(args.out), "threads", out)
    log("wrote threads to", args.out)

# ---------------------------------------------------------------- batch and prompt-length sweep (bench.sweep)
def sweep_mode(args, models):
    from mistral_onnx.bench import sweep
    out = {"about": "bench.sweep: ORT GenAI int4 export (and, on 55m, transformers fp32 with its cache) at batch 1 and 4, prompts "
                    "of 128, 1024 and 4096 tokens (where the model's context allows), 32 new tokens, median of 2; others' load recorded",
           **header(args)}
    for mn, m in models.items():
        exp = export_ours(m, Path(args.work)/"exports"/f"{m.name}-{args.sweep_precision}", args.sweep_precision)
        ctx = json.loads((m/"config.json").read_text())["max_position_embeddings"]
        lens = tuple(n for n in (128, 1024, 4096) if n + 32 <= ctx)
        a = _cpu_now()
        # transformers fp32 at 850 M with 4 x 4096-token prompts would take minutes per run on 2 cores: ORT GenAI only there
        runners = ("ortgenai", "torch_cache") if mn == "55m" else ("ortgenai",)
        r = sweep(m, exp, runners=runners, batches=(1, 4), prompt_lens=lens, new_tokens=32, repeats=2,
                  progress=lambda st, f, msg: log(f"  {msg}"))
        ld = others_cores(a, _cpu_now())
        out[mn] = {**r.to_dict(), "others_cores_mean": ld["others"], "precision": args.sweep_precision}
        log(mn, "others' load during the sweep:", round(ld["others"], 2), "cores")
        write_results(Path(args.out), "sweep", {**read_key(Path(args.out), "sweep"), **out})
    log("wrote sweep to", args.out)

# ---------------------------------------------------------------- floor for results measured before decode_mb was recorded
def add_floor(args):
    "Fill decode_mb and floor_tok_s into the peers / int4_recipes / threads sections from the cached files."
    from mistral_onnx.bench import decode_bytes
    from mistral_onnx import peers
    d = json.loads(Path(args.out).read_text()); work = Path(args.work)
    def mb(model, runner):
        m = work/"models"/model
        if runner.startswith("ortgenai"):
            k = runner[len("ortgenai_"):].split("_t")[0]
            return decode_bytes(work/"exports"/f"{model}-{k}"/"model.onnx")["decode"] / 1e6
        if runner == "torch_cache":
            from mistral_onnx.spec import ModelSpec, num_parameters
            sp = ModelSpec.from_pretrained(m)
            return (num_parameters(sp) - (0 if sp.tie_word_embeddings else sp.vocab_size * sp.hidden_size)) * 4 / 1e6
        if runner.startswith("llamacpp_"): return peers.gguf_decode_bytes(peers.gguf_for(m, runner.split("_", 1)[1])) / 1e6
        if runner.startswith("openvino"):
            import openvino as ov
            ir = peers.openvino_for(m, "int4" if runner == "openvino_int4" else "fp32", args.optimum_cli)
            return (ir/"openvino_model.bin").stat().st_size / 1e6 - peers.openvino_gather_bytes(ov.Core().read_model(str(ir/"openvino_model.xml"))) / 1e6
    for sec in ("peers", "int4_recipes", "threads"):
        for model, v in (d.get(sec) or {}).items():
            if not isinstance(v, dict) or "rows" not in v: continue
            for runner, r in v["rows"].items():
                if r.get("decode_mb"): continue
                try: r["decode_mb"] = mb(model, runner); r["floor_tok_s"] = v["bandwidth_gbs"] * 1e3 / r["decode_mb"]
                except Exception as e: log(f"no floor for {sec} {model} {runner}: {e}")
    Path(args.out).write_text(json.dumps(d, indent=1) + "\n")
    log("floors added to", args.out)

# ---------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["55m", "850m"], choices=list(MODELS))
    ap.add_argument("--runners", nargs="+", default=RUNNER_ORDER)
    ap.add_argument("--work", default="/tmp/cpu_peers", help="models, exports and conversions are kept here")
    ap.add_argument("--out", default=str(ROOT/"nbs"/"tutorials"/"cpu_results.json"))
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-load", type=float, default=0.14, help="a run is quiet when other processes used less than this many cores")
    ap.add_argument("--retries", type=int, default=4)
    ap.add_argument("--optimum-cli", default=str(ROOT/".venv-ov"/"bin"/"optimum-cli"))
    ap.add_argument("--recipes", action="store_true", help="int4 builder recipes against llama.cpp Q4_0 (+ accuracy)")
    ap.add_argument("--recipe-names", nargs="+", choices=list(RECIPES))
    ap.add_argument("--accuracy-n", type=int, default=500)
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--threads-sweep", action="store_true")
    ap.add_argument("--prepare-only", action="store_true", help="build, export and convert; measure nothing")
    ap.add_argument("--sweep", action="store_true", help="bench.sweep: batch 1/4 and prompt 128/1k/4k, ORT GenAI vs transformers")
    ap.add_argument("--sweep-precision", default="int4")
    ap.add_argument("--add-floor", action="store_true", help="fill decode_mb/floor_tok_s into results measured without them")
    args = ap.parse_args(argv)
    os.environ.setdefault("MISTRAL_ONNX_PEERS_CACHE", str(Path(args.work)/"peers"))
    if args.add_floor: return add_floor(args)
    models = build_models(Path(args.work), args.models)
    if args.recipes: return recipes(args, models)
    if args.threads_sweep: return threads_sweep(args, models)
    if args.sweep: return sweep_mode(args, models)
    result = {"about": "our ORT GenAI exports beside transformers, llama.cpp and OpenVINO GenAI, interleaved in one process; "
                       "each row's measured_on and others_cores say the load it was measured under", **header(args)}
    prep_errors = {}
    for mn, m in models.items():
        exp = Path(args.work)/"exports"
        for p in ("fp32", "int4"):
            if any(r.startswith(f"ortgenai_{p}") for r in args.runners): export_ours(m, exp/f"{m.name}-{p}", p)
        prep_errors[mn] = prepare_peers(m, args.runners, args.optimum_cli)
    if args.prepare_only: log("prepared:", prep_errors); return
    for mn, m in models.items():
        names = [n for n in args.runners if n not in prep_errors[mn]]
        r = bench_model(m, names, args)
        r["errors"].update(prep_errors[mn]); r["ratios"] = ratios(r["rows"])
        result[mn] = r
        write_results(Path(args.out), "peers", result)     # after each model, so a late failure keeps what was measured
    log("wrote peers to", args.out)

if __name__ == "__main__":
    main()
