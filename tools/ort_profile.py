#!/usr/bin/env python
"""Where one prefill goes, by operator and by weight: ONNX Runtime's own profiler on an exported folder's graph.

  python tools/ort_profile.py FOLDER [--prompt-len 128] [--threads 2]
Runs the graph directly (onnxruntime.InferenceSession, CPU, an empty cache) on a random prompt, four times, and prints
the wall time of each and, for the last, the kernel time per operator type and per MatMul(NBits) group (q/k/v, o, the
MLP's gate/up/down, lm_head). Used for the prefill analysis of nbs/tutorials/cpu_peers (issue 16).
"""
import argparse, collections, glob, json, os, tempfile, time
import numpy as np, onnxruntime as ort
from mistral_onnx.folder import ExportFolder

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("folder"); ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    f = ExportFolder(a.folder); spec = f.spec
    so = ort.SessionOptions(); so.intra_op_num_threads = a.threads
    so.enable_profiling = True; so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "prof")
    s = ort.InferenceSession(str(f.graph_path), so, providers=["CPUExecutionProvider"])
    T, feeds = a.prompt_len, {}
    for i in s.get_inputs():
        if i.name == "input_ids": feeds[i.name] = np.random.default_rng(0).integers(3, spec.vocab_size, (1, T)).astype(np.int64)
        elif i.name == "attention_mask": feeds[i.name] = np.ones((1, T), dtype=np.int64)
        elif i.name == "position_ids": feeds[i.name] = np.arange(T, dtype=np.int64)[None]
        else:   # past_key_values.*: [batch, kv heads, 0, head_dim]
            shp = [1 if d == "batch_size" else spec.head_dim if d == "kv_cache_dim" else 0 if isinstance(d, str) else d for d in i.shape]
            feeds[i.name] = np.zeros(shp, dtype=np.float16 if "float16" in i.type else np.float32)
    for _ in range(4):
        t = time.perf_counter(); s.run(None, feeds); print(f"prefill {T} tokens: {1e3 * (time.perf_counter() - t):.1f} ms")
    ev = json.load(open(s.end_profiling()))
    last = [e for e in ev if e.get("cat") == "Session" and e["name"] == "model_run"][-1]
    t0, t1 = last["ts"], last["ts"] + last["dur"]
    ops, groups = collections.Counter(), collections.Counter()
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("kernel_time") and t0 <= e["ts"] <= t1:
            ops[e["args"]["op_name"]] += e["dur"]
            if e["args"]["op_name"] in ("MatMulNBits", "MatMul"):
                parts = e["name"].split("/"); groups[parts[-2] if len(parts) > 1 else e["name"]] += e["dur"]
    tot = sum(ops.values())
    print(f"last run {last['dur'] / 1e3:.1f} ms; kernels {tot / 1e3:.1f} ms")
    for k, v in ops.most_common(10): print(f"  {k:34s} {v / 1e3:8.1f} ms {100 * v / tot:5.1f}%")
    print("  MatMul(NBits) by weight:")
    for k, v in groups.most_common(): print(f"    {k:32s} {v / 1e3:8.1f} ms {100 * v / tot:5.1f}%")

if __name__ == "__main__":
    main()
