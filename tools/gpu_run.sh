#!/usr/bin/env bash
# The CUDA user's path on the lent GPU machine (issue 13): install our built wheel with the `cuda` extra, then every step
# is the `mistral-onnx` command a user types. Each step's exit code, wall time, peak host memory, peak GPU memory, extra
# disk and printed numbers go to gpu_results.json (key "cli_run"); the whole output to run.log.
#
# Here, on a CPU machine that reaches PyPI:
#   bash tools/gpu_run.sh prepare      build our wheel from HEAD (git archive, `python -m build --wheel`), download the
#                                      CUDA runtime wheels and the dependencies the GPU machine lacks, pack all of them
#                                      into .wc/p0..pN, each small enough to travel with the working tree in one call
# On the GPU machine, one device call each, each within 30 s of the last (the machine stays warm):
#   bash tools/gpu_run.sh receive      keep the carried chunk(s) .wc/p* in /tmp/parts
#   bash tools/gpu_run.sh start        (with the last chunk and .wc/sha256) reassemble the wheels in /tmp/whl, then run
#                                      `steps` detached (setsid) with its log in /tmp/gpurun/run.log; returns at once
#   bash tools/gpu_run.sh poll SECS    wait until the steps end or SECS pass; copy results and logs to $OUT
#   bash tools/gpu_run.sh launch       run `steps` detached again (after a fix, with the wheels already in /tmp/whl)
#   bash tools/gpu_run.sh steps        the steps themselves
#   GPU_RUN_MODE=round2 bash tools/gpu_run.sh start|launch
#                                      issue 16's study (fp16, int4 at block 128 and 32, ORT's int4 kernel and the fpA_intB
#                                      one, transformers), now a configuration of round 3 (tools/gpu_round2.py is gone;
#                                      its raw results stay in nbs/tutorials/gpu_results.json, key round2)
#   GPU_RUN_MODE=round3 GPU_RUN_CHUNKS=DIR bash tools/gpu_run.sh start|launch
#                                      issue 25, round 3: the runtime wheels (no wheel of ours: this folder's mistral_onnx
#                                      is put on PYTHONPATH) + fastcore from whl/, then tools/gpu_round3.py (exports with the
#                                      builder's fast paths, the PyTorch peers, interleaved rounds, profiles, batches)
#   GPU_RUN_MODE=blocks bash tools/gpu_run.sh start|launch
#                                      the int4 block-size rules as a CUDA user meets them, on a small random model: the
#                                      CUDA default (128) exports and generates; 256 is refused for --ep cuda, and a CPU
#                                      export with 256-wide blocks is refused by generate --ep cuda (exit 2, the fix named)
# A dry run here, on CPU and a tiny model (our wheel with the `cpu` extra from PyPI into a throwaway venv):
#   GPU_RUN_EP=cpu GPU_RUN_PRECISIONS="fp32 int4" GPU_RUN_CONFIG=tiny.json GPU_RUN_LONG="80,4" \
#   GPU_RUN_PYTHON=/tmp/venv/bin/python GPU_RUN_PIP_SOURCES="" GPU_RUN_WHEELS=dist bash tools/gpu_run.sh steps
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN=${GPU_RUN_DIR:-/tmp/gpurun}                 # results and logs
WORK=${GPU_RUN_WORK:-/tmp/m7b}                  # the source model and the exports
WHL=${GPU_RUN_WHEELS:-/tmp/whl}                 # the carried wheels, reassembled
PY=${GPU_RUN_PYTHON:-python3}
EP=${GPU_RUN_EP:-cuda}
EXTRA=${GPU_RUN_EXTRA:-$EP}
PRECISIONS=${GPU_RUN_PRECISIONS:-fp16 int4}
CONFIG=${GPU_RUN_CONFIG:-$REPO/mistral_onnx/corpus/Mistral-7B-v0.1.json}   # as the hub publishes it: no head_dim
LONG=${GPU_RUN_LONG:-4352,8 8192,8}             # validate past the 4096-token window (issue 12)
PIP_SOURCES=${GPU_RUN_PIP_SOURCES---no-index --find-links $WHL}
DEADLINE=${GPU_RUN_DEADLINE:-0}                 # epoch seconds after which no new step starts (0: none)
PERF_BUDGET=${GPU_RUN_PERF_S:-400}; MEM_BUDGET=${GPU_RUN_MEM_S:-300}
BENCH_ARGS=${GPU_RUN_BENCH_ARGS:-}                # e.g. "--new-tokens 32 --repeats 1" for a quick dry run
LIMIT=$((64 * 1024 * 1024))                     # what one device call carries, working tree included
# Python packages the GPU image has (KINDS.md of the device tool, 2026-11-17), of those our wheel may ask for
IMAGE_HAS='torch|transformers|onnx|onnx-ir|onnxscript|onnxruntime|safetensors|tokenizers|numpy|huggingface-hub|packaging|pygments|psutil|typing-extensions|narwhals|protobuf|flatbuffers|sympy|pyyaml|requests|jinja2|rich|tqdm|filelock|fsspec|ml-dtypes|regex'

