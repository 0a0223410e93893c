"""The compatibility matrix, tested: every route in the installed profile.

A route that `doctor` says works here must export the embedded model, pass the KV check, and give the same greedy
answers as PyTorch through ONNX Runtime GenAI on held-out prompts. A route that doctor says cannot work must raise
`ExportError`; the routes that ask `doctor.require` first (the Olive and Optimum routes) must raise it before any
work, with doctor's own explanation. Each outcome is recorded with `doctor.record_result`: into a temporary file in an
ordinary test run, and into the package's `mistral_onnx/compat_matrix.json` (which the docs render and which ships with
the package) only when MISTRAL_ONNX_RECORD_MATRIX names it: `bash tools/record_matrix.sh` does that in both profiles.

Run in the current profile by `tools/test.sh`, in the olive profile by `tools/test_olive.sh`.
"""
import os, re, time
from pathlib import Path
import pytest
from mistral_onnx.env import versions
from mistral_onnx.routes import ROUTES, ExportError, RouteUnavailable
from mistral_onnx.export import export
from mistral_onnx.doctor import profile, record_result, load_matrix
from mistral_onnx.models import load_torch, torch_answers, task_words, task_prompt, task_score
from mistral_onnx.generate import OnnxLM

N_PROMPTS = 30
PROFILE = profile()

@pytest.fixture(scope="module")
def matrix_file(tmp_path_factory):
    "Where this run records its cells: the package's file only when asked (tools/record_matrix.sh), else a temporary one."
    asked = os.environ.get("MISTRAL_ONNX_RECORD_MATRIX")
    return Path(asked) if asked else tmp_path_factory.mktemp("matrix")/"compat_matrix.json"

@pytest.fixture(scope="module")
def reference():
    "Held-out prompts and PyTorch's greedy answers to them."
    words = task_words(N_PROMPTS, split="test", seed=11)
    prompts = [task_prompt(w) for w in words]
    model, tok = load_torch("embedded")
    return words, prompts, torch_answers(model, tok, prompts)

def _first_line(e):
    "The error in one line, terminal colours removed, as the matrix shows it."
    return f"{type(e).__name__}: " + " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split())[:400]

@pytest.mark.parametrize("route", list(ROUTES))
def test_route(route, reference, tmp_path, matrix_file):
    st = ROUTES[route].status()
    vers = versions()
    if not st.works:
        t0 = time.time()
        with pytest.raises(RouteUnavailable) as e:      # every route is refused before any work, in doctor's words
            export("embedded", tmp_path/route, route=route)
        secs = round(time.time() - t0, 1)
        record_result(PROFILE, route, {"result": "fail", "expected": "cannot work", "detail": _first_line(e.value), "fail_s": secs}, vers, matrix_file)
        assert not (tmp_path/route).exists()
        assert st.problems[0] in str(e.value), str(e.value)
        assert load_matrix(matrix_file)["profiles"][PROFILE]["routes"][route]["result"] == "fail"
        return
    words, prompts, ref = reference
    try:
        r = export("embedded", tmp_path/route, route=route)
    except ExportError as e:
        record_result(PROFILE, route, {"result": "fail", "expected": "works", "detail": "doctor says it works, but: " + _first_line(e)}, vers, matrix_file)
        raise
    rep = r.kv
    answers = OnnxLM(r.out).answers(prompts)
    same = sum(a.strip() == b.strip() for a, b in zip(answers, ref))
    ok = rep.ok and same == len(prompts)
    detail = (f"KV check {'PASS' if rep.ok else 'FAIL'}, {same}/{len(prompts)} greedy answers equal to PyTorch, "
              f"accuracy {task_score(words, answers):.0%}")
    record_result(PROFILE, route, {"result": "pass" if ok else "fail", "expected": "works", "detail": detail,
                                   "export_s": r.report["seconds"], "bytes": r.report["bytes"]}, vers, matrix_file)
    assert rep.ok, str(rep)
    assert same == len(prompts), [(p, a, b) for p, a, b in zip(prompts, answers, ref) if a.strip() != b.strip()]
