#!/usr/bin/env python
"""GPU performance, round 2 (issue 16): int4 kernels and block sizes beside fp16 and transformers, one run, one H200.

Every runner is loaded once and kept; rounds run them in turn (order rotated each round), batch 1, the same
128-token prompt, `--new-tokens` greedy tokens. Two worker processes hold the models, because onnxruntime reads
`ORT_FPA_INTB_GEMM` (the CUTLASS weight-only int4 kernels, TensorRT-LLM's) when a session is made:
  worker "std": fp16, int4 at each block size with ORT's own MatMulNBits kernels, transformers fp16 `generate`
  worker "fpa": the same int4 exports with ORT_FPA_INTB_GEMM=1
The driver only sends commands, so one model runs at a time. Then: each int4 kernel's prefill logits against the
other's (same weights), and a CUDA profile (torch.profiler / CUPTI) of one decode step of fp16, the default int4,
and the fastest int4.

  python tools/gpu_round2.py --src SRC --exports DIR --out OUT [--budget-s 420]
DIR holds fp16/ and int4_b<N>/ exports (`mistral-onnx export SRC DIR/int4_b32 --precision int4 --ep cuda
--int4-block-size 32`). OUT/round2.json is rewritten after every stage, so a killed run still leaves numbers.
"""
from __future__ import annotations
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
T0 = time.time()
def log(*a): print(f"[{time.time()-T0:7.1f}s]", *a, flush=True)
TAG = "@@"   # result lines of a worker start with this (ORT may print to stdout too)

# ---------------------------------------------------------------- worker side
class OrtTok:
    "ORT GenAI, batch 1, greedy: (prefill s, decode s, tokens)."
    def __init__(self, folder:Path):
        import onnxruntime_genai as og
        self.og, self.folder = og, folder
        self.model = og.Model(og.Config(str(folder)))
    def run(self, ids, new_tokens):
        import numpy as np
        p = self.og.GeneratorParams(self.model); total = len(ids) + new_tokens
        p.set_search_options(max_length=total, min_length=total, do_sample=False)
        g = self.og.Generator(self.model, p)
        t0 = time.perf_counter()
        g.append_tokens(np.array([ids], dtype=np.int32)); g.generate_next_token(); toks = [int(g.get_next_tokens()[0])]
        t1 = time.perf_counter()
        for _ in range(new_tokens - 1): g.generate_next_token(); toks.append(int(g.get_next_tokens()[0]))
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, toks
    def logits(self, ids):
        import numpy as np
        p = self.og.GeneratorParams(self.model); p.set_search_options(max_length=len(ids) + 2, do_sample=False)
        g = self.og.Generator(self.model, p); g.append_tokens(np.array([ids], dtype=np.int32))
        return np.asarray(g.get_logits(), dtype=np.float32).reshape(-1)[-32000:].tolist()

class TorchTok:
    def __init__(self, src:Path):
        import torch
        from gpu_perf import Torch
        cuda = torch.cuda.is_available()
        self.t = Torch(src, device="cuda" if cuda else "cpu", dtype="float16" if cuda else "float32")
    def run(self, ids, new_tokens):
        a, b = self.t.run([ids], new_tokens)
        return a, b, []

