#!/usr/bin/env python
"""GPU performance, round 3 (issue 25): the runtime's own fast paths beside the PyTorch peers, one run, one GPU.

  python tools/gpu_round3.py --config CONFIG.json --work DIR --out OUT [--deadline EPOCH] [--ep cuda]

1. A model with CONFIG's shapes (random fp16 weights) in DIR/src.
2. Exports through `mistral-onnx export` (ours, as a user types it), two or three at a time: the fp16 and int4
   defaults and builder options (`--extra-option`): matmulnbits_weights_prepacked=2 (the SM90 fpA_intB layout),
   fuse_mlp_gate_up + prune_lm_head, both, kv_cache_quant_scheme; enable_cuda_fpa_intb_gemm is a session option
   (a hard-linked variant of the int4 export, nothing re-exported).
   Meanwhile a second process loads the PyTorch peers and compiles them: a gpt-fast-style decoder on the same
   weights (static cache, one CUDA graph per step; eager and torch.compile; fp16 and torch's tinygemm int4) and
   transformers `generate` (its dynamic cache; its static cache, which transformers compiles itself).
3. Every runner warmed up, then `--rounds` interleaved rounds (order rotated), batch 1, one 128-token prompt,
   `--new-tokens` greedy tokens. Floor: weight bytes a decode step reads / measured read bandwidth.
4. Agreement (prefill logits of each variant against its base; the peer against transformers on the same weights),
   a profile of one decode step (torch.profiler/CUPTI) of the defaults and the best, then batches 1/8/32 of the
   default exports with `past_present_share_buffer` false (issue 24).
OUT/round3.json is rewritten after every stage, so a killed run still leaves numbers. Nothing past --deadline starts.
"""
from __future__ import annotations
import argparse, json, os, shutil, statistics, subprocess, sys, time, traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
T0 = time.time()
TAG = "@@"
def log(*a): print(f"[{time.time()-T0:7.1f}s]", *a, flush=True)
def err(e): return f"{type(e).__name__}: {str(e)[:1200]}"

OPT = {"pp2": ["matmulnbits_weights_prepacked=2"], "pp1": ["matmulnbits_weights_prepacked=1"], "fuse": ["fuse_mlp_gate_up=1", "prune_lm_head=1"]}
# name -> (precision, builder --extra_options); order = the order they are exported
EXPORTS = {"fp16": ("fp16", []), "int4": ("int4", []), "int4_pp2": ("int4", OPT["pp2"]),
           "fp16_fuse": ("fp16", OPT["fuse"]), "int4_fuse": ("int4", OPT["fuse"]), "int4_pp2_fuse": ("int4", OPT["pp2"] + OPT["fuse"]),
           "int4_kvq": ("int4", ["kv_cache_quant_scheme=int8_per_tensor", "kv_cache_scale_file={scales}"]),
           "int4_pp1": ("int4", OPT["pp1"]), "int4_pp1_fuse": ("int4", OPT["pp1"] + OPT["fuse"]),
           # the compact fpA_intB kernels of onnxruntime-gpu 1.31.1 take int4 prepacked weights only at block 32 (SM80 layout)
           "int4_b32": ("int4", ["--int4-block-size=32"]), "int4_b32_pp1": ("int4", ["--int4-block-size=32"] + OPT["pp1"]),
           "int4_b32_pp1_fuse": ("int4", ["--int4-block-size=32"] + OPT["pp1"] + OPT["fuse"])}
BASE = {"int4_fpa": "int4", "int4_pp2": "int4", "int4_fuse": "int4", "int4_pp2_fuse": "int4", "int4_kvq": "int4", "fp16_fuse": "fp16", "int4_pp1": "int4", "int4_pp1_fuse": "int4", "int4_b32_pp1": "int4_b32", "int4_b32_pp1_fuse": "int4_b32"}

