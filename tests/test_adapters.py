"""LoRA adapters end to end (issue 23): the shipped adapters through ORT GenAI answer as peft does, the base model is
unchanged without one, one loaded model switches between them per request, validate passes per adapter and fails a
mismatched one, and bad adapters are refused before any work with the problem and the fix."""
import json, shutil
from pathlib import Path
import numpy as np
import pytest
from conftest import cli

pytest.importorskip("peft")
from mistral_onnx.adapters import shipped_adapters, adapter_score, task_answer, random_adapter, read_adapter, ADAPTER_TASKS
from mistral_onnx.models import EMBEDDED_DIR, task_words, task_prompt, torch_answers, load_torch

SHIPPED = shipped_adapters()
WORDS = task_words(24, "test", seed=7)      # held out: never trained on (the split is by a hash of the word)
PROMPTS = [task_prompt(w) for w in WORDS]

def test_both_adapters_ship():
    assert set(SHIPPED) == set(ADAPTER_TASKS) == {"echo", "rotate"}
    for p in SHIPPED.values():
        assert (p/"adapter_config.json").exists() and (p/"adapter_model.safetensors").exists()
        assert (p/"adapter_model.safetensors").stat().st_size < 1_000_000          # shipped small

@pytest.fixture(scope="module")
def peft_answers():
    "Greedy answers of transformers + peft (the reference): the base model and each shipped adapter."
    from peft import PeftModel
    out = {None: torch_answers(*load_torch(), PROMPTS)}
    for name, d in SHIPPED.items():
        m, tok = load_torch()
        out[name] = torch_answers(PeftModel.from_pretrained(m, str(d)).eval(), tok, PROMPTS)
    return out

@pytest.fixture(scope="module")
def switch(tmp_path_factory):
    "The embedded model exported at fp32 with both shipped adapters as .onnx_adapter files."
    d = tmp_path_factory.mktemp("lora")
    r = cli("export", "embedded", d/"f", *[w for n, p in SHIPPED.items() for w in ("--adapter", f"{n}={p}")])
    assert r.returncode == 0, r.stderr
    return d/"f"

def test_the_adapters_change_the_answers(peft_answers):
    "Each adapter answers its own task (checked by the task's rule, not by the code under test) and not the base's."
    for name in SHIPPED:
        assert adapter_score(WORDS, peft_answers[name], name) >= 0.8, (name, peft_answers[name][:4])
        assert adapter_score(WORDS, peft_answers[name], None) <= 0.2
    assert adapter_score(WORDS, peft_answers[None], None) >= 0.9

def test_ortgenai_answers_equal_peft_per_adapter_and_base(switch, peft_answers):
    from mistral_onnx.generate import OnnxLM
    lm = OnnxLM(switch)
    assert [a.strip() for a in lm.answers(PROMPTS)] == [a.strip() for a in peft_answers[None]]   # no adapter: the base model's answers (og keeps the leading space)
    for name in SHIPPED:
        got = lm.answers(PROMPTS, adapter=name)
        assert [g.strip() for g in got] == [a.strip() for a in peft_answers[name]], name
    assert OnnxLM(switch, adapter="echo").answers(PROMPTS[:4]) == lm.answers(PROMPTS[:4], adapter="echo")

def test_switching_between_requests_on_one_loaded_model(switch, peft_answers):
    "Interleaved requests on one OnnxLM: each gets its adapter's answer, and the base between them is untouched."
    from mistral_onnx.generate import OnnxLM
    lm = OnnxLM(switch)
    order = ["echo", None, "rotate", "echo", "base", "rotate", None]
    for i, name in enumerate(order):
        k = i % len(PROMPTS)
        want = peft_answers[None if name == "base" else name][k]
        assert lm.generate(PROMPTS[k], max_new_tokens=16, adapter=name).strip() == want.strip(), (i, name)
    assert sorted(lm.session.adapter_names) == sorted(SHIPPED)

def test_a_batch_is_answered_with_the_adapter(switch, peft_answers):
    "generate([...]) with an adapter (given to OnnxLM or per call) answers each prompt with it, never silently with the base model."
    from mistral_onnx.generate import OnnxLM, GenerationError
    k = 4
    got = OnnxLM(switch, adapter="echo").generate(PROMPTS[:k], max_new_tokens=16)
    assert [g.strip() for g in got] == [a.strip() for a in peft_answers["echo"][:k]]
    got = OnnxLM(switch).generate(PROMPTS[:k], max_new_tokens=16, adapter="rotate")
    assert [g.strip() for g in got] == [a.strip() for a in peft_answers["rotate"][:k]]
    with pytest.raises(GenerationError, match="base model only"):   # og.Engine's options cannot run an adapter: said, not ignored
        OnnxLM(switch, adapter="echo").generate(PROMPTS[0], max_new_tokens=8, stop=["x"])

