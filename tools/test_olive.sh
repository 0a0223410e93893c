#!/usr/bin/env bash
# The olive profile: create or reuse .venv-olive (python3.11, `pip install -e ".[olive,dev]"`: Olive 0.13,
# onnxruntime-genai 0.14.1, transformers 4.57, optimum-onnx 0.1.0), then run the olive-profile tests there:
# the compatibility matrix (tests/test_matrix.py; `bash tools/record_matrix.sh` records it into the package) and Olive's
# failure modes (tests/test_olive_*.py). tools/test.sh calls this at its end.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
t0=$(date +%s)
if [ ! -x .venv-olive/bin/python ]; then "$PY" -m venv .venv-olive; fi
.venv-olive/bin/python -m pip install -q --upgrade pip
.venv-olive/bin/python -m pip install -q -c constraints.txt -e ".[olive,dev]"
echo "== olive profile: mistral-onnx doctor"
.venv-olive/bin/mistral-onnx doctor
echo "== olive profile: notebooks 03b, 11, howto/olive_seed (nbdev-test)"
for nb in nbs/03b_olive_routes.ipynb nbs/11_doctor.ipynb nbs/howto/olive_seed.ipynb; do .venv-olive/bin/nbdev-test "$nb"; done
echo "== olive profile: tests (pytest)"
OLIVE_DISABLE_TELEMETRY=1 .venv-olive/bin/python -m pytest tests/test_matrix.py tests/test_olive_*.py -q -p no:cacheprovider "$@"
echo "== olive profile passed in $(( $(date +%s) - t0 )) s"