# ================================================================ worker side
class OrtRunner:
    def __init__(self, folder:Path):
        import onnxruntime_genai as og
        self.og, self.folder = og, Path(folder)
        self.model = og.Model(og.Config(str(folder)))
    def run(self, ids, new_tokens):
        import numpy as np
        p = self.og.GeneratorParams(self.model); total = len(ids) + new_tokens
        p.set_search_options(max_length=total, min_length=total, do_sample=False)
        g = self.og.Generator(self.model, p)
        t0 = time.perf_counter()
        g.append_tokens(np.array([ids], dtype=np.int32)); toks = []
        g.generate_next_token(); toks.append(int(g.get_next_tokens()[0]))
        t1 = time.perf_counter()
        for _ in range(new_tokens - 1): g.generate_next_token(); toks.append(int(g.get_next_tokens()[0]))
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, toks
    def logits(self, ids):
        import numpy as np
        p = self.og.GeneratorParams(self.model); p.set_search_options(max_length=len(ids) + 2, do_sample=False)
        g = self.og.Generator(self.model, p); g.append_tokens(np.array([ids], dtype=np.int32))
        l = np.asarray(g.get_logits(), dtype=np.float32)
        return l.reshape(-1, l.shape[-1])[-1].tolist()
    def profile(self, steps=16):
        from gpu_perf import kineto_profile
        return kineto_profile(self.folder, steps=steps, ort=self)

class Weights:
    "The source's weights on the GPU, fused the gpt-fast way (qkv, gate+up), fp16."
    def __init__(self, src:Path):
        import torch
        from safetensors.torch import load_file
        c = json.loads((src/"config.json").read_text())
        self.H, self.L, self.NH, self.KV = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"]
        self.HD = c.get("head_dim") or self.H // self.NH; self.I, self.V = c["intermediate_size"], c["vocab_size"]
        self.theta, self.eps = float(c.get("rope_theta", 10000.0)), float(c.get("rms_norm_eps", 1e-5))
        sd = {}
        for f in sorted(src.glob("*.safetensors")): sd.update(load_file(str(f), device="cuda"))
        h = lambda k: sd.pop(k).to(torch.float16)
        self.emb = h("model.embed_tokens.weight"); self.norm = h("model.norm.weight")
        self.lm = h("lm_head.weight") if "lm_head.weight" in sd else self.emb
        self.layers = []
        for i in range(self.L):
            p = f"model.layers.{i}."
            l = type("Layer", (), {})()
            l.wqkv = torch.cat([h(p + f"self_attn.{n}_proj.weight") for n in "qkv"]); l.wo = h(p + "self_attn.o_proj.weight")
            l.w13 = torch.cat([h(p + "mlp.gate_proj.weight"), h(p + "mlp.up_proj.weight")]); l.w2 = h(p + "mlp.down_proj.weight")
            l.n1, l.n2 = h(p + "input_layernorm.weight"), h(p + "post_attention_layernorm.weight")
            self.layers.append(l)
        del sd; torch.cuda.empty_cache()