def test_generate_cli_adapter(switch, peft_answers):
    for name in (None, *SHIPPED):
        r = cli("generate", switch, PROMPTS[1], "--max-new-tokens", "16", *(["--adapter", name] if name else []))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == peft_answers[name][1].strip(), (name, r.stdout)
    r = cli("generate", switch, PROMPTS[0], "--adapter", "nosuch")
    assert r.returncode == 2 and "nosuch" in r.stderr and "echo" in r.stderr and "Fix:" in r.stderr and not r.stdout.strip()

def test_check_lists_and_checks_the_adapters(switch, tmp_path):
    r = cli("check", switch)
    assert r.returncode == 0 and "adapter echo" in r.stdout and "adapter rotate" in r.stdout, r.stdout
    bad = tmp_path/"bad"; shutil.copytree(switch, bad)
    shutil.copy(bad/"echo.onnx_adapter", bad/"stray.onnx_adapter")           # a file the report does not list
    import onnxruntime as ort                                                  # and an adapter whose rank does not pair
    ps = {k: v.numpy() for k, v in ort.AdapterFormat.read_adapter(str(bad/"rotate.onnx_adapter")).get_parameters().items()}
    k = next(k for k in ps if ".lora_B." in k); ps[k] = np.zeros((ps[k].shape[0] + 1, ps[k].shape[1]), np.float32)
    f = ort.AdapterFormat(); f.set_adapter_version(1); f.set_model_version(1)
    f.set_parameters({n: ort.OrtValue.ortvalue_from_numpy(v) for n, v in ps.items()}); f.export_adapter(str(bad/"rotate.onnx_adapter"))
    r = cli("check", bad)
    assert r.returncode == 1 and "adapter stray" in r.stdout and "rank" in r.stdout, r.stdout

def test_validate_passes_per_adapter_and_fails_a_mismatched_one(switch):
    from mistral_onnx.validate import validate
    seqs = [(3, 12), (20, 6)]                                                  # one past the window of 16
    assert validate("embedded", switch, sequences=seqs).ok                     # the base against the base
    for name in SHIPPED:
        r = validate("embedded", switch, sequences=seqs, adapter=name)
        assert r.ok, str(r)
        assert {p.runner for p in r.phases} == {"onnxruntime", "ortgenai"} and all(p.count for p in r.phases)
    wrong = validate("embedded", switch, sequences=seqs, adapter=f"echo={SHIPPED['rotate']}")   # echo's file, rotate's peft weights
    assert not wrong.ok and len(wrong.failures) == len(wrong.phases)

def test_validate_cli_adapter(switch):
    r = cli("validate", "embedded", switch, "--adapter", "rotate", "--sequence", "4,8")
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    r = cli("validate", "embedded", switch, "--adapter", f"rotate={SHIPPED['echo']}", "--sequence", "4,8")
    assert r.returncode == 1 and "FAIL" in r.stdout

def test_int4_base_full_precision_adapters(tmp_path, peft_answers):
    r = cli("export", "embedded", tmp_path/"q", "--precision", "int4", "--adapter", f"echo={SHIPPED['echo']}")
    assert r.returncode == 0, r.stderr
    import onnx, onnxruntime as ort
    g = onnx.load(str(tmp_path/"q"/"model.onnx"), load_external_data=False)
    assert any(n.op_type == "MatMulNBits" for n in g.graph.node)                # the base is int4
    ps = ort.AdapterFormat.read_adapter(str(tmp_path/"q"/"echo.onnx_adapter")).get_parameters()
    assert {str(v.numpy().dtype) for v in ps.values()} == {"float32"}           # the adapter is not
    from mistral_onnx.generate import OnnxLM
    got = OnnxLM(tmp_path/"q").answers(PROMPTS, adapter="echo")
    assert adapter_score(WORDS, got, "echo") >= 0.75, got[:4]

def test_merge_bakes_one_adapter_in(tmp_path, peft_answers):
    r = cli("export", "embedded", tmp_path/"m", "--adapter", f"rotate={SHIPPED['rotate']}", "--merge")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path/"m"/"export_report.json").read_text())
    assert rep["adapters"]["mode"] == "merged" and "--merge" in rep["command"]
    from mistral_onnx.adapters import lora_inputs
    assert lora_inputs(tmp_path/"m") == {} and not list((tmp_path/"m").glob("*.onnx_adapter"))
    from mistral_onnx.generate import OnnxLM
    lm = OnnxLM(tmp_path/"m")
    assert [a.strip() for a in lm.answers(PROMPTS)] == [a.strip() for a in peft_answers["rotate"]]
    assert lm.answers(PROMPTS[:2], adapter="rotate") == lm.answers(PROMPTS[:2])
    r = cli("generate", tmp_path/"m", PROMPTS[0], "--adapter", "echo")
    assert r.returncode == 2 and "merged" in r.stderr

