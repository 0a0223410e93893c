"""Serving speed: `mistral-onnx serve` (og.Engine through engine.Runner) against transformers `generate` with padding.

For each concurrency level (default 1, 8, 32) it sends REQUESTS requests from that many client threads at once
(closed loop: each thread sends its next request when its last one ended) to a server started on 127.0.0.1, each
request a streamed chat completion of exactly --max-tokens tokens (min_tokens = max_tokens, greedy), and measures
aggregate completion tokens/s over the level's wall time and per-request latency (p50/p95 of time to the last token,
and of time to the first token). transformers runs the same prompts in batches of the same size (left padding,
greedy, min_new_tokens = max_new_tokens), a request's latency being its batch's time. `--speculative` adds one run
of n-gram speculative decoding against plain greedy (engine.Runner, repetitive prompts; ratio of wall times).
The load average is recorded before and after each level: numbers taken while other work runs are not quiet.

  python tools/serve_bench.py embedded --json build/serve_bench_embedded.json
  python tools/serve_bench.py 55m --json build/serve_bench_55m.json --speculative
  python tools/serve_bench.py 7b --ep cuda --precision fp16 --concurrency 1,8,32 --json serve_h200.json   # the GPU helper's run
      (7b: random weights in Mistral-7B-v0.1's shapes; add --extra-option use_paged_attention=true for a paged export)
MODEL: embedded | 55m | 7b | a model folder or hub id (exported once into --work, reused when present).
"""
from __future__ import annotations
import argparse, json, os, signal, statistics, subprocess, sys, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def pct(xs, q):
    "The q-th percentile (0..100) of xs, linear between ranks."
    xs = sorted(xs)
    if not xs: return None
    k = (len(xs) - 1) * q / 100; lo = int(k); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

def prompts_for(n):
    "n different reversal-task prompts of unequal lengths (the same for every runner)."
    from mistral_onnx.models import task_words, task_prompt
    return [task_prompt(w) for w in task_words(n, seed=123)]

def source_and_export(a):
    "The PyTorch source folder (or 'embedded') and the export folder for it, made once."
    from mistral_onnx.export import export
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    if a.model == "55m" or a.model == "7b":
        from mistral_onnx.bench import random_mistral, SMALL_55M
        src = work/f"src-{a.model}"
        if not (src/"config.json").exists():
            random_mistral(src, SMALL_55M if a.model == "55m" else None, dtype="float16" if a.model == "7b" else "float32",
                           device="cuda" if a.ep == "cuda" else "cpu")
    else: src = a.model
    extra = dict(kv.split("=", 1) for kv in a.extra_option or [])
    tag = "-".join([Path(str(a.model)).name, a.precision, a.ep] + [f"{k}{v}" for k, v in sorted(extra.items())])
    out = work/f"export-{tag}"
    if not (out/"genai_config.json").exists():
        kw = {"extra_options": extra} if extra else {}
        export(str(src), out, precision=a.precision, execution_provider=a.ep, **kw)
    return src, out

