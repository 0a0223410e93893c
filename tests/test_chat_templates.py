"""Multi-turn chat through published Mistral chat templates (mistral_onnx/corpus/templates/*.jinja): onnxruntime-genai's
rendering (engine.chat_text / chat_ids, what OnnxLM and `serve` use) equals transformers' `apply_chat_template`, as text and ids."""
import json
from pathlib import Path
import pytest
import mistral_onnx

TEMPLATES = {p.stem: p.read_text() for p in (Path(mistral_onnx.__file__).parent/"corpus"/"templates").glob("*.jinja")}
CONVS = [[{"role": "user", "content": "reverse: abc"}],
         [{"role": "user", "content": "reverse: abc"}, {"role": "assistant", "content": "cba"}, {"role": "user", "content": "reverse: onnx"}],
         [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "Grüße 🙂"},
          {"role": "assistant", "content": " x y "}, {"role": "user", "content": "  two  spaces\n"}]]

@pytest.fixture(scope="module")
def tok():
    import onnxruntime_genai as og
    from transformers import AutoTokenizer
    from mistral_onnx.export import export
    import tempfile
    d = Path(tempfile.mkdtemp())
    out = export("embedded", d/"e").out
    yield out, og.Tokenizer(og.Model(str(out))), AutoTokenizer.from_pretrained(out)

@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("conv", range(len(CONVS)))
def test_published_template_renders_like_transformers(tok, name, conv):
    from mistral_onnx.engine import chat_text, chat_ids
    out, og_tok, hf = tok
    msgs, tpl = CONVS[conv], TEMPLATES[name]
    ref = hf.apply_chat_template(msgs, chat_template=tpl, tokenize=False, add_generation_prompt=True)
    assert chat_text(og_tok, msgs, template=tpl) == ref
    assert chat_ids(og_tok, out, msgs, template=tpl) == hf(ref, add_special_tokens=False)["input_ids"]

@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_published_template_refuses_out_of_order_roles(tok, name):
    from mistral_onnx.engine import chat_text, GenerationError
    out, og_tok, hf = tok
    with pytest.raises(GenerationError, match="alternate"):
        chat_text(og_tok, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], template=TEMPLATES[name])