GROUP = 128
def to_int4(w):
    "torch's tinygemm layout (gpt-fast's int4): asymmetric, GROUP weights per scale and zero, bf16 scales."
    import torch
    w = w.float(); N, K = w.shape
    g = w.view(N, K // GROUP, GROUP)
    mx, mn = g.amax(-1, keepdim=True), g.amin(-1, keepdim=True)
    scale = (mx - mn).clamp(min=1e-6) / 15; zero = mn + scale * 8
    q = ((g - mn) / scale).round().clamp(0, 15).to(torch.int32).view(N, K)
    packed = torch.ops.aten._convert_weight_to_int4pack((q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8), 8)
    sz = torch.cat([scale.view(N, -1, 1), zero.view(N, -1, 1)], -1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return (packed, sz, N, K)

class Peer:
    "gpt-fast's method: a static KV cache, prefill eager, each decode step one CUDA graph replay (of compiled code if `compile_`)."
    LMAX = 512
    def __init__(self, w:Weights, int4=False, compile_=True):
        import torch, torch.nn.functional as F
        self.t, self.F, self.w, self.int4, self.compile_ = torch, F, w, int4, compile_
        if int4:
            self.q = [{n: to_int4(getattr(l, n)) for n in ("wqkv", "wo", "w13", "w2")} for l in w.layers]
        inv = 1.0 / (w.theta ** (torch.arange(0, w.HD, 2, device="cuda").float() / w.HD))
        ang = torch.outer(torch.arange(self.LMAX, device="cuda").float(), inv)
        self.COS, self.SIN = ang.cos().half(), ang.sin().half()
        self.kc = torch.zeros(w.L, 1, w.KV, self.LMAX, w.HD, device="cuda", dtype=torch.float16); self.vc = torch.zeros_like(self.kc)
        self.ar = torch.arange(self.LMAX, device="cuda")
        self.fwd = torch.compile(self.forward, fullgraph=True, dynamic=False) if compile_ else self.forward
        self.graph = None
    def bytes_per_step(self):
        w = self.w; b = w.lm.numel() * 2 + w.H * 2 + w.norm.numel() * 2
        for i, l in enumerate(w.layers):
            b += (l.n1.numel() + l.n2.numel()) * 2
            if self.int4: b += sum(p.numel() * p.element_size() + sz.numel() * 2 for p, sz, _, _ in self.q[i].values())
            else: b += sum(t.numel() * 2 for t in (l.wqkv, l.wo, l.w13, l.w2))
        return b
    def lin(self, x, i, name):
        if not self.int4 or i is None: return self.F.linear(x, getattr(self.w.layers[i], name) if i is not None else name)
        packed, sz, N, K = self.q[i][name]
        y = self.t.ops.aten._weight_int4pack_mm(x.reshape(-1, K).to(self.t.bfloat16), packed, GROUP, sz)
        return y.view(*x.shape[:-1], N).to(self.t.float16)
    def rms(self, x, wt):
        xf = x.float(); return (xf * self.t.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.w.eps)).half() * wt
    def rope(self, x, pos):
        c, s = self.COS[pos][None, None], self.SIN[pos][None, None]; h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return self.t.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)
    def forward(self, tok, pos, mask):
        w, F = self.w, self.F
        x = w.emb[tok]; T = tok.shape[1]
        for i, l in enumerate(w.layers):
            h = self.rms(x, l.n1)
            q, k, v = self.lin(h, i, "wqkv").split([w.NH * w.HD, w.KV * w.HD, w.KV * w.HD], -1)
            q = self.rope(q.view(1, T, w.NH, w.HD).transpose(1, 2), pos); k = self.rope(k.view(1, T, w.KV, w.HD).transpose(1, 2), pos)
            v = v.view(1, T, w.KV, w.HD).transpose(1, 2)
            self.kc[i].index_copy_(2, pos, k); self.vc[i].index_copy_(2, pos, v)
            a = F.scaled_dot_product_attention(q, self.kc[i], self.vc[i], attn_mask=mask, enable_gqa=True)
            x = x + self.lin(a.transpose(1, 2).reshape(1, T, w.NH * w.HD), i, "wo")
            h = self.rms(x, l.n2)
            g, u = self.lin(h, i, "w13").chunk(2, -1)
            x = x + self.lin(F.silu(g) * u, i, "w2")
        return F.linear(self.rms(x[:, -1:], w.norm), w.lm)
    def prefill(self, ids):
        t = self.t
        tok = t.tensor([ids], device="cuda"); ppos = t.arange(len(ids), device="cuda")
        return self.forward(tok, ppos, (self.ar[None, :] <= ppos[:, None])[None, None])
    def _capture(self, n0):
        t = self.t
        self.tok = t.zeros(1, 1, dtype=t.long, device="cuda"); self.pos = t.tensor([n0], device="cuda")
        self.mask = (self.ar <= self.pos)[None, None, None]
        s = t.cuda.Stream(); s.wait_stream(t.cuda.current_stream())
        with t.cuda.stream(s):
            for _ in range(3): self.out = self.fwd(self.tok, self.pos, self.mask)
        t.cuda.current_stream().wait_stream(s)
        self.graph = t.cuda.CUDAGraph()
        with t.cuda.graph(self.graph): self.out = self.fwd(self.tok, self.pos, self.mask)
    def step(self):
        self.graph.replay(); self.tok.copy_(self.out.argmax(-1).view(1, 1)); self.pos.add_(1)
        self.mask.copy_((self.ar <= self.pos)[None, None, None])
    def run(self, ids, new_tokens):
        t = self.t
        if self.graph is None: self._capture(len(ids))
        buf = t.empty(new_tokens, dtype=t.long, device="cuda")
        t.cuda.synchronize(); t0 = time.perf_counter()
        logits = self.prefill(ids); self.tok.copy_(logits.argmax(-1).view(1, 1)); buf[0] = self.tok[0, 0]
        self.pos.fill_(len(ids)); self.mask.copy_((self.ar <= self.pos)[None, None, None])
        t.cuda.synchronize(); t1 = time.perf_counter()
        for i in range(1, new_tokens): self.step(); buf[i] = self.tok[0, 0]
        t.cuda.synchronize(); t2 = time.perf_counter()
        return t1 - t0, t2 - t1, buf.tolist()
    def logits(self, ids): return self.prefill(ids).float().reshape(-1).tolist()
    def profile(self, steps=16):
        from torch.profiler import profile as tprofile, ProfilerActivity
        from gpu_perf import categorize
        t = self.t
        self.run(list(range(3, 131)), 8)
        with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps): self.step()
            t.cuda.synchronize()
        by_cat, by_name, n = {}, {}, 0
        for e in prof.events():
            if str(getattr(e, "device_type", "")).endswith("CUDA"):
                du = e.time_range.end - e.time_range.start; c = categorize(e.name); n += 1
                by_cat[c] = by_cat.get(c, 0) + du; by_name[e.name] = by_name.get(e.name, 0) + du
        kt = sum(by_cat.values()) or 1
        return {"tool": "torch.profiler (CUPTI)", "steps": steps, "kernels_per_step": n / steps,
                "gpu_kernel_ms_per_step": kt / 1e3 / steps, "kernel_share": {c: v / kt for c, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
                "top_kernels": [{"name": k[:160], "ms_per_step": v / 1e3 / steps} for k, v in sorted(by_name.items(), key=lambda kv: -kv[1])[:12]]}

class HF:
    "transformers `generate`: its dynamic cache, or its static cache (`cache_implementation='static'`, which transformers compiles)."
    def __init__(self, model, static:bool):
        self.m, self.static = model, static
    def _gen(self, x, n):
        import torch
        kw = {"cache_implementation": "static"} if self.static else {}
        t = time.perf_counter()
        with torch.inference_mode():
            out = self.m.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                  pad_token_id=0, max_length=None, **kw)
        torch.cuda.synchronize()
        return time.perf_counter() - t, out
    def run(self, ids, new_tokens):
        import torch
        x = torch.tensor([ids], device="cuda")
        first, _ = self._gen(x, 1); whole, out = self._gen(x, new_tokens)
        return first, max(whole - first, 1e-9), out[0, len(ids):].tolist()
    def logits(self, ids):
        import torch
        with torch.inference_mode(): return self.m(torch.tensor([ids], device="cuda")).logits[0, -1].float().tolist()

