"""Decode tok/s of the default export (full-length window cache) against the ring export (`--window-cache ring`),
interleaved in one process (issue 12; written by the window helper, run by tools/gpu_run.sh).

    python tools/gpu_window.py FULL_DIR RING_DIR EP PROMPT_LEN NEW_TOKENS REPEATS   -> JSON on stdout
"""
import json, statistics, sys, numpy as np
from mistral_onnx.folder import ExportFolder
from mistral_onnx.bench import GenaiBench, machine
full, ring, ep = sys.argv[1], sys.argv[2], sys.argv[3]
prompt_len, new_tokens, repeats = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
runs = {}
for name, path in (("full", full), ("ring", ring)):
    f = ExportFolder.of(path)
    runs[name] = (GenaiBench(f, f.spec, ep), [])
ids = [int(t) for t in np.random.default_rng(0).integers(3, ExportFolder.of(full).spec.vocab_size, size=prompt_len)]
for r, _ in runs.values(): r.run(ids, new_tokens)                        # warm-up
for _ in range(repeats):
    for name, (r, t) in runs.items(): t.append(r.run(ids, new_tokens)[1])   # interleaved: full, ring, full, ring, ...
res = {n: {"decode_tok_s": (new_tokens - 1) / statistics.median(t), "runs_s": t} for n, (r, t) in runs.items()}
res["full_over_ring"] = res["full"]["decode_tok_s"] / res["ring"]["decode_tok_s"]
res.update(machine=machine(), prompt_len=prompt_len, new_tokens=new_tokens, repeats=repeats, ep=ep)
print(json.dumps(res, indent=1))
