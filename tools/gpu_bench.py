"""Helpers for the GPU run (`tools/gpu_run.sh`): make a model from a published config, time one CLI step and record
what it cost, summarise a run; and the older in-process pipeline (`library`).

    python tools/gpu_bench.py make-model CONFIG.json OUT [--dtype bfloat16] [--layers N] [--device cuda]
        random weights for a published config.json, which is written into OUT verbatim (no key added or removed)
    python tools/gpu_bench.py step NAME --results FILE [--out-dir DIR] [--watch-dir DIR] -- COMMAND...
        run COMMAND as a user would, stream its output, and record in FILE (under "cli_run"): exit code, wall time,
        peak host memory of the whole process tree, peak GPU memory, peak extra disk, the output folder's size, and
        the numbers the command printed (tokens/s of `generate`, `validate --json`, `bench --json`, `doctor --json`)
    python tools/gpu_bench.py summary --results FILE
        the numbers the 7B tutorial states (export wall time, size, peak host RAM, peak GPU memory, tokens/s, disk)
    python tools/gpu_bench.py merge --results FILE --key perf SOURCE.json
        put another script's JSON (tools/gpu_perf.py, tools/gpu_memory.py) under cli_run[key], unchanged
    python tools/gpu_bench.py collect DIR
        after a run: DIR's cli_run into nbs/tutorials/gpu_results.json (other keys kept), its logs into nbs/tutorials/gpu_run.log
    python tools/gpu_bench.py library OUT_DIR [--work /tmp/m7b] [--layers N] [--skip-int4]
        the in-process pipeline of earlier runs (export -> validate -> bench through the Python API)

The step measurements read /proc and nvidia-smi (or NVML), so they work with no package beyond the standard library.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, threading, time, traceback
from pathlib import Path

# ---------------------------------------------------------------- a model from a published config

def make_model(config:str, out:str, dtype:str="bfloat16", layers:int|None=None, device:str|None=None, seed:int=0) -> dict:
    "Random weights for the published `config` (a config.json as the hub has it); OUT/config.json is that file, verbatim."
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    published = json.loads(Path(config).read_text())
    cfg = dict(published, **({"num_hidden_layers": layers} if layers else {}))
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    conf = AutoConfig.for_model(**cfg)
    torch.manual_seed(seed)
    old = torch.get_default_dtype(); torch.set_default_dtype(getattr(torch, dtype))
    try:
        with torch.device(device): m = AutoModelForCausalLM.from_config(conf).eval()
    finally: torch.set_default_dtype(old)
    n = sum(p.numel() for p in m.parameters())
    m.save_pretrained(out); del m
    if device == "cuda": torch.cuda.empty_cache()
    text = Path(config).read_text() if not layers else json.dumps(cfg, indent=2) + "\n"
    (out/"config.json").write_text(text)       # the hub's file, not transformers' re-serialisation (which adds head_dim etc.)
    (out/"generation_config.json").unlink(missing_ok=True)
    emb = Path(__file__).resolve().parent.parent/"mistral_onnx"/"embedded"
    try:
        import mistral_onnx; emb = Path(mistral_onnx.__file__).parent/"embedded"     # the installed package's copy
    except ImportError: pass
    for f in emb.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens_map")) or f.name == "chat_template.jinja": shutil.copy2(f, out/f.name)
    return {"config": str(config), "parameters": n, "dtype": dtype, "device": device,
            "bytes": sum(f.stat().st_size for f in out.glob("*.safetensors")), "config_keys": sorted(published)}

# ---------------------------------------------------------------- measuring one step

def _tree(root:int) -> list:
    "pids of `root` and all its descendants (from /proc)."
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit(): continue
        try: ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError): continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop(); out.append(p); todo += kids.get(p, [])
    return out

def _rss(pids) -> int:
    tot = 0
    for p in pids:
        try:
            for l in Path(f"/proc/{p}/status").read_text().splitlines():
                if l.startswith("VmRSS:"): tot += int(l.split()[1]) * 1024; break
        except OSError: pass
    return tot

class _Gpu:
    "Memory in use on GPU $GPU_INDEX (default 0), in bytes, all processes (the lent machine runs only ours): NVML, else nvidia-smi."
    def __init__(self):
        self.nvml = None; self.smi = shutil.which("nvidia-smi"); self.index = int(os.environ.get("GPU_INDEX", "0"))
        try:
            import pynvml; pynvml.nvmlInit(); self.nvml = pynvml; self.h = pynvml.nvmlDeviceGetHandleByIndex(self.index)
        except Exception: pass
    def used(self) -> int|None:
        if self.nvml: return int(self.nvml.nvmlDeviceGetMemoryInfo(self.h).used)
        if self.smi:
            try:
                r = subprocess.run([self.smi, "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", str(self.index)],
                                   capture_output=True, text=True, timeout=10)
                return int(float(r.stdout.split()[0]) * 2**20)
            except Exception: return None
        return None

def _du(p:Path) -> int:
    if not p.exists(): return 0
    if p.is_file(): return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())

def _json_in(out:str):
    "The longest JSON object a command printed at the start of a line, among any progress lines (None if none)."
    dec = json.JSONDecoder(); best = None
    for m in re.finditer(r"^\{", out, re.M):
        try: v, end = dec.raw_decode(out, m.start())
        except ValueError: continue
        if best is None or end - m.start() > best[1]: best = (v, end - m.start())
    return best[0] if best else None

def _parse(argv:list, out:str, res_dir:Path) -> dict:
    "Numbers a command printed, by subcommand."
    sub = next((a for a in argv if a in ("doctor", "export", "check", "validate", "generate", "bench")), None)
    got = {}
    if sub == "generate":
        m = re.search(r"\[(\d+) prompt tokens, (\d+) new, first token ([\d.]+) ms, ([\d.]+) tokens/s\]", out)
        if m: got.update(prompt_tokens=int(m[1]), new_tokens=int(m[2]), first_token_ms=float(m[3]), tokens_per_s=float(m[4]))
    if "--json" in argv:
        i = argv.index("--json")
        if sub == "bench" and i + 1 < len(argv):
            f = Path(argv[i + 1])
            if f.exists(): got["bench"] = json.loads(f.read_text())
        else:
            v = _json_in(out)
            if v is not None: got[sub] = v
    if any(a.endswith("gpu_window.py") for a in argv):
        v = _json_in(out)
        if v is not None: got["window"] = v
    if sub == "check": got["check_pass"] = "PASS" in out
    if "make-model" in argv:
        try: got["model"] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError): pass
    if sub == "export":
        try:
            o = Path(next(a for a in argv[argv.index("export") + 2:] if not a.startswith("-")))
            if (o/"export_report.json").exists(): got["export_report"] = json.loads((o/"export_report.json").read_text())
        except (StopIteration, ValueError, IndexError): pass
    return got

def _load(results:Path) -> dict:
    return json.loads(results.read_text()) if results.exists() else {}

def _save(results:Path, d:dict):
    tmp = results.with_suffix(".tmp"); tmp.write_text(json.dumps(d, indent=1, default=str) + "\n"); tmp.replace(results)

def run_step(name:str, argv:list, results:Path, out_dir:Path|None=None, watch_dir:Path|None=None, every:float=0.25) -> int:
    "Run `argv`, streaming its output; record its cost and numbers under results['cli_run']['steps'][name]."
    gpu = _Gpu(); watch = Path(watch_dir or out_dir or "/tmp")
    disk0 = shutil.disk_usage(watch).used; g0 = gpu.used()
    peak = {"rss": 0, "gpu": g0 or 0, "disk": disk0}
    print(f"== {time.strftime('%H:%M:%S')} step {name}: {' '.join(argv)}", flush=True)
    t0 = time.time()
    try: p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as e:
        rec = {"argv": argv, "rc": 127, "seconds": 0.0, "error": str(e)}
        d = _load(results); d.setdefault("cli_run", {}).setdefault("steps", {})[name] = rec; _save(results, d); print(e); return 127
    stop = threading.Event()
    def sample():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], _rss(_tree(p.pid)))
            u = gpu.used()
            if u is not None: peak["gpu"] = max(peak["gpu"], u)
            try: peak["disk"] = max(peak["disk"], shutil.disk_usage(watch).used)
            except OSError: pass
            stop.wait(every)
    th = threading.Thread(target=sample, daemon=True); th.start()
    lines = []
    for line in p.stdout:
        sys.stdout.write(line); sys.stdout.flush(); lines.append(line)
    rc = p.wait(); dt = time.time() - t0; stop.set(); th.join()
    out = "".join(lines)
    rec = {"argv": argv, "rc": rc, "seconds": round(dt, 2), "peak_rss_bytes": peak["rss"],
           "peak_gpu_bytes": peak["gpu"] if g0 is not None else None,
           "peak_gpu_over_start_bytes": (peak["gpu"] - g0) if g0 is not None else None,
           "peak_extra_disk_bytes": peak["disk"] - disk0, "disk_free_after_bytes": shutil.disk_usage(watch).free,
           "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    if out_dir is not None: rec["out_bytes"] = _du(Path(out_dir))
    rec.update(_parse(argv, out, results.parent))
    rec["output_tail"] = out[-3000:]
    d = _load(results); d.setdefault("cli_run", {}).setdefault("steps", {})[name] = rec; _save(results, d)
    print(f"== {time.strftime('%H:%M:%S')} step {name}: exit {rc} in {dt:.1f} s; peak RSS {peak['rss']/1e9:.2f} GB"
          + (f", peak GPU {peak['gpu']/1e9:.2f} GB" if g0 is not None else ""), flush=True)
    return rc

# ---------------------------------------------------------------- the summary the tutorial states

def _get(d, *ks):
    for k in ks:
        if not isinstance(d, dict) or k not in d: return None
        d = d[k]
    return d

def _decode_rows(bench:dict|None) -> dict:
    "{runner: decode tok/s} from a `bench --json` result (its rows, whatever extra keys they carry)."
    rows = (bench or {}).get("rows") or []
    return {r.get("runner"): r.get("decode_tok_s") for r in rows if isinstance(r, dict)}

def summary(results:Path) -> dict:
    "The export-cost and speed numbers of a run, for the 7B tutorial; written to cli_run['summary']."
    d = _load(results); run = d.get("cli_run", {}); st = run.get("steps", {})
    src_bytes = _get(st, "make_model", "model", "bytes")
    s = {"source_bytes": src_bytes, "steps": {n: {"rc": v.get("rc"), "seconds": v.get("seconds")} for n, v in st.items()},
         "install": {"rc": _get(st, "install", "rc"), "seconds": _get(st, "install", "seconds"),
                     "two_flavours_repaired": ({"rc": st["repair"].get("rc"), "command": st["repair"].get("argv", [""])[-1]}
                                               if "repair" in st else None),
                     "runtimes": _get(st, "doctor", "doctor", "runtimes"), "providers": _get(st, "doctor", "doctor", "providers"),
                     "builder_route": _get(st, "doctor", "doctor", "routes", "builder"), "doctor_builder_rc": _get(st, "doctor_builder", "rc")}}
    for p in run.get("precisions") or ("fp16", "int4"):
        e = st.get(f"export_{p}_head_dim") or st.get(f"export_{p}", {})
        if not e: continue
        peak = e.get("peak_rss_bytes")
        s[p] = {"export_rc": e.get("rc"), "published_config_export_rc": _get(st, f"export_{p}", "rc"), "export_seconds": e.get("seconds"), "output_bytes": e.get("out_bytes"),
                "peak_host_rss_bytes": peak, "peak_host_rss_over_source": (peak / src_bytes) if peak and src_bytes else None,
                "export_peak_gpu_bytes": e.get("peak_gpu_over_start_bytes"),
                "disk_needed_bytes": e.get("peak_extra_disk_bytes"),
                "generate_tokens_per_s": _get(st, f"generate_{p}", "tokens_per_s"),
                "generate_peak_gpu_bytes": _get(st, f"generate_{p}", "peak_gpu_over_start_bytes"),
                "bench_decode_tok_s": _decode_rows(_get(st, f"bench_{p}", "bench")),
                "bench_peak_gpu_bytes": _get(st, f"bench_{p}", "peak_gpu_over_start_bytes"),
                "validate_ok": _get(st, f"validate_{p}", "validate", "ok"),
                "validate_rc": _get(st, f"validate_{p}", "rc")}
    first = next((p for p in ("fp16", "fp32", "int4") if f"validate_{p}_long" in st), None)
    if first:
        w = _get(st, "window_ring_vs_full", "window") or {}
        s["past_window"] = {"precision": first, "sequences": _get(st, f"validate_{first}_long", "validate", "sequences"),
                            "default_rc": _get(st, f"validate_{first}_long", "rc"), "default_ok": _get(st, f"validate_{first}_long", "validate", "ok"),
                            "ring_rc": _get(st, f"validate_{first}_ring_long", "rc"), "ring_ok": _get(st, f"validate_{first}_ring_long", "validate", "ok"),
                            "decode_tok_s_full": _get(w, "full", "decode_tok_s"), "decode_tok_s_ring": _get(w, "ring", "decode_tok_s"),
                            "full_over_ring": w.get("full_over_ring")}
    run["summary"] = s; d["cli_run"] = run; _save(results, d)
    return s

# ---------------------------------------------------------------- the in-process pipeline of earlier runs

def library(a):
    "Mistral-7B's shapes: random fp16 weights -> export fp16/int4 for CUDA -> validate -> bench, through the Python API."
    import resource
    out, work = Path(a.out), Path(a.work); out.mkdir(parents=True, exist_ok=True); work.mkdir(parents=True, exist_ok=True)
    import torch
    from mistral_onnx.export import export
    from mistral_onnx.env import versions
    from mistral_onnx.validate import validate, load_reference
    from mistral_onnx.bench import bench, random_mistral, machine, bandwidth_gbs
    from mistral_onnx.spec import ModelSpec, num_parameters
    res = {"machine": machine(), "versions": versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "command": "python tools/gpu_bench.py library " + " ".join(sys.argv[2:]), "stages": {}, "errors": {}}
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
        random_mistral(src, overrides, dtype="float16", device="cuda"); torch.cuda.empty_cache()
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
    def ben(precision, runners):
        def f():
            ref.clear(); torch.cuda.empty_cache()
            r = bench(src, work/precision, runners=runners, prompt_len=a.prompt_len, new_tokens=a.new_tokens, repeats=a.repeats,
                      progress=lambda s, fr, m: print(f"   [{s}] {fr:.0%} {m}", flush=True))
            print(r, flush=True); return {"default": r.to_dict()}
        return f
    stage("export_fp16", exp("fp16")); stage("validate_fp16", val("fp16"))
    stage("bench_fp16", ben("fp16", ("ortgenai", "onnxruntime", "torch_cache", "torch_nocache")))
    if not a.skip_int4:
        stage("export_int4", exp("int4")); stage("validate_int4", val("int4")); stage("bench_int4", ben("int4", ("ortgenai", "onnxruntime")))
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()); save()
    print("== done", flush=True)

# ---------------------------------------------------------------- command line

def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0]); sp = ap.add_subparsers(dest="cmd", required=True)
    m = sp.add_parser("make-model"); m.add_argument("config"); m.add_argument("out"); m.add_argument("--dtype", default="bfloat16")
    m.add_argument("--layers", type=int, default=None); m.add_argument("--device", default=None)
    s = sp.add_parser("step"); s.add_argument("name"); s.add_argument("--results", required=True)
    s.add_argument("--out-dir", default=None); s.add_argument("--watch-dir", default=None)
    u = sp.add_parser("summary"); u.add_argument("--results", required=True)
    g = sp.add_parser("merge"); g.add_argument("--results", required=True); g.add_argument("--key", required=True); g.add_argument("source")
    l = sp.add_parser("library"); l.add_argument("out"); l.add_argument("--work", default="/tmp/m7b")
    l.add_argument("--layers", type=int, default=None); l.add_argument("--skip-int4", action="store_true")
    l.add_argument("--prompt-len", type=int, default=128); l.add_argument("--new-tokens", type=int, default=256)
    l.add_argument("--repeats", type=int, default=3)
    c = sp.add_parser("collect", help="put a run's cli_run into nbs/tutorials/gpu_results.json and its log into nbs/tutorials/gpu_run.log")
    c.add_argument("source", help="the folder the run's files came back in (gpu_results.json, run.log, helpers.log)")
    a = ap.parse_args(cmd)
    if a.cmd == "step":
        rest = argv[argv.index("--") + 1:] if "--" in argv else []
        if not rest: ap.error("step needs `-- COMMAND ...`")
        return run_step(a.name, rest, Path(a.results), Path(a.out_dir) if a.out_dir else None, Path(a.watch_dir) if a.watch_dir else None)
    if a.cmd == "make-model":
        print(json.dumps(make_model(a.config, a.out, a.dtype, a.layers, a.device))); return 0
    if a.cmd == "summary": print(json.dumps(summary(Path(a.results)), indent=1)); return 0
    if a.cmd == "merge":
        res = Path(a.results); d = _load(res); src = Path(a.source)
        try: v = json.loads(src.read_text())
        except (OSError, ValueError) as e: v = {"error": f"{type(e).__name__}: {e}"}
        d.setdefault("cli_run", {})[a.key] = v; _save(res, d); return 0
    if a.cmd == "library": library(a); return 0
    if a.cmd == "collect":
        src = Path(a.source); tut = Path(__file__).resolve().parent.parent/"nbs"/"tutorials"
        run = json.loads((src/"gpu_results.json").read_text())["cli_run"]
        for st in run.get("steps", {}).values():            # paths on the GPU machine mean nothing here; keep the output's end short
            st["output_tail"] = st.get("output_tail", "")[-1500:]
        d = json.loads((tut/"gpu_results.json").read_text()); d["cli_run"] = run
        (tut/"gpu_results.json").write_text(json.dumps(d, indent=1, default=str) + "\n")
        logs = [src/f for f in ("run.log", "helpers.log") if (src/f).exists()]
        (tut/"gpu_run.log").write_text("".join(f"#### {f.name}\n" + f.read_text(errors="replace") for f in logs))
        print(f"cli_run ({len(run.get('steps', {}))} steps) -> {tut/'gpu_results.json'}; logs -> {tut/'gpu_run.log'}"); return 0

if __name__ == "__main__": sys.exit(main())