prepare() {
  set -e
  cd "$REPO"
  local cache=${GPU_RUN_CACHE:-$HOME/.cache/mistral_onnx_gpu} plat="--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64 --platform any"
  mkdir -p "$cache/rt" "$cache/deps"
  grep -qxF '/.wc/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.wc/' >> .git/info/exclude; }
  echo "== our wheel, from HEAD $(git rev-parse --short HEAD)"
  [ -x "$cache/venv-build/bin/python" ] || { python3 -m venv "$cache/venv-build" && "$cache/venv-build/bin/pip" install -q build; }
  rm -rf "$cache/head" "$cache/dist" && mkdir -p "$cache/head" && git archive HEAD | tar -x -C "$cache/head"
  "$cache/venv-build/bin/python" -m build -q --wheel --outdir "$cache/dist" "$cache/head" >/dev/null
  local wheel; wheel=$(ls "$cache"/dist/mistral_onnx-*.whl); echo "$wheel"
  echo "== runtime wheels (onnxruntime-gpu, onnxruntime-genai-cuda) and what the GPU machine lacks"
  python3 -m pip download -q --no-deps $plat -d "$cache/rt" ${ORT:-onnxruntime-gpu==1.31.1} ${GENAI:-onnxruntime-genai-cuda==0.18.0}
  # the GPU image has torch, transformers, onnx, onnx-ir, onnxscript, safetensors, tokenizers, numpy, huggingface-hub
  # (KINDS.md); everything else our wheel asks for travels, with its dependencies
  local need; need=$(unzip -p "$wheel" '*/METADATA' | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' \
        | sed 's/[ ;<>=!~\[].*//' | tr 'A-Z_' 'a-z-' | grep -vxE "$IMAGE_HAS")
  echo "carried dependencies: $need"
  rm -rf "$cache/deps" && mkdir -p "$cache/deps" && python3 -m pip download -q $plat -d "$cache/deps" $need
  for w in "$cache"/deps/*.whl; do    # large ones the image has: its version is used; small ones travel in case its version is too old
    n=$(basename "$w" | cut -d- -f1 | tr 'A-Z_' 'a-z-'); echo "$n" | grep -qxE "$IMAGE_HAS" && [ "$(stat -c %s "$w")" -gt 1000000 ] && rm "$w"; done
  ls "$cache/deps"
  rm -rf .wc && mkdir .wc
  local tarf=$cache/wheels.tar
  (cd "$cache" && tar cf "$tarf" -C "$cache/rt" . -C "$cache/deps" . -C "$cache/dist" .)
  local tree; tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  local size room n; size=$(stat -c %s "$tarf"); room=$((LIMIT - tree - 6 * 1024 * 1024))   # 6 MiB for files others add before the calls
  n=$(( (size + room - 1) / room ))
  echo "wheels.tar $size bytes; working tree $tree bytes; room per call $room -> $n chunks"
  split -n "$n" -d -a 1 "$tarf" .wc/p
  sha256sum "$tarf" | cut -d' ' -f1 > .wc/sha256
  ls -la .wc
}

CHUNKS=${GPU_RUN_CHUNKS:-$REPO/.wc}            # where the carried chunks are (round 3 runs from a copy outside the repo)
receive() { mkdir -p /tmp/parts && cp "$CHUNKS"/p* /tmp/parts/ && ls -la /tmp/parts; }

start() {
  receive || return 1
  cat $(ls /tmp/parts/p* | sort) > /tmp/wheels.tar
  if [ -f "$CHUNKS/sha256" ] && [ "$(sha256sum /tmp/wheels.tar | cut -d' ' -f1)" != "$(cat "$CHUNKS/sha256")" ]; then
    echo "error: the reassembled wheels do not match .wc/sha256: a chunk is missing or broken"; ls -la /tmp/parts; return 1; fi
  rm -rf "$WHL" && mkdir -p "$WHL" && tar xf /tmp/wheels.tar -C "$WHL" && ls "$WHL" && rm -rf /tmp/wheels.tar /tmp/parts
  launch
}

launch() {   # run `steps` detached from a copy of this working tree (also: after a fix, on the same warm machine)
  mkdir -p "$RUN"; rm -f "$RUN/done"
  rm -rf /tmp/repo-copy && cp -r "$REPO" /tmp/repo-copy   # the next call lays the working tree anew; the steps keep this one
  GPU_RUN_DEADLINE=$DEADLINE setsid bash /tmp/repo-copy/tools/gpu_run.sh ${GPU_RUN_MODE:-steps} > "$RUN/run.log" 2>&1 < /dev/null &
  sleep 5; tail -5 "$RUN/run.log"
}

poll() {
  local secs=${1:-540} t0; t0=$(date +%s)
  while [ ! -f "$RUN/done" ] && [ $(( $(date +%s) - t0 )) -lt "$secs" ]; do sleep 5; done
  [ -f "$RUN/done" ] && echo "== steps finished" || echo "== still running after $secs s"
  if [ -n "${OUT:-}" ]; then
    for f in gpu_results.json run.log helpers.log helpers.json perf/perf.json round2/round2.json round3/round3.json; do   # 7 files with nvidia-smi.txt (8 at most)
      [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/$(echo "$f" | tr / _)"; done
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
  fi
  tail -c 6000 "$RUN/run.log"
}

steps() {
  mkdir -p "$RUN" "$WORK"; cd "$WORK" || return 1     # not the repo: `import mistral_onnx` must be the installed wheel
  trap 'touch "$RUN/done"' EXIT                       # poll stops waiting however this ends
  RES=$RUN/gpu_results.json; rm -f "$RES" "$RUN"/helpers.*
  local BIN; BIN=$("$PY" -c 'import os, sys; print(os.path.dirname(sys.executable))'); export PATH="$BIN:$PATH"
  export PYTHONUNBUFFERED=1
  local NGPU; NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU'); NGPU=${NGPU:-0}
  "$PY" - "$RES" "$EP" "$PRECISIONS" "$CONFIG" "$NGPU" <<'PYEOF'
import json, os, platform, shutil, subprocess, sys, time
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip().splitlines()[0] if shutil.which("nvidia-smi") else None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
d = {"cli_run": {"machine": f"{gpu or 'no GPU'} x{sys.argv[5]} ({cpu}, {os.cpu_count()} cores)",
                 "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "python": platform.python_version(),
                 "ep": sys.argv[2], "precisions": sys.argv[3].split(), "config": os.path.basename(sys.argv[4]),
                 "command": "bash tools/gpu_run.sh steps", "steps": {}}}
open(sys.argv[1], "w").write(json.dumps(d, indent=1))
PYEOF
  echo "== $(date -u +%H:%M:%S) the machine ($NGPU GPUs)"; nvidia-smi 2>/dev/null | head -15; free -g; df -h "$WORK"
  "$PY" -m pip list 2>/dev/null | grep -iE '^(onnx|torch |transformers)'
  # 1. install, as a user would: our wheel with the extra for this machine
  step install -- "$PY" -m pip install $PIP_SOURCES "mistral_onnx[$EXTRA]"
  "$PY" -m pip list 2>/dev/null | grep -iE 'onnxruntime|mistral'
  step doctor_after_install -- mistral-onnx doctor
  # 2. two flavours of one runtime module (an image that already had the CPU onnxruntime): doctor says so; apply its fix
  local fix; fix=$("$PY" -c "
from mistral_onnx.env import runtime
print(' && '.join(r for r in (runtime(m).repair() for m in ('onnxruntime', 'onnxruntime_genai')) if r))" 2>/dev/null)
  if [ -n "$fix" ]; then
    echo "== doctor's repair: $fix"
    fix=$(echo "$fix" | sed "s#pip uninstall#$PY -m pip uninstall#g; s#pip install#$PY -m pip install $PIP_SOURCES#g")
    step repair -- bash -c "$fix"
    "$PY" -m pip list 2>/dev/null | grep -iE 'onnxruntime'
  fi
  step doctor -- mistral-onnx doctor --json
  step doctor_builder -- mistral-onnx doctor --route builder
  # 3. a Mistral-7B-v0.1 from its published config.json, random weights (no hub downloads on this machine)
  step make_model --out-dir "$WORK/src" -- "$PY" "$REPO/tools/gpu_bench.py" make-model "$CONFIG" "$WORK/src" ${GPU_RUN_LAYERS:+--layers $GPU_RUN_LAYERS}
  local SRC=$WORK/src first=1 p helpers=0
  for p in $PRECISIONS; do
    step export_$p --out-dir "$WORK/$p" -- mistral-onnx export "$SRC" "$WORK/$p" --precision $p --ep $EP --overwrite; local rc=$?
    if [ "$rc" != 0 ] && [ "$rc" != 99 ] && [ "$SRC" = "$WORK/src" ] && [ "$first" = 1 ]; then
      # the published config failed (issue 12: no head_dim); go on from the same weights with head_dim written, and say so
      echo "== export from the published config failed; the rest uses src-head_dim (config.json + head_dim)"
      rm -rf "$WORK/src-head_dim"; mkdir -p "$WORK/src-head_dim"; ln "$WORK"/src/* "$WORK/src-head_dim/"; rm "$WORK/src-head_dim/config.json"
      "$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); c['head_dim']=c['hidden_size']//c['num_attention_heads']; json.dump(c,open(sys.argv[2],'w'),indent=2)" \
        "$WORK/src/config.json" "$WORK/src-head_dim/config.json"
      SRC=$WORK/src-head_dim
      step export_${p}_head_dim --out-dir "$WORK/$p" -- mistral-onnx export "$SRC" "$WORK/$p" --precision $p --ep $EP --overwrite
    fi
    step check_$p -- mistral-onnx check "$WORK/$p"
    if [ "$first" = 1 ] && [ "$NGPU" -ge 2 ] && [ -f "$WORK/$p/genai_config.json" ]; then
      helpers=1; (CUDA_VISIBLE_DEVICES=1 GPU_INDEX=1 helpers "$SRC" > "$RUN/helpers.log" 2>&1) &   # issues 16/17 on the second GPU
    fi
    step generate_$p -- mistral-onnx generate "$WORK/$p" "Tell me about the sea." --max-new-tokens 256
    step validate_$p -- mistral-onnx validate "$SRC" "$WORK/$p" --json
    if [ "$first" = 1 ]; then     # past the window, through ORT GenAI (issue 12), on the first precision only
      local seqs=() s; for s in $LONG; do seqs+=(--sequence "$s"); done
      step validate_${p}_long -- mistral-onnx validate "$SRC" "$WORK/$p" "${seqs[@]}" --runner ortgenai --json
      step bench_$p -- mistral-onnx bench "$SRC" "$WORK/$p" $BENCH_ARGS --json "$RUN/bench_$p.json"
      window "$SRC" "$p"
    else
      step bench_$p -- mistral-onnx bench "$SRC" "$WORK/$p" --runner ortgenai --runner onnxruntime $BENCH_ARGS --json "$RUN/bench_$p.json"
    fi
    first=0
  done
  for p in $PRECISIONS; do [ "$p" != "${PRECISIONS%% *}" ] && rm -rf "$WORK/$p"; done   # disk for the helpers (64 GiB there)
  df -h "$WORK" | tail -1
  if [ "$helpers" = 1 ]; then echo "== $(date -u +%H:%M:%S) waiting for the helpers on GPU 1"; wait; cat "$RUN/helpers.log"
  elif [ "${GPU_RUN_HELPERS:-1}" = 1 ]; then helpers "$SRC"; fi
  [ -f "$RUN/helpers.json" ] && "$PY" - "$RES" "$RUN/helpers.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); h = json.load(open(sys.argv[2])).get("cli_run", {})
d["cli_run"]["steps"].update(h.get("steps", {})); d["cli_run"].update({k: v for k, v in h.items() if k != "steps"})
open(sys.argv[1], "w").write(json.dumps(d, indent=1))
PYEOF
  "$PY" "$REPO/tools/gpu_bench.py" summary --results "$RES" > /dev/null
  "$PY" - "$RES" "$SRC" "$helpers" <<'PYEOF'
import json, sys, time
d = json.load(open(sys.argv[1])); r = d["cli_run"]
r["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()); r["source_used"] = sys.argv[2]
r["helpers_on_second_gpu"] = sys.argv[3] == "1"
open(sys.argv[1], "w").write(json.dumps(d, indent=1))
for n, s in r["steps"].items(): print(f"{n:28s} exit {s.get('rc')!s:>4}  {s.get('seconds', 0):8.1f} s")
print(json.dumps(r.get("summary"), indent=1))
PYEOF
  echo "== $(date -u +%H:%M:%S) done"; touch "$RUN/done"
}

begin_mode() {   # a GPU_RUN_MODE's common start: work folders, results file, `done` on exit, the interpreter's bin on PATH
  mkdir -p "$RUN" "$WORK"; cd "$WORK" || return 1
  trap 'touch "$RUN/done"' EXIT
  RES=$RUN/gpu_results.json; rm -f "$RES"; echo "{\"cli_run\": {\"command\": \"GPU_RUN_MODE=$1 bash tools/gpu_run.sh\", \"steps\": {}}}" > "$RES"
  local BIN; BIN=$("$PY" -c 'import os, sys; print(os.path.dirname(sys.executable))'); export PATH="$BIN:$PATH"; export PYTHONUNBUFFERED=1
}

install_and_repair() {   # our wheel with the extra for this machine; then doctor's repair when two runtime flavours are installed
  step install -- "$PY" -m pip install $PIP_SOURCES "mistral_onnx[$EXTRA]"
  local fix; fix=$("$PY" -c "
from mistral_onnx.env import runtime
print(' && '.join(r for r in (runtime(m).repair() for m in ('onnxruntime', 'onnxruntime_genai')) if r))" 2>/dev/null)
  if [ -n "$fix" ]; then
    fix=$(echo "$fix" | sed "s#pip uninstall#$PY -m pip uninstall#g; s#pip install#$PY -m pip install $PIP_SOURCES#g")
    step repair -- bash -c "$fix"; fi
}

round3() {   # issue 25 (see the header)
  begin_mode round3 || return 1
  echo "== $(date -u +%H:%M:%S) round 3"; nvidia-smi 2>/dev/null | head -12; df -h "$WORK" | tail -1; free -g | head -2
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl $(ls "$REPO"/whl/*.whl 2>/dev/null) || return 1
  local libs; libs=$(find /opt /usr -name 'libcublas.so.13' -o -name 'libcudart.so.13' -o -name 'libcurand.so.10' \
       -o -name 'libcufft.so.12' -o -name 'libcudnn.so.9' 2>/dev/null | xargs -n1 dirname | sort -u | paste -sd:)
  export PYTHONPATH=/tmp/site:$REPO:$REPO/tools LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  "$PY" -c "import onnxruntime as o, onnxruntime_genai as g, mistral_onnx; print(o.__version__, o.get_available_providers(), g.__version__, mistral_onnx.__file__)"
  mkdir -p "$RUN/round3"
  "$PY" "$REPO/tools/gpu_round3.py" --config "$CONFIG" --work "$WORK" --out "$RUN/round3" --deadline "$DEADLINE" ${GPU_RUN_ROUND3_ARGS:-}
  echo "== $(date -u +%H:%M:%S) done"; touch "$RUN/done"
}

blocks() {   # see the header
  begin_mode blocks || return 1
  install_and_repair
  local S=$WORK/b256src
  "$PY" -c "import sys; from mistral_onnx.bench import random_mistral; random_mistral(sys.argv[1], {'hidden_size': 256, 'intermediate_size': 512, 'num_hidden_layers': 2, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'vocab_size': 32000})" "$S"
  step export_cuda_default -- mistral-onnx export "$S" "$WORK/cuda_int4" --precision int4 --ep cuda --overwrite
  step generate_cuda_default -- mistral-onnx generate "$WORK/cuda_int4" "hello" --raw --max-new-tokens 8
  step export_cpu_default -- mistral-onnx export "$S" "$WORK/cpu_int4" --precision int4 --overwrite
  step generate_cpu_export_on_cuda -- mistral-onnx generate "$WORK/cpu_int4" "hello" --raw --ep cuda
  step export_cuda_256 -- mistral-onnx export "$S" "$WORK/cuda_256" --precision int4 --ep cuda --int4-block-size 256
  "$PY" - "$WORK" <<'PYEOF'
import onnx, sys
for f in ("cuda_int4", "cpu_int4"):
    try:
        m = onnx.load(f"{sys.argv[1]}/{f}/model.onnx", load_external_data=False)
        print(f, "MatMulNBits block sizes:", sorted({a.i for n in m.graph.node if n.op_type == "MatMulNBits" for a in n.attribute if a.name == "block_size"}))
    except Exception as e: print(f, "unreadable:", e)
print("cuda_256 exists:", __import__("os").path.exists(f"{sys.argv[1]}/cuda_256"))
PYEOF
  echo "== $(date -u +%H:%M:%S) done"; touch "$RUN/done"
}

step() {   # step NAME [--out-dir DIR] -- COMMAND...   (results in $RES)
  if [ "$DEADLINE" -gt 0 ] && [ "$(date +%s)" -gt "$DEADLINE" ]; then
    echo "== skipped $1: past the run's deadline (device time)"; "$PY" - "$RES" "$1" <<'PYEOF'
import json, sys; from pathlib import Path
p = Path(sys.argv[1]); d = json.loads(p.read_text()) if p.exists() else {}
d.setdefault("cli_run", {}).setdefault("skipped", []).append(sys.argv[2]); p.write_text(json.dumps(d, indent=1))
PYEOF
    return 99; fi
  local name=$1; shift
  "$PY" "$REPO/tools/gpu_bench.py" step "$name" --results "$RES" --watch-dir "$WORK" "$@"
}

window() {   # issue 12: the builder's window-long ("ring") cache against the default full-length one, same weights
  local SRC=$1 p=$2 ring=$WORK/${2}_ring
  if mistral-onnx export --help 2>/dev/null | grep -q -- '--window-cache'; then
    step export_${p}_ring --out-dir "$ring" -- mistral-onnx export "$SRC" "$ring" --precision $p --ep $EP --overwrite --window-cache ring
  else
    step export_${p}_ring --out-dir "$ring" -- "$PY" -c "import sys; from mistral_onnx.export import export; export(sys.argv[1], sys.argv[2], precision=sys.argv[3], execution_provider=sys.argv[4], overwrite=True, window_cache='ring')" "$SRC" "$ring" $p $EP
  fi
  if [ -f "$ring/genai_config.json" ]; then
    step validate_${p}_ring_long -- mistral-onnx validate "$SRC" "$ring" --sequence "${LONG%% *}" --runner ortgenai --json
    step window_ring_vs_full -- "$PY" "$REPO/tools/gpu_window.py" "$WORK/$p" "$ring" $EP 128 256 5
  fi
  rm -rf "$ring"          # 14.5 GB of disk back (the machine has 64 GiB)
}

helpers() {   # the memory (issue 17) and performance (issue 16) scripts, if they exist; results in $RUN/helpers.json
  local SRC=$1 left RES=$RUN/helpers.json
  echo "== $(date -u +%H:%M:%S) helpers (CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-all})"
  if [ -f "$REPO/tools/gpu_memory.py" ]; then
    mkdir -p "$RUN/mem"
    left=$MEM_BUDGET
    if [ "$DEADLINE" -gt 0 ]; then left=$(( DEADLINE - $(date +%s) - 30 )); [ "$left" -gt "$MEM_BUDGET" ] && left=$MEM_BUDGET; fi
    if [ "$left" -gt 60 ]; then
      step gpu_memory -- timeout $((left + 40)) "$PY" "$REPO/tools/gpu_memory.py" --src "$SRC" --exports "$WORK" --out "$RUN/mem" --budget "$left"
    else echo "== skipped gpu_memory: $left s left before the deadline"; fi
    for j in "$RUN"/mem/*.json; do [ -f "$j" ] && "$PY" "$REPO/tools/gpu_bench.py" merge --results "$RES" --key memory "$j"; done
  fi
  if [ -f "$REPO/tools/gpu_perf.py" ]; then
    mkdir -p "$RUN/perf"; left=$PERF_BUDGET
    if [ "$DEADLINE" -gt 0 ]; then left=$(( DEADLINE - $(date +%s) - 60 )); [ "$left" -gt "$PERF_BUDGET" ] && left=$PERF_BUDGET; fi
    if [ "$left" -gt 30 ]; then
      step gpu_perf -- timeout $((left + 90)) "$PY" "$REPO/tools/gpu_perf.py" --src "$SRC" --exports "$WORK" --out "$RUN/perf" --budget-s "$left"
    else echo "== skipped gpu_perf: $left s left before the deadline"; fi
    for j in "$RUN"/perf/*.json; do [ -f "$j" ] && "$PY" "$REPO/tools/gpu_bench.py" merge --results "$RES" --key perf "$j"; done
  fi
  return 0
}

case "${1:-}" in
  prepare) prepare ;;
  receive) receive ;;
  start) start ;;
  launch) launch ;;
  poll) poll "${2:-540}" ;;
  steps) steps ;;
  round2) GPU_RUN_ROUND3_ARGS=${GPU_RUN_ROUND3_ARGS:---exports fp16,int4,int4_b32 --peers hf_dynamic} round3 ;;   # round 2's study, as a configuration of round 3
  round3) round3 ;;
  blocks) blocks ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