def read_bw(nbytes=2 << 30, reps=20):
    "Read bandwidth (a sum over 2 GiB: every byte read once) and copy bandwidth (bytes read + written), GB/s, medians."
    import torch
    x = torch.empty(nbytes // 2, dtype=torch.float16, device="cuda").normal_(); y = torch.empty_like(x)
    def med(f):
        for _ in range(3): f()
        ts = []
        for _ in range(reps):
            torch.cuda.synchronize(); t = time.perf_counter(); f(); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
        return statistics.median(ts)
    r = nbytes / med(lambda: x.sum()) / 1e9; c = 2 * nbytes / med(lambda: y.copy_(x)) / 1e9
    del x, y; torch.cuda.empty_cache()
    return {"read_gbs": r, "copy_gbs": c}

def torch_worker(src:Path, what:list):
    import torch
    runners, info = {}, {}
    def say(**k): print(TAG + json.dumps(k, default=str), flush=True)
    w = None
    for name in what:
        t = time.time()
        try:
            if name.startswith("peer"):
                w = w or Weights(src)
                r = Peer(w, int4="int4" in name, compile_="eager" not in name)
                ids = list(range(3, 131)); r.run(ids, 8); r.run(ids, 8)         # compile + capture + warm
                info[name] = {"bytes_per_step": r.bytes_per_step()}
            else:
                from transformers import AutoModelForCausalLM
                if "hf_model" not in info:
                    info["hf_model"] = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float16).to("cuda").eval()
                r = HF(info["hf_model"], static="static" in name)
                ids = list(range(3, 131)); r.run(ids, 8); r.run(ids, 16)
                info[name] = {"compiled_call": hasattr(info["hf_model"], "_compiled_call"),
                              "compile_config": repr(getattr(info["hf_model"].generation_config, "compile_config", None))}
            runners[name] = r; say(loaded=name, seconds=round(time.time() - t, 1), **info[name])
        except Exception as e:
            traceback.print_exc(); say(loaded=name, error=err(e), seconds=round(time.time() - t, 1))
    say(ready=list(runners))
    serve(runners)

