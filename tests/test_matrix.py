"""The compatibility matrix, tested: every route in the installed profile.

A route that `doctor` says works here must export the embedded model, pass the KV check, and give the same greedy
answers as PyTorch through ONNX Runtime GenAI on held-out prompts. A route that doctor says cannot work must raise
`ExportError`; the routes that ask `doctor.require` first (the Olive and Optimum routes) must raise it before any
work, with doctor's own explanation. Each outcome is written to nbs/compat_matrix.json (route x profile), which the
docs (nbs/11_doctor.ipynb) render.

Run in the current profile by `tools/test.sh`, in the olive profile by `tools/test_olive.sh`.
"""
import re, time
import pytest
from mistral_onnx.export import export, ExportError, ROUTES, versions
from mistral_onnx.doctor import route_status, profile, record_result
from mistral_onnx.check import check_kv
from mistral_onnx.models import load_torch, torch_answers, task_words, task_prompt, task_score
from mistral_onnx.generate import OnnxLM

GATED = ("optimum", "olive", "olive-optimum", "olive-onnx")   # routes that call doctor.require before any work
N_PROMPTS = 30
PROFILE = profile()

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
def test_route(route, reference, tmp_path):
    st = route_status(route)
    vers = versions()
    if not st.works:
        t0 = time.time()
        with pytest.raises(ExportError) as e:
            export("embedded", tmp_path/route, route=route)
        secs = round(time.time() - t0, 1)
        record_result(PROFILE, route, {"result": "fail", "expected": "cannot work", "detail": _first_line(e.value), "fail_s": secs}, vers)
        assert not (tmp_path/route).exists()
        if route in GATED: assert st.problems[0] in str(e.value), str(e.value)   # doctor's words, before any work
        else: assert "doctor" in str(e.value), str(e.value)                    # the route's own error points to doctor
        return
    words, prompts, ref = reference
    try:
        r = export("embedded", tmp_path/route, route=route)
    except ExportError as e:
        record_result(PROFILE, route, {"result": "fail", "expected": "works", "detail": "doctor says it works, but: " + _first_line(e)}, vers)
        raise
    rep = check_kv(r.out)
    answers = OnnxLM(r.out).answers(prompts)
    same = sum(a.strip() == b.strip() for a, b in zip(answers, ref))
    ok = rep.ok and same == len(prompts)
    detail = (f"KV check {'PASS' if rep.ok else 'FAIL'}, {same}/{len(prompts)} greedy answers equal to PyTorch, "
              f"accuracy {task_score(words, answers):.0%}")
    record_result(PROFILE, route, {"result": "pass" if ok else "fail", "expected": "works", "detail": detail,
                                   "export_s": r.report["seconds"], "bytes": r.report["bytes"]}, vers)
    assert rep.ok, str(rep)
    assert same == len(prompts), [(p, a, b) for p, a, b in zip(prompts, answers, ref) if a.strip() != b.strip()]