class Server:
    "`mistral-onnx serve OUT --port 0` in a subprocess; stopped with SIGTERM."
    def __init__(self, out, *args, timeout=600):
        import httpx
        exe = Path(sys.executable).parent/"mistral-onnx"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mistral_onnx.cli"]
        self.p = subprocess.Popen(cmd + ["serve", str(out), "--port", "0", "--model-name", "bench", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got, self.lines = threading.Event(), []
        def read():
            for line in self.p.stdout:
                self.lines.append(line)
                if line.startswith("serving "): got.set()
        threading.Thread(target=read, daemon=True).start()
        if not got.wait(timeout): self.p.kill(); raise SystemExit(f"server did not start: {self.p.stderr.read()[-2000:]}")
        self.url = self.lines[-1].split(" at ")[1].split()[0]
        self.note = self.lines[-1].strip()
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                if httpx.get(self.url.replace("/v1", "/health"), timeout=5).status_code == 200: break
            except httpx.HTTPError: time.sleep(0.2)
        self.health = httpx.get(self.url.replace("/v1", "/health"), timeout=5).json()
    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try: return self.p.wait(60)
        except subprocess.TimeoutExpired: self.p.kill(); return self.p.wait()

def one_request(client, url, prompt, max_tokens):
    "A streamed chat completion: (seconds to first token, seconds to the end, completion tokens)."
    body = {"model": "bench", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "min_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter(); first = None; n = None
    with client.stream("POST", url + "/chat/completions", json=body, timeout=600) as r:
        if r.status_code != 200: raise RuntimeError(f"HTTP {r.status_code}: {r.read()[:400]}")
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]": continue
            c = json.loads(line[6:])
            if "error" in c: raise RuntimeError(c["error"]["message"])
            if c.get("choices") and c["choices"][0]["delta"].get("content") and first is None: first = time.perf_counter() - t0
            if c.get("usage"): n = c["usage"]["completion_tokens"]
    return first, time.perf_counter() - t0, n

def bench_server(url, prompts, concurrency, max_tokens):
    "Closed loop: `concurrency` threads share the prompts; aggregate tokens/s and latency percentiles."
    import httpx
    todo = list(prompts); lock = threading.Lock(); rows, errors = [], []
    def worker():
        with httpx.Client() as c:
            while True:
                with lock:
                    if not todo: return
                    p = todo.pop()
                try: rows.append(one_request(c, url, p, max_tokens))
                except Exception as e: errors.append(str(e))
    with httpx.Client() as c: one_request(c, url, prompts[0], max_tokens)    # warm-up, not timed
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.perf_counter() - t0
    toks = sum(r[2] or 0 for r in rows)
    return {"requests": len(rows), "errors": errors[:3], "wall_s": wall, "tokens": toks, "tokens_per_s": toks / wall,
            "latency_p50_s": pct([r[1] for r in rows], 50), "latency_p95_s": pct([r[1] for r in rows], 95),
            "ttft_p50_s": pct([r[0] for r in rows if r[0] is not None], 50), "ttft_p95_s": pct([r[0] for r in rows if r[0] is not None], 95)}

def bench_torch(src, prompts, batch, max_tokens, ep, precision):
    "transformers generate in batches of `batch` (left padding, greedy, exactly max_tokens new tokens)."
    import torch, transformers
    from mistral_onnx.models import load_torch
    transformers.logging.set_verbosity_error()
    model, tok = load_torch(str(src))
    dev = "cuda" if ep == "cuda" else "cpu"
    model = model.to(dev, dtype=torch.float16 if precision == "fp16" and dev == "cuda" else torch.float32).eval()
    tok.padding_side = "left"
    if tok.pad_token is None: tok.pad_token = tok.eos_token
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
    def run(group):
        enc = tok(group, return_tensors="pt", padding=True, add_special_tokens=False).to(dev)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_tokens, min_new_tokens=max_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        if dev == "cuda": torch.cuda.synchronize()
        return (out.shape[1] - enc["input_ids"].shape[1]) * len(group)
    run(texts[:batch])   # warm-up
    lat, toks = [], 0
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        t1 = time.perf_counter(); toks += run(texts[i:i + batch]); dt = time.perf_counter() - t1
        lat += [dt] * len(texts[i:i + batch])
    wall = time.perf_counter() - t0
    return {"requests": len(texts), "wall_s": wall, "tokens": toks, "tokens_per_s": toks / wall,
            "latency_p50_s": pct(lat, 50), "latency_p95_s": pct(lat, 95), "ttft_p50_s": None, "ttft_p95_s": None}

def bench_speculative(out, ep, max_tokens, ngram):
    "One run each of greedy and n-gram speculative greedy on repetitive prompts, one request at a time (generator path both)."
    from mistral_onnx.engine import Runner, Search
    from mistral_onnx.models import task_prompt
    ps = [task_prompt(w) for w in ["abcabcabcabc", "xyzxyzxyzxyz", "onnxonnxonnx", "mississippimississippi", "abababababab", "hellohello"]]
    with Runner(out, execution_provider=ep, use_engine=False) as r:
        r.generate(ps[:1], search=Search(max_new_tokens=max_tokens))     # warm-up
        res = {}
        for name, s in [("greedy", Search(max_new_tokens=max_tokens)), ("ngram", Search(max_new_tokens=max_tokens, ngram_size=ngram))]:
            t0 = time.perf_counter(); texts = [r.generate([p], search=s)[0] for p in ps]; dt = time.perf_counter() - t0
            res[name] = {"wall_s": dt, "tokens": sum(len(j.tokens) for j in r.last_jobs), "texts": texts}
    same = res["greedy"]["texts"] == res["ngram"]["texts"]
    return {"ngram_size": ngram, "prompts": len(ps), "same_output": same, "greedy_s": res["greedy"]["wall_s"], "ngram_s": res["ngram"]["wall_s"],
            "speedup": res["greedy"]["wall_s"] / res["ngram"]["wall_s"], "load_avg": os.getloadavg()}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model"); ap.add_argument("--work", default=str(ROOT/"build"/"serve_bench"))
    ap.add_argument("--ep", default="cpu", choices=["cpu", "cuda"]); ap.add_argument("--precision", default="fp32")
    ap.add_argument("--extra-option", action="append", metavar="K=V", help="builder extra option for the export (repeatable)")
    ap.add_argument("--concurrency", default="1,8,32"); ap.add_argument("--requests", type=int, default=0, help="per level (default: max(8, 2 x concurrency))")
    ap.add_argument("--max-tokens", type=int, default=32); ap.add_argument("--max-batch-size", type=int, default=0, help="server's static batch (default: the largest level)")
    ap.add_argument("--no-torch", action="store_true"); ap.add_argument("--speculative", action="store_true"); ap.add_argument("--ngram-size", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from mistral_onnx.bench import machine
    levels = [int(x) for x in a.concurrency.split(",")]
    src, out = source_and_export(a)
    res = {"machine": machine(), "model": a.model, "export": str(out), "ep": a.ep, "precision": a.precision, "max_tokens": a.max_tokens,
           "extra_options": a.extra_option or [], "levels": [], "command": " ".join(sys.argv)}
    srv = Server(out, "--max-batch-size", str(a.max_batch_size or max(levels)), "--max-queue", str(4 * max(levels) + 8),
                 *(["--ep", a.ep] if a.ep != "cpu" else []))
    res["server"] = {"line": srv.note, "health": srv.health}
    print(srv.note, flush=True)
    try:
        for c in levels:
            n = a.requests or max(8, 2 * c)
            ps = prompts_for(n)
            load0 = os.getloadavg()
            row = {"concurrency": c, "requests": n, "server": bench_server(srv.url, ps, c, a.max_tokens)}
            if not a.no_torch: row["transformers"] = bench_torch(src, ps, c, a.max_tokens, a.ep, a.precision)
            row["load_avg_before"], row["load_avg_after"] = load0, os.getloadavg()
            if "transformers" in row: row["tokens_per_s_ratio"] = row["server"]["tokens_per_s"] / row["transformers"]["tokens_per_s"]
            res["levels"].append(row)
            s, t = row["server"], row.get("transformers")
            print(f"c={c:>3} n={n:>3}  serve {s['tokens_per_s']:8.1f} tok/s p50 {s['latency_p50_s']*1e3:8.1f} ms p95 {s['latency_p95_s']*1e3:8.1f} ms"
                  + (f" | transformers {t['tokens_per_s']:8.1f} tok/s p50 {t['latency_p50_s']*1e3:8.1f} ms p95 {t['latency_p95_s']*1e3:8.1f} ms"
                     f" | ratio {row['tokens_per_s_ratio']:.2f}x" if t else "") + f"  load {load0[0]:.1f}->{row['load_avg_after'][0]:.1f}"
                  + (f"  errors {s['errors']}" if s["errors"] else ""), flush=True)
    finally:
        res["server"]["exit_code"] = srv.stop()
    if a.speculative:
        res["speculative"] = sp = bench_speculative(out, a.ep if a.ep != "cpu" else None, a.max_tokens, a.ngram_size)
        print(f"n-gram speculation (ngram_size {sp['ngram_size']}): same output {sp['same_output']}, greedy {sp['greedy_s']:.3f} s, "
              f"ngram {sp['ngram_s']:.3f} s, speed-up {sp['speedup']:.2f}x (load {sp['load_avg'][0]:.1f})", flush=True)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1)); print(f"written {a.json}")
    return 0

if __name__ == "__main__": sys.exit(main())
