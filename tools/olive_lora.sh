#!/usr/bin/env bash
# What Olive 0.13 (the olive profile, .venv-olive, with peft added for --adapter_path) does with the embedded model and a
# peft LoRA; the log is nbs/tutorials/olive_lora.log, which the LoRA tutorial prints. Usage: bash tools/olive_lora.sh
# (minutes; needs .venv-olive with peft, and the main .venv for mistral_onnx).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD; OL=${OLIVE:-$ROOT/.venv-olive/bin/olive}; PY=${PYTHON:-$ROOT/.venv/bin/python}   # OLIVE/PYTHON: venvs elsewhere
[ -x "$OL" ] && [ -x "$PY" ] || { echo "needs $OL and $PY (bash tools/test_olive.sh makes .venv-olive; add peft to it)"; exit 2; }
LOG=$ROOT/nbs/tutorials/olive_lora.log; W=$(mktemp -d); export PYTHONPATH=$ROOT
EMB=$ROOT/mistral_onnx/embedded; AD=$ROOT/mistral_onnx/embedded/adapters/echo
{
echo "# olive $($OL --version 2>/dev/null || $ROOT/.venv-olive/bin/pip show olive-ai 2>/dev/null | grep ^Version), $(date -u +%F), adapter: shipped echo (peft, rank 8, all projections)"
step() { local name=$1; shift; echo; echo "## $name"; echo "\$ olive $*"; timeout 600 "$OL" "$@" > "$W/$name.log" 2>&1; local rc=$?
         echo "exit $rc"; grep -v "Warning\|warnings.warn\|^\s*$" "$W/$name.log" | tail -6; ls "$W/$name" 2>/dev/null | head -8; }
step convert-adapters convert-adapters --adapter_path "$AD" --output_path "$W/convert-adapters/echo.onnx_adapter"
step capture-model-builder capture-onnx-graph -m "$EMB" --adapter_path "$AD" --use_model_builder -o "$W/capture-model-builder"
step auto-opt auto-opt -m "$EMB" --adapter_path "$AD" --device cpu --provider CPUExecutionProvider --precision fp32 -o "$W/auto-opt"
echo; echo "## Olive's convert-adapters file on mistral_onnx's graph (export --adapter)"
$PY - "$W" "$AD" <<'PY'
import sys, numpy as np, onnxruntime as ort, onnxruntime_genai as og
from pathlib import Path
from mistral_onnx.export import export
w, ad = Path(sys.argv[1]), sys.argv[2]
f = w/"convert-adapters"/"echo.onnx_adapter"
if not f.exists(): print("no file from convert-adapters"); sys.exit()
names = sorted(ort.AdapterFormat.read_adapter(str(f)).get_parameters())
out = export("embedded", w/"ours", adapter={"echo": ad}).out
ours = sorted(ort.AdapterFormat.read_adapter(str(out/"echo.onnx_adapter")).get_parameters())
print(f"Olive names ({len(names)}): {names[0]} ...; ours ({len(ours)}): {ours[0]} ...")
m = og.Model(str(out)); a = og.Adapters(m); a.load(str(f), "olive")
g = og.Generator(m, (lambda p: (p.set_search_options(max_length=20), p)[1])(og.GeneratorParams(m))); g.set_active_adapter(a, "olive")
try: g.append_tokens(np.array([[1, 2, 3]], dtype=np.int32)); print("ran")
except Exception as e: print(f"ORT GenAI: {type(e).__name__}: {e}")
PY
} 2>&1 | sed -e "s|$ROOT|<repo>|g" -e "s|[^ \"]*/site-packages/|<olive venv>/lib/|g" | tee "$LOG"   # no machine paths in the committed log
rm -rf "$W"
