#!/usr/bin/env bash
# Record the compatibility matrix that ships with the package (mistral_onnx/compat_matrix.json, rendered on the
# Compatibility page): run tests/test_matrix.py in the current profile (.venv) and in the olive profile (.venv-olive),
# each writing its column into the package file. Ordinary test runs (tools/test.sh) write to a temporary file instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export MISTRAL_ONNX_RECORD_MATRIX="$PWD/mistral_onnx/compat_matrix.json"
[ -x .venv/bin/python ] || { echo "run bash tools/test.sh once first (it creates .venv)"; exit 2; }
.venv/bin/python -m pytest tests/test_matrix.py -q -p no:cacheprovider
[ -x .venv-olive/bin/python ] || bash tools/test_olive.sh
OLIVE_DISABLE_TELEMETRY=1 .venv-olive/bin/python -m pytest tests/test_matrix.py -q -p no:cacheprovider
echo "recorded: $MISTRAL_ONNX_RECORD_MATRIX (commit it)"
