"""`diagnose --write-fixed` writes a workflow config that Olive runs (olive profile: `bash tools/test_olive.sh`): the corrected
io_config is the one the olive-onnx route offers (`olive_io.corrected_io_config`), and the graph Olive exports from it takes
the model's real cache shape."""
import json
import numpy as np
import pytest
from conftest import cli
from mistral_onnx.routes import ROUTES

pytestmark = [pytest.mark.olive,
              pytest.mark.skipif(not ROUTES["olive-onnx"].status().works, reason="needs the olive profile: bash tools/test_olive.sh")]

from test_olive_routes import GQA_BLIND   # the GQA-blind io_config a user writes (kv_cache=true)

def test_write_fixed_runs_in_olive(tmp_path):
    import onnxruntime as ort
    from mistral_onnx.models import resolve_source
    from mistral_onnx.spec import ModelSpec
    from mistral_onnx.olive_routes import olive_workflow, stage_source, run_olive
    src = resolve_source("embedded"); spec = ModelSpec.from_pretrained(src)
    work = tmp_path/"work"; work.mkdir()
    wf = olive_workflow(stage_source(src, work), {"convert": {"type": "OnnxConversion", "use_dynamo_exporter": True}}, work)
    wf["input_model"]["io_config"] = GQA_BLIND
    (tmp_path/"wf.json").write_text(json.dumps(wf))
    p = cli("diagnose", tmp_path/"wf.json", "--write-fixed", tmp_path/"fixed.json")
    assert p.returncode == 1 and "(num_attention_heads)" in p.stdout, p.stdout + p.stderr
    fixed = json.loads((tmp_path/"fixed.json").read_text())
    assert cli("diagnose", tmp_path/"fixed.json").returncode == 0
    model = run_olive(fixed, work, log=lambda s: None, progress=lambda *a: None)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    past = 3
    feeds = {"input_ids": np.array([[5]], np.int64), "attention_mask": np.ones((1, past + 1), np.int64)}
    if "position_ids" in names: feeds["position_ids"] = np.array([[past]], np.int64)
    feeds.update({n: np.zeros(spec.kv_shape(1, past), np.float32) for n in spec.kv_names("past")})   # the model's real cache shape
    logits = sess.run(None, {k: v for k, v in feeds.items() if k in names})[0]
    assert logits.shape[-1] == spec.vocab_size
