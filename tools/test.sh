#!/usr/bin/env bash
# README command 2: create or reuse .venv with the dev extra, then run every test
# (the notebooks through nbdev-test, then tests/ through pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
t0=$(date +%s)
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[cpu,dev,docs,gguf,lora,serve]"
echo "== notebooks (nbdev-test)"
.venv/bin/nbdev-test --n-workers 2
echo "== docs site (offline build + checks)"; .venv/bin/python tools/docs.py   # tests/test_docs.py then opens it in chromium
echo "== tests/ (pytest)"
.venv/bin/python -m pytest tests -q -p no:cacheprovider --junitxml=build/junit.xml "$@"   # the report feeds the reliability page's "last run" column when the docs are built after
echo "== olive profile (.venv-olive)"; bash tools/test_olive.sh
echo "== all tests passed in $(( $(date +%s) - t0 )) s"