# --- refusals: each before any work, exit 2, the problem and the fix, nothing written ---
@pytest.fixture(scope="module")
def bad_adapters(tmp_path_factory):
    "Variants of a random peft adapter of the embedded model, each wrong in one way."
    import torch, safetensors.torch as st
    d = tmp_path_factory.mktemp("bad")
    good = random_adapter(EMBEDDED_DIR, d/"good")
    def variant(name, cfg=None, tensors=None):
        v = d/name; shutil.copytree(good, v)
        if cfg: (v/"adapter_config.json").write_text(json.dumps({**json.loads((good/"adapter_config.json").read_text()), **cfg}))
        if tensors: st.save_file(tensors(st.load_file(str(good/"adapter_model.safetensors"))), str(v/"adapter_model.safetensors"))
        return v
    return {"good": good,
            "other_base": variant("other", tensors=lambda t: {k: (torch.zeros(576, 4) if "q_proj.lora_B" in k else v) for k, v in t.items()}),
            "unknown_target": variant("unknown", {"target_modules": ["q_proj", "v_proj", "down_proj", "lm_head"]}),
            "missing_target": variant("missing", {"target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"]}),
            "config_rank": variant("rank", {"r": 16}),
            "config_targets": variant("targets", {"target_modules": ["q_proj", "down_proj"]})}

@pytest.mark.parametrize("case,words", [("other_base", "another base model"), ("unknown_target", "no LoRA slot"),
                                        ("missing_target", "hold no tensors"), ("config_rank", "disagrees with its weights"),
                                        ("config_targets", "disagrees with its weights")])
def test_bad_adapter_refused_before_work(tmp_path, bad_adapters, case, words):
    out = tmp_path/"out"
    r = cli("export", "embedded", out, "--adapter", f"x={bad_adapters[case]}")
    assert r.returncode == 2, r.stdout + r.stderr
    assert words in r.stderr and "Fix:" in r.stderr, r.stderr
    assert "model builder started" not in r.stdout + r.stderr                  # refused in preflight
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())   # nothing half-written

def test_a_name_used_twice_is_refused(tmp_path, bad_adapters):
    g = bad_adapters["good"]
    r = cli("export", "embedded", tmp_path/"out", "--adapter", f"a={g}", "--adapter", f"a={SHIPPED['echo']}")
    assert r.returncode == 2 and "given twice" in r.stderr and "Fix:" in r.stderr and not (tmp_path/"out").exists()
    from mistral_onnx.adapters import read_adapters, AdapterError
    from mistral_onnx.spec import ModelSpec
    with pytest.raises(AdapterError, match="used twice"): read_adapters([("a", g), ("a", g)], ModelSpec.from_pretrained(EMBEDDED_DIR))

def test_merge_needs_exactly_one_adapter(tmp_path):
    r = cli("export", "embedded", tmp_path/"out", "--merge", *[w for n, p in SHIPPED.items() for w in ("--adapter", f"{n}={p}")])
    assert r.returncode == 2 and "exactly one adapter" in r.stderr and not (tmp_path/"out").exists()

def test_adapters_only_for_builder_graphs(tmp_path, bad_adapters):
    "A graph without the builder's linear-layer names has nowhere for the slots: refused by name, not a crash."
    from mistral_onnx.adapters import add_lora_inputs, AdapterError
    from mistral_onnx.spec import ModelSpec
    import onnx
    from onnx import helper, TensorProto
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"], name="/other/MatMul")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(g), str(tmp_path/"model.onnx"))
    with pytest.raises(AdapterError, match="builder route"): add_lora_inputs(tmp_path, ModelSpec.from_pretrained(EMBEDDED_DIR))

SMOL = Path("/work/cache/smollm2/hf-fp32")

@pytest.mark.slow
@pytest.mark.skipif(not (SMOL/"config.json").exists(), reason="SmolLM2-135M not converted here (the int4q helper's fixture writes it)")
def test_smollm2_random_lora_validates(tmp_path):
    "A real trained base (SmolLM2-135M) with a random non-zero LoRA on every projection: validate passes with and without it."
    ad = random_adapter(SMOL, tmp_path/"rand", r=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), std=0.02)
    r = cli("export", SMOL, tmp_path/"f", "--adapter", f"rand={ad}")
    assert r.returncode == 0, r.stderr
    from mistral_onnx.validate import validate
    seqs = [(8, 8)]
    assert validate(SMOL, tmp_path/"f", sequences=seqs).ok
    rep = validate(SMOL, tmp_path/"f", sequences=seqs, adapter="rand")
    assert rep.ok, str(rep)