def ort_worker(specs:list):
    runners = {}
    def say(**k): print(TAG + json.dumps(k, default=str), flush=True)
    for s in specs:
        name, path = s.split("=", 1); t = time.time()
        try: runners[name] = OrtRunner(Path(path)); say(loaded=name, seconds=round(time.time() - t, 1))
        except Exception as e: traceback.print_exc(); say(loaded=name, error=err(e))
    say(ready=list(runners))
    serve(runners)

def serve(runners):
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            op = cmd["op"]
            if op == "quit": break
            r = runners.get(cmd.get("name"))
            if op == "run": a, b, toks = r.run(cmd["ids"], cmd["new_tokens"]); out = {"prefill_s": a, "decode_s": b, "tokens": toks}
            elif op == "logits": out = {"logits": r.logits(cmd["ids"])}
            elif op == "profile": out = r.profile()
            elif op == "bw": out = read_bw()
            elif op == "unload":
                for n in cmd["names"]: runners.pop(n, None)
                import gc; gc.collect(); out = {"left": list(runners)}
            elif op == "batch":
                from gpu_perf import Ort, variant, rand_ids, timed
                v = variant(Path(cmd["folder"]), Path(cmd["work"]), share_buffer=False, cuda_graph=False)
                o = Ort(v); out = {}
                for b in cmd["batches"]:
                    try: out[f"b{b}"] = timed(o, rand_ids(b, 128, cmd["vocab"]), cmd["new_tokens"], 2)
                    except Exception as e: out[f"b{b}"] = {"error": err(e)}
                del o
            elif op == "variant":   # session options changed in a hard-linked copy
                from gpu_perf import variant
                v = variant(Path(cmd["folder"]), Path(cmd["out"]), full_cache=False)
                g = json.loads((v/"genai_config.json").read_text())
                g["model"]["decoder"]["session_options"].update(cmd["session_options"]); (v/"genai_config.json").write_text(json.dumps(g, indent=2))
                runners[cmd["name"]] = OrtRunner(v); out = {"ok": str(v)}
            else: out = {"error": f"unknown op {op}"}
        except Exception as e:
            traceback.print_exc(); out = {"error": err(e)}
        print(TAG + json.dumps(out, default=str), flush=True)

