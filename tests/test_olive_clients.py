"""Optimum's own loader on our Optimum-route outputs (issue 12, item 4): `ORTModelForCausalLM.from_pretrained(out)`
must load what `export(..., route="optimum"|"olive-optimum")` writes and answer as PyTorch does.

Runs in the olive profile (`bash tools/test_olive.sh`, which collects tests/test_olive_*.py); skipped where Optimum
is not installed, with the reason.
"""
import pytest

optimum_ort = pytest.importorskip("optimum.onnxruntime", reason="Optimum (optimum-onnx) is only in the olive profile: bash tools/test_olive.sh")
pytestmark = pytest.mark.olive

PROMPTS = ["reverse: mistral", "reverse: onnxruntime", "reverse: dog"]


@pytest.mark.parametrize("route", ["optimum", "olive-optimum"])
def test_optimum_loads_our_output(tmp_path, route):
    import torch
    from transformers import AutoTokenizer
    from mistral_onnx.export import export
    from mistral_onnx.models import load_torch, chat_ids, torch_answers
    out = tmp_path/route
    export("embedded", out, route=route)
    for f in ("config.json", "generation_config.json"):
        assert (out/f).exists(), f"{route} output lacks {f}: ORTModelForCausalLM cannot infer the model's library without it"
    model = optimum_ort.ORTModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ref_model, ref_tok = load_torch("embedded")
    want = torch_answers(ref_model, ref_tok, PROMPTS, max_new_tokens=16)
    got = []
    for p in PROMPTS:
        ids = torch.tensor([chat_ids(tok, p)])
        y = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)[0, ids.shape[1]:].tolist()
        if tok.eos_token_id in y: y = y[:y.index(tok.eos_token_id)]
        got.append(tok.decode(y, skip_special_tokens=True))
    assert got == want, (got, want)
    assert [a.strip() for a in got] == [p.split()[-1][::-1] for p in PROMPTS]