def worker(specs:list):
    runners = {}
    for s in specs:
        name, path = s.split("=", 1)
        t = time.time()
        runners[name] = TorchTok(Path(path)) if name.startswith("torch") else OrtTok(Path(path))
        print(f"{TAG}" + json.dumps({"loaded": name, "seconds": round(time.time() - t, 1)}), flush=True)
    print(f"{TAG}" + json.dumps({"ready": list(runners)}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "quit": break
            r = runners.get(cmd.get("name"))
            if cmd["op"] == "run":
                a, b, toks = r.run(cmd["ids"], cmd["new_tokens"]); out = {"prefill_s": a, "decode_s": b, "tokens": toks}
            elif cmd["op"] == "logits": out = {"logits": r.logits(cmd["ids"])}
            elif cmd["op"] == "profile":
                from gpu_perf import kineto_profile
                out = kineto_profile(Path(cmd["folder"]), steps=cmd.get("steps", 16))
            else: out = {"error": f"unknown op {cmd['op']}"}
        except Exception as e:
            out = {"error": f"{type(e).__name__}: {str(e)[:800]}"}
        print(f"{TAG}" + json.dumps(out), flush=True)

class Worker:
    def __init__(self, tag, specs, env):
        self.tag = tag
        self.p = subprocess.Popen([sys.executable, __file__, "--worker", *specs], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env={**os.environ, **env}, bufsize=1)
        self.loaded = {}
        while True:
            m = self._read()
            if m is None: raise RuntimeError(f"worker {tag} died while loading")
            if "loaded" in m: self.loaded[m["loaded"]] = m["seconds"]; log(f"{tag}: loaded {m['loaded']} in {m['seconds']} s")
            if "ready" in m: break
    def _read(self):
        for line in self.p.stdout:
            if line.startswith(TAG): return json.loads(line[len(TAG):])
            sys.stdout.write(f"  [{self.tag}] {line}")
        return None
    def ask(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n"); self.p.stdin.flush()
        m = self._read()
        if m is None: raise RuntimeError(f"worker {self.tag} died")
        return m
    def close(self):
        try: self.ask(op="quit")
        except Exception: pass
        self.p.kill()

# ---------------------------------------------------------------- driver
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs="+")
    ap.add_argument("--src", type=Path); ap.add_argument("--exports", type=Path); ap.add_argument("--out", type=Path)
    ap.add_argument("--rounds", type=int, default=5); ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256); ap.add_argument("--budget-s", type=float, default=420)
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    if a.worker: return worker(a.worker)
    import numpy as np
    from mistral_onnx.bench import bandwidth_gbs, decode_bytes, machine
    from mistral_onnx.env import versions
    a.out.mkdir(parents=True, exist_ok=True)
    res = {"about": "issue 16, GPU round 2: ORT GenAI fp16 and int4 (block sizes; ORT's MatMulNBits kernels vs the CUTLASS "
                    "weight-only kernels of ORT_FPA_INTB_GEMM=1) beside transformers fp16 generate, interleaved in one run",
           "command": "python tools/gpu_round2.py " + " ".join(sys.argv[1:]), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "machine": machine(), "versions": versions(), "settings": {"batch": 1, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens,
           "rounds": a.rounds, "greedy": True}, "rows": {}, "errors": {}}
    save = lambda: (a.out/"round2.json").write_text(json.dumps(res, indent=1, default=str))
    exports = {"fp16": a.exports/("fp16" if (a.exports/"fp16").exists() else "fp32"), **{p.name: p for p in sorted(a.exports.glob("int4_b*")) if (p/"genai_config.json").exists()}}
    int4 = [n for n in exports if n.startswith("int4")]
    import torch
    dev = "cuda" if torch.cuda.is_available() else "cpu"    # cpu: a dry run of this script on a tiny model
    res["device"] = dev
    res["bandwidth_gbs"] = bw = bandwidth_gbs(dev, mb=1024 if dev == "cuda" else 256, repeats=10)
    res["exports"] = {}
    for n, f in exports.items():
        db = decode_bytes(f/"model.onnx")
        res["exports"][n] = {"folder": str(f), "decode_bytes": db["decode"], "all_bytes": db["all"], "floor_tok_s": bw * 1e9 / db["decode"]}
    log(f"bandwidth {bw:.0f} GB/s; floors", {n: round(e["floor_tok_s"], 1) for n, e in res["exports"].items()}); save()
    std = [f"{n}={f}" for n, f in exports.items()] + ([] if a.no_torch else [f"torch_fp16={a.src}"])
    workers = {"std": Worker("std", std, {"ORT_FPA_INTB_GEMM": "0"}),
               "fpa": Worker("fpa", [f"{n}={exports[n]}" for n in int4], {"ORT_FPA_INTB_GEMM": "1"})}
    res["load_s"] = {w: ws.loaded for w, ws in workers.items()}
    runners = [("std", n) for n in exports] + [("fpa", n) for n in int4] + ([] if a.no_torch else [("std", "torch_fp16")])
    key = lambda w, n: n if w == "std" else f"{n}_fpa"
    ids = np.random.default_rng(0).integers(3, 32000, size=a.prompt_len).tolist()
    for w, n in runners:   # warm-up: CUDA graph capture, the CUTLASS tactic profiler
        m = workers[w].ask(op="run", name=n, ids=ids, new_tokens=8)
        if "error" in m: res["errors"][key(w, n)] = m["error"]; log("warm-up failed", key(w, n), m["error"][:300])
    live = [(w, n) for w, n in runners if key(w, n) not in res["errors"]]
    runs = {key(w, n): [] for w, n in live}; toks = {}
    for r in range(a.rounds):
        if time.time() - T0 > a.budget_s * 0.6: log("budget: stopping the rounds"); break
        order = live[r % len(live):] + live[:r % len(live)]
        for w, n in order:
            m = workers[w].ask(op="run", name=n, ids=ids, new_tokens=a.new_tokens); k = key(w, n)
            if "error" in m: res["errors"][k] = m["error"]; continue
            runs[k].append((m["prefill_s"], m["decode_s"])); toks.setdefault(k, m["tokens"])
            log(f"round {r+1} {k:18s} prefill {m['prefill_s']*1e3:7.2f} ms  decode {(a.new_tokens-1)/m['decode_s']:7.1f} tok/s")
        for k, v in runs.items():
            if not v: continue
            dec = statistics.median(x[1] for x in v); pre = statistics.median(x[0] for x in v)
            base = k[:-4] if k.endswith("_fpa") else k
            fl = res["exports"].get(base, {}).get("floor_tok_s")
            res["rows"][k] = {"prefill_ms": pre * 1e3, "decode_tok_s": (a.new_tokens - 1) / dec, "decode_ms_per_step": dec * 1e3 / (a.new_tokens - 1),
                              "share_of_floor": (a.new_tokens - 1) / dec / fl if fl else None,
                              "runs_ms": [[round(x[0] * 1e3, 2), round(x[1] * 1e3, 2)] for x in v]}
        save()
    rows = res["rows"]
    if "torch_fp16" in rows:
        res["ratios_vs_transformers_fp16"] = {k: r["decode_tok_s"] / rows["torch_fp16"]["decode_tok_s"] for k, r in rows.items()}
    # the two int4 kernels on the same weights: greedy tokens and prefill logits
    agree = {}
    for n in int4:
        if n in toks and f"{n}_fpa" in toks:
            t1, t2 = toks[n], toks[f"{n}_fpa"]
            same = next((i for i, (x, y) in enumerate(zip(t1, t2)) if x != y), len(t1))
            e = {"greedy_tokens_equal_prefix": same, "of": len(t1)}
            try:
                l1 = np.array(workers["std"].ask(op="logits", name=n, ids=ids)["logits"]); l2 = np.array(workers["fpa"].ask(op="logits", name=n, ids=ids)["logits"])
                e.update(max_abs_logit_diff=float(np.abs(l1 - l2).max()), logit_scale=float(np.abs(l1).max()), argmax_equal=bool(l1.argmax() == l2.argmax()))
            except Exception as ex: e["logits_error"] = f"{type(ex).__name__}: {ex}"
            agree[n] = e
    res["fpa_vs_std_same_weights"] = agree; save()
    log("agreement", json.dumps(agree))
    # profiles: fp16, the default int4 (block 128, ORT kernels), the fastest int4 (its own worker: the env var decides)
    prof = res.setdefault("profile", {})
    best = max((k for k in rows if k.startswith("int4")), key=lambda k: rows[k]["decode_tok_s"], default=None)
    wanted = [("std", "fp16"), ("std", "int4_b128")] + ([("fpa" if best.endswith("_fpa") else "std", best.removesuffix("_fpa"))] if best else [])
    for w, n in dict.fromkeys(wanted):
        if time.time() - T0 > a.budget_s or n not in exports: continue
        m = workers[w].ask(op="profile", folder=str(exports[n]))
        prof[key(w, n)] = m; log("profile", key(w, n), json.dumps(m.get("kernel_ms_per_step") or m)[:400]); save()
    for ws in workers.values(): ws.close()
    res["finished_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()); res["seconds"] = round(time.time() - T0, 1); save()
    log("done:", json.dumps({k: round(r["decode_tok_s"], 1) for k, r in rows.items()}))

if __name__ == "__main__":
    main()