class Worker:
    def __init__(self, tag, args, env=None):
        self.tag, self.loaded, self.ready = tag, {}, None
        self.p = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, **(env or {})}, bufsize=1)
    def _read(self):
        for line in self.p.stdout:
            if line.startswith(TAG): return json.loads(line[len(TAG):])
            sys.stdout.write(f"  [{self.tag}] {line}")
        return None
    def wait_ready(self):
        while self.ready is None:
            m = self._read()
            if m is None: raise RuntimeError(f"worker {self.tag} died while loading")
            if "loaded" in m: self.loaded[m["loaded"]] = m; log(f"{self.tag}: loaded", json.dumps(m)[:300])
            if "ready" in m: self.ready = m["ready"]
        return self.ready
    def ask(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n"); self.p.stdin.flush()
        m = self._read()
        if m is None: raise RuntimeError(f"worker {self.tag} died")
        return m
    def close(self):
        try: self.p.stdin.write('{"op": "quit"}\n'); self.p.stdin.flush(); self.p.wait(20)
        except Exception: self.p.kill()

# ================================================================ driver
def mo(*args) -> list:
    "The `mistral-onnx` command of the package on the path."
    return [sys.executable, "-c", "import sys; from mistral_onnx.cli import main; sys.exit(main())", *args]

def run_exports(a, res, save, src:Path):
    "Exports, at most a.jobs at a time and one fp16 at a time; each one's rc, seconds and log tail in res['exports']."
    scales = a.work/"kv_scales.json"
    cfg = json.loads((src/"config.json").read_text())
    scales.write_text(json.dumps({"scales": {"k_scales": [0.05] * cfg["num_hidden_layers"], "v_scales": [0.05] * cfg["num_hidden_layers"]}}))
    todo = [n for n in EXPORTS if n in a.exports]; running = {}; out = res["exports"]
    need = lambda p: (15e9 if p == "fp16" else 5e9) * (cfg["num_hidden_layers"] / 32) + 2e9
    while todo or running:
        for n, (p, t0, f) in list(running.items()):
            rc = p.poll()
            if rc is None: continue
            f.close(); del running[n]
            tail = (a.work/f"export_{n}.log").read_text(errors="replace")[-1500:]
            out[n].update(rc=rc, seconds=round(time.time() - t0, 1), log_tail=tail if rc else tail[-300:],
                          ok=rc == 0 and (a.work/n/"genai_config.json").exists())
            log("export", n, "rc", rc, f"{out[n]['seconds']} s"); save()
        started = False
        for n in list(todo):
            prec, extra = EXPORTS[n]
            if (a.work/n/"genai_config.json").exists() and not a.fresh:   # a relaunch on the same machine
                out[n] = {"precision": prec, "extra_options": extra, "ok": True, "reused": True}; todo.remove(n); continue
            if len(running) >= a.jobs or (prec == "fp16" and any(EXPORTS[r][0] == "fp16" for r in running)): continue
            if a.deadline and time.time() > a.deadline - 240: out[n] = {"ok": False, "error": "skipped: too close to the deadline"}; todo.remove(n); continue
            if shutil.disk_usage(a.work).free < need(prec) + sum(need(EXPORTS[r][0]) for r in running):
                if not running: out[n] = {"ok": False, "error": f"skipped: {shutil.disk_usage(a.work).free/1e9:.1f} GB free"}; todo.remove(n)
                continue
            argv = mo("export", str(src), str(a.work/n), "--precision", prec, "--ep", a.ep, "--overwrite")
            for e in extra: argv += e.split("=", 1) if e.startswith("--") else ["--extra-option", e.format(scales=scales)]
            f = open(a.work/f"export_{n}.log", "w")
            running[n] = (subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), time.time(), f)
            out[n] = {"precision": prec, "extra_options": extra, "command": "mistral-onnx " + " ".join(argv[3:])}
            todo.remove(n); started = True; log("export", n, "started", extra)
            break
        if not started: time.sleep(2)
    for n in a.exports:
        if (a.work/n/"genai_config.json").exists():
            from mistral_onnx.bench import decode_bytes
            out[n]["decode_bytes"] = decode_bytes(a.work/n/"model.onnx")["decode"]
            out[n]["disk_bytes"] = sum(f.stat().st_size for f in (a.work/n).iterdir() if f.is_file())
            try:
                import onnx, collections
                m = onnx.load(str(a.work/n/"model.onnx"), load_external_data=False)
                out[n]["ops"] = dict(collections.Counter(x.op_type for x in m.graph.node))
                out[n]["matmulnbits_attrs"] = sorted({f"{at.name}={at.i}" for x in m.graph.node if x.op_type == "MatMulNBits" for at in x.attribute if at.name in ("block_size", "weight_prepacked", "accuracy_level")})
                out[n]["session_options"] = json.loads((a.work/n/"genai_config.json").read_text())["model"]["decoder"]["session_options"]
            except Exception as e: out[n]["graph_error"] = err(e)
    save()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch-worker", nargs="+"); ap.add_argument("--ort-worker", nargs="+")
    ap.add_argument("--config", type=Path); ap.add_argument("--work", type=Path); ap.add_argument("--out", type=Path)
    ap.add_argument("--ep", default="cuda"); ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=5); ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256); ap.add_argument("--deadline", type=float, default=0)
    ap.add_argument("--jobs", type=int, default=3); ap.add_argument("--exports", default=",".join(EXPORTS))
    ap.add_argument("--peers", default="peer_fp16_eager,peer_fp16,peer_int4,hf_dynamic,hf_static")
    ap.add_argument("--batches", default="1,8,32"); ap.add_argument("--fresh", action="store_true", help="export again over existing folders")
    a = ap.parse_args()
    if a.torch_worker: return torch_worker(Path(a.torch_worker[0]), a.torch_worker[1:])
    if a.ort_worker: return ort_worker(a.ort_worker)
    a.exports = a.exports.split(","); a.work.mkdir(parents=True, exist_ok=True); a.out.mkdir(parents=True, exist_ok=True)
    left = lambda: (a.deadline - time.time()) if a.deadline else 1e9
    import numpy as np, torch
    from mistral_onnx.bench import machine
    from mistral_onnx.env import versions
    res = {"about": "issue 25, GPU round 3: ORT GenAI fp16/int4 defaults and builder options beside the PyTorch peers, interleaved in one run",
           "command": "python tools/gpu_round3.py " + " ".join(sys.argv[1:]), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
           "machine": machine(), "load_avg_start": os.getloadavg(), "versions": versions(),
           "settings": {"batch": 1, "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "rounds": a.rounds, "greedy": True,
                        "weights": "random, fp16", "config": a.config.name},
           "exports": {}, "peers": {}, "rows": {}, "errors": {}, "seconds": {}}
    try: res["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu", "--format=csv"], capture_output=True, text=True).stdout
    except Exception: pass
    save = lambda: (a.out/"round3.json").write_text(json.dumps(res, indent=1, default=str))
    def stage(name, f):
        t = time.time(); log("== stage", name)
        try: f()
        except Exception as e: res["errors"][name] = err(e); traceback.print_exc()
        res["seconds"][name] = round(time.time() - t, 1); save()
    src = a.work/"src"
    def make():
        from gpu_bench import make_model
        if not (src/"config.json").exists(): res["source"] = make_model(str(a.config), str(src), dtype="float16", layers=a.layers)
    stage("make_model", make)
    cfg = json.loads((src/"config.json").read_text()); vocab = cfg["vocab_size"]
    cuda = torch.cuda.is_available()
    tw = Worker("torch", ["--torch-worker", str(src), *a.peers.split(",")]) if cuda and a.peers else None
    stage("exports", lambda: run_exports(a, res, save, src))
    live_exports = [n for n in a.exports if res["exports"].get(n, {}).get("ok")]
    ow = Worker("ort", ["--ort-worker", *[f"{n}={a.work/n}" for n in live_exports]])
    def ready():
        ow.wait_ready()
        if "int4" in live_exports and a.ep == "cuda":
            m = ow.ask(op="variant", name="int4_fpa", folder=str(a.work/"int4"), out=str(a.work/"int4_fpa"), session_options={"ep.cuda.fpa_intb_gemm": "1"})
            if "error" in m: res["errors"]["int4_fpa"] = m["error"]
            else: ow.ready.append("int4_fpa")
        res["ort_load"] = ow.loaded
        if tw: tw.wait_ready(); res["peers"] = tw.loaded
    stage("load", ready)
    if tw:
        stage("bandwidth", lambda: res.update(bandwidth=tw.ask(op="bw")))
    bw = (res.get("bandwidth") or {}).get("read_gbs")
    runners = [("ort", n) for n in (ow.ready or [])] + [("torch", n) for n in ((tw.ready if tw else None) or [])]
    W = {"ort": ow, "torch": tw}
    ids = np.random.default_rng(0).integers(3, vocab, size=a.prompt_len).tolist()
    toks = {}
    def rounds():
        for w, n in runners:   # warm-up (ORT: CUDA graph capture, tactic profiling)
            m = W[w].ask(op="run", name=n, ids=ids, new_tokens=8)
            if "error" in m: res["errors"][n] = m["error"]; log("warm-up failed", n, m["error"][:300])
        live = [(w, n) for w, n in runners if n not in res["errors"]]
        runs = {n: [] for _, n in live}
        for r in range(a.rounds):
            if r >= 2 and left() < 330: log("deadline: stopping the rounds"); res["rounds_done"] = r; break
            for w, n in live[r % len(live):] + live[:r % len(live)]:
                m = W[w].ask(op="run", name=n, ids=ids, new_tokens=a.new_tokens)
                if "error" in m: res["errors"][n] = m["error"]; continue
                runs[n].append((m["prefill_s"], m["decode_s"])); toks.setdefault(n, m["tokens"])
                log(f"round {r+1} {n:16s} prefill {m['prefill_s']*1e3:7.2f} ms  decode {(a.new_tokens-1)/m['decode_s']:7.1f} tok/s")
            for n, v in runs.items():
                if not v: continue
                dec = statistics.median(x[1] for x in v); tps = (a.new_tokens - 1) / dec
                e = res["exports"].get(BASE.get(n, n) if n == "int4_fpa" else n, {})
                nb = e.get("decode_bytes") or (res["peers"].get(n) or {}).get("bytes_per_step")
                fl = bw * 1e9 / nb if (bw and nb) else None
                res["rows"][n] = {"prefill_ms": statistics.median(x[0] for x in v) * 1e3, "decode_tok_s": tps, "decode_ms_per_step": dec * 1e3 / (a.new_tokens - 1),
                                  "bytes_per_step": nb, "floor_tok_s": fl, "share_of_floor": tps / fl if fl else None,
                                  "achieved_read_gbs": nb * tps / 1e9 if nb else None,
                                  "runs_ms": [[round(x[0] * 1e3, 2), round(x[1] * 1e3, 2)] for x in v]}
            save()
    stage("rounds", rounds)
    rows = res["rows"]
    def agreement():
        ag = res.setdefault("agreement", {})
        lg = {}
        for w, n in runners:
            if n in ("peer_fp16_eager", "hf_static", "peer_int4") or n not in rows: continue
            m = W[w].ask(op="logits", name=n, ids=ids)
            if "logits" in m: lg[n] = np.array(m["logits"])
        pairs = [(n, BASE[n]) for n in lg if n in BASE] + [("peer_fp16", "hf_dynamic"), ("fp16", "hf_dynamic"), ("int4", "fp16")]
        for x, y in pairs:
            if x in lg and y in lg:
                d = lg[x] - lg[y]
                same = next((i for i, (p, q) in enumerate(zip(toks.get(x, []), toks.get(y, []))) if p != q), min(len(toks.get(x, [])), len(toks.get(y, []))))
                ag[f"{x}_vs_{y}"] = {"rel_l2": float(np.linalg.norm(d) / np.linalg.norm(lg[y])), "max_abs": float(np.abs(d).max()),
                                     "argmax_equal": bool(lg[x].argmax() == lg[y].argmax()), "greedy_equal_prefix": same, "of": len(toks.get(x, []))}
        log("agreement", json.dumps(ag)[:1500])
    stage("agreement", agreement)
    def profiles():
        pr = res.setdefault("profile", {})
        best = lambda pre: max((n for n in rows if n.startswith(pre) and n in dict((n, w) for w, n in runners)), key=lambda n: rows[n]["decode_tok_s"], default=None)
        want = list(dict.fromkeys(x for x in ("fp16", best("fp16"), "int4", best("int4")) if x))
        want += [n for n in ("peer_fp16", "peer_int4") if n in rows]
        for n in want:
            if left() < 200: pr[n] = {"error": "skipped: deadline"}; continue
            w = next(w for w, m in runners if m == n)
            pr[n] = W[w].ask(op="profile", name=n); save()
            log("profile", n, json.dumps(pr[n].get("kernel_share"))[:300])
    if cuda: stage("profile", profiles)
    if tw: tw.close()
    def batches():
        out = res.setdefault("batch", {"settings": {"prompt_len": 128, "new_tokens": 128, "repeats": 2,
                                                    "variant": "past_present_share_buffer false, CUDA graph off, full-length cache"}})
        ow.ask(op="unload", names=list(ow.ready or []))
        for n in ("int4", "fp16"):
            if n not in live_exports: continue
            if left() < 120: out[n] = {"error": "skipped: deadline"}; continue
            out[n] = ow.ask(op="batch", folder=str(a.work/n), work=str(a.work/f"batch_{n}"), batches=[int(b) for b in a.batches.split(",")],
                            new_tokens=128, vocab=vocab); save()
            log("batch", n, json.dumps({b: v.get("decode_tok_s") for b, v in out[n].items() if isinstance(v, dict)}))
    stage("batch", batches)
    ow.close()
    res["load_avg_end"] = os.getloadavg(); res["finished_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()); res["total_s"] = round(time.time() - T0, 1); save()
    log("done:", json.dumps({k: round(r["decode_tok_s"], 1) for k, r in rows.items()}))

if __name__ == "__main__":
    main()
