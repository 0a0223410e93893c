"""Issue 21 point 3: the model-family record's pad rule, end to end. A Qwen2 checkpoint whose config.json names no
pad_token_id (as Qwen2.5 publishes) and whose tokenizer has no pad token in its vocabulary: the model builder alone
writes pad_token_id = vocab_size into genai_config and a batch of unequal prompts fails in ORT GenAI's embedding
Gather (measured with onnxruntime-genai 0.18: 'indices element out of data bounds, idx=416'). The export writes
the family's rule (the first eos id) instead, a batch of two unequal prompts generates, and `check` fails a folder
whose pad id is outside the vocabulary."""
import json
import pytest
from mistral_onnx.published import corpus_model
from mistral_onnx.export import export
from mistral_onnx.check import check_kv

@pytest.fixture(scope="module")
def qwen_no_pad(tmp_path_factory):
    d = tmp_path_factory.mktemp("qwen")
    src = corpus_model("Qwen2.5-0.5B", d/"src")
    tc = json.loads((src/"tokenizer_config.json").read_text()); tc.pop("pad_token", None)   # no pad token: the tokenizer adds one past the vocabulary
    (src/"tokenizer_config.json").write_text(json.dumps(tc))
    cfg = json.loads((src/"config.json").read_text())
    assert cfg["model_type"] == "qwen2" and cfg.get("pad_token_id") is None
    return src, cfg, export(str(src), d/"out")

def test_pad_inside_vocabulary(qwen_no_pad):
    src, cfg, r = qwen_no_pad
    g = json.loads((r.out/"genai_config.json").read_text())["model"]
    assert g["pad_token_id"] == cfg["eos_token_id"] and g["pad_token_id"] < cfg["vocab_size"], g

def test_batch_of_unequal_prompts_generates(qwen_no_pad):
    import onnxruntime_genai as og
    _, _, r = qwen_no_pad
    m = og.Model(str(r.out)); tok = og.Tokenizer(m)
    prompts = ["hello there my good friend", "a"]
    p = og.GeneratorParams(m); p.set_search_options(max_length=32, batch_size=2)
    gen = og.Generator(m, p)
    gen.append_tokens(tok.encode_batch(prompts))
    for _ in range(4): gen.generate_next_token()
    lens = [len(gen.get_sequence(i)) for i in range(2)]
    assert lens[0] == lens[1] and lens[0] >= len(tok.encode(prompts[0])) + 4

def test_check_fails_a_pad_outside_the_vocabulary(qwen_no_pad, tmp_path):
    import shutil
    _, cfg, r = qwen_no_pad
    bad = tmp_path/"bad"; shutil.copytree(r.out, bad)
    gp = bad/"genai_config.json"; g = json.loads(gp.read_text()); g["model"]["pad_token_id"] = cfg["vocab_size"]; gp.write_text(json.dumps(g))
    kv = check_kv(bad)
    assert not kv.ok and [f.what for f in kv.errors] == ["genai_config pad_token_id"], str(kv)
    assert check_kv(r.out).ok
