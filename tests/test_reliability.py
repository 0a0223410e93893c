"""Reliability matrix (issues 8 and 14): bad inputs, interrupted work, models we should not trust.

One test per case, through the CLI (a subprocess, as a user runs it) and the Python API. Every failing case asserts
(1) a non-zero exit or a named exception, (2) a message that names the problem and the fix, (3) no output folder that
looks finished and no `.NAME.partial-*`, `.NAME.old-*` or `.NAME.lock` left beside it, and (4) for export cases, that
the user's source folder hashes the same before and after.
"""
import ctypes, errno, hashlib, json, os, shutil, signal, socket, subprocess, sys, threading, time
from pathlib import Path
import pytest
from conftest import cli, BIN

from mistral_onnx.models import EMBEDDED_DIR, SourceError, resolve_source, task_prompt, load_torch
from mistral_onnx.spec import SpecError
from mistral_onnx.export import export, ExportError, Cancelled
from mistral_onnx.routes import ROUTES, Route, register, check_provider
from mistral_onnx.check import check_kv, CheckError
from mistral_onnx.generate import OnnxLM, GenerationError

from mistral_onnx.env import MistralOnnxError
KNOWN = MistralOnnxError   # every error a user can cause

# ---------------------------------------------------------------- helpers
CLASSES = ("data loss", "outside folder", "wrong verdict", "bounded work", "signals", "translation", "options",
           "bad input", "broken folder", "disk", "network", "remote code", "concurrency")
"Kinds of case; the reliability matrix page (nbs/howto/reliability.ipynb) groups the cases by them"

def case(cls:str, outcome:str):
    "Mark a test with its class and the outcome it asserts: the reliability matrix page lists both, generated from this file."
    assert cls in CLASSES, cls
    def mark(f): f.reliability = (cls, outcome); return f
    return mark

def tree_hash(p:Path) -> str:
    "sha256 of every file name and content under `p` (symlinks by target name), and of the folder listing."
    h = hashlib.sha256()
    for f in sorted(Path(p).rglob("*")):
        h.update(str(f.relative_to(p)).encode())
        if f.is_symlink(): h.update(os.readlink(f).encode())
        elif f.is_file(): h.update(f.read_bytes())
    return h.hexdigest()

def leftovers(out:Path) -> list:
    "Temporary files or locks an export of `out` may leave beside it."
    return sorted(x.name for x in out.parent.iterdir() if x.name.startswith(f".{out.name}."))

def assert_nothing_left(out:Path, old_hash:str|None=None):
    "No finished-looking output (or the old one, unchanged) and no temporary files or locks beside it."
    if old_hash is None: assert not out.exists(), f"{out} exists after a failed export: {sorted(os.listdir(out))}"
    else: assert tree_hash(out) == old_hash, f"{out} changed"
    assert leftovers(out) == [], leftovers(out)

def has_fix(msg:str) -> bool: return "Fix" in msg or "fix" in msg or "pass " in msg or "Use " in msg

def src_copy(tmp_path, name="src") -> Path:
    d = tmp_path/name; shutil.copytree(EMBEDDED_DIR, d); return d

def export_fails(mode, src, out, *flags, **kw):
    """Run an export that must fail, via the CLI or the API; return (exit code or exception name, message).
    Asserts the source is unchanged and nothing is left behind."""
    src_dir = EMBEDDED_DIR if str(src) == "embedded" else Path(str(src))
    h = tree_hash(src_dir) if src_dir.is_dir() else None
    if mode == "cli":
        p = cli("export", src, out, *flags, **kw)
        assert p.returncode != 0, p.stdout + p.stderr
        assert "Traceback" not in p.stderr, p.stderr
        res = (p.returncode, p.stderr)
    else:
        opts = {"precision": "fp32", "execution_provider": "cpu"}
        it = iter(flags)
        for f in it:
            k = f.lstrip("-").replace("-", "_"); k = "execution_provider" if k == "ep" else k
            opts[k] = True if k in ("overwrite", "trust_remote_code") else next(it)
        with pytest.raises(KNOWN) as ei: export(src, out, **opts)
        res = (type(ei.value).__name__, str(ei.value))
    if h is not None: assert tree_hash(src_dir) == h, "the source folder was modified"
    return res

def msg_of(res): return res[1]
MODES = ["cli", "api"]

# ---------------------------------------------------------------- 1. sources
@case('bad input', "exit 2 / SourceError: 'neither an existing folder nor a hub id' with the fix; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_source_missing(mode, tmp_path):
    out = tmp_path/"o"
    code, msg = export_fails(mode, tmp_path/"no_such_model", out)
    assert code in (2, "SourceError") and "neither an existing folder" in msg and "Fix" in msg
    assert_nothing_left(out)

@case('bad input', "exit 2 / SpecError: 'has no config.json' with the fix; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_no_config_json(mode, tmp_path):
    src = src_copy(tmp_path); (src/"config.json").unlink(); out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SpecError") and "has no config.json" in msg and "Fix" in msg
    assert_nothing_left(out)

@case('bad input', "exit 2 / SpecError: 'is not valid JSON' with the fix; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_config_not_json(mode, tmp_path):
    src = src_copy(tmp_path); (src/"config.json").write_text('{"model_type": "mistral", ')
    out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SpecError") and "is not valid JSON" in msg and "Fix" in msg
    assert_nothing_left(out)

BERT = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 128, "num_attention_heads": 2,
        "num_hidden_layers": 2, "intermediate_size": 512, "vocab_size": 416, "max_position_embeddings": 64}

@case('bad input', "exit 2 / SpecError naming model_type 'bert' and BertModel; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_bert_encoder_refused(mode, tmp_path):
    src = src_copy(tmp_path); (src/"config.json").write_text(json.dumps(BERT)); out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SpecError") and "model_type='bert'" in msg and "BertModel" in msg and "Fix" in msg
    assert_nothing_left(out)

# ---------------------------------------------------------------- 1b. no num_key_value_heads: multi-head attention must work
@pytest.fixture(scope="module")
def mha_source(tmp_path_factory):
    "A small random Mistral with multi-head attention whose config.json has no num_key_value_heads."
    import torch
    from transformers import MistralConfig, MistralForCausalLM
    d = tmp_path_factory.mktemp("mha")/"src"
    cfg = MistralConfig(vocab_size=416, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=4, max_position_embeddings=64, sliding_window=None, bos_token_id=1,
                        eos_token_id=2, pad_token_id=2, tie_word_embeddings=False, initializer_range=0.3)
    torch.manual_seed(0)
    MistralForCausalLM(cfg).eval().save_pretrained(d)
    c = json.loads((d/"config.json").read_text()); c.pop("num_key_value_heads")
    (d/"config.json").write_text(json.dumps(c, indent=1))
    for f in EMBEDDED_DIR.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens")): shutil.copy2(f, d/f.name)
    return d

@case('wrong verdict', 'exports; 4 KV heads in graph and genai_config; same greedy tokens as transformers')
def test_mha_without_num_key_value_heads_exports_and_generates(mha_source, tmp_path):
    import torch
    h = tree_hash(mha_source)
    r = export(mha_source, tmp_path/"mha")
    assert tree_hash(mha_source) == h
    assert r.report["kv_check"]["ok"]
    dims = r.report["inputs"]["past_key_values.0.key"]
    assert 4 in dims or "kv_num_heads" in str(dims) or dims[1] == 4, dims          # 4 KV heads = 4 query heads
    g = json.loads((tmp_path/"mha"/"genai_config.json").read_text())["model"]["decoder"]
    assert (g["num_attention_heads"], g["num_key_value_heads"]) == (4, 4)
    lm = OnnxLM(tmp_path/"mha")
    ids = [1, 40, 50, 60, 70, 80]
    got = list(lm.stream_ids(ids, max_new_tokens=10))
    assert len(got) >= 1
    m, _ = load_torch(mha_source)             # transformers alone would read the absent field as 8 KV heads
    with torch.inference_mode():
        y = m.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=10,
                       do_sample=False, eos_token_id=2, pad_token_id=2)[0, len(ids):].tolist()
    if 2 in y: y = y[:y.index(2)]
    assert got == y, (got, y)                       # same greedy tokens as transformers

@case('wrong verdict', 'export exit 0 reporting 4 KV heads; check PASS')
def test_mha_cli_check(mha_source, tmp_path):
    p = cli("export", mha_source, tmp_path/"o")
    assert p.returncode == 0, p.stderr
    assert "4 heads, 4 KV heads" in p.stdout
    p = cli("check", tmp_path/"o"); assert p.returncode == 0 and "PASS" in p.stdout

# ---------------------------------------------------------------- 2. weights and tokenizer
@case('wrong verdict', "exit 2 / SourceError naming k_proj and 'set num_key_value_heads to 2'; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_kv_heads_disagree_with_weights(mode, tmp_path):
    "config.json says 8 key/value heads where the weights hold 2: refused before the exporter runs."
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text())
    (src/"config.json").write_text(json.dumps({**c, "num_key_value_heads": 8})); out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SourceError") and "k_proj" in msg and "Fix: set num_key_value_heads to 2" in msg, msg
    assert_nothing_left(out)

def _damage_header(src):
    f = src/"model.safetensors"; b = bytearray(f.read_bytes()); b[8:24] = b"#" * 16; f.write_bytes(bytes(b))

def _truncate(src):
    f = src/"model.safetensors"; b = f.read_bytes(); f.write_bytes(b[:len(b)//2])

@case('bad input', "exit 2 / SourceError naming model.safetensors, 'header' or 'truncated', and the fix")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("damage,words", [(_damage_header, "header"), (_truncate, "truncated")], ids=["header", "truncated"])
def test_safetensors_damaged(mode, damage, words, tmp_path):
    src = src_copy(tmp_path); damage(src); out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SourceError"), msg
    assert "model.safetensors" in msg and words in msg and "Fix" in msg, msg
    assert_nothing_left(out)

@case('bad input', "exit 2 / SourceError: 'has no tokenizer' with the fix; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_tokenizer_missing(mode, tmp_path):
    src = src_copy(tmp_path); (src/"tokenizer.json").unlink(); out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SourceError") and "has no tokenizer" in msg and "Fix" in msg
    assert_nothing_left(out)

# ---------------------------------------------------------------- 3. broken exported folders
def _copy_export(exported, tmp_path, name="x"):
    d = tmp_path/name; shutil.copytree(exported["fp32"], d); return d

def _corrupt_onnx(d): (d/"model.onnx").write_bytes(b"\x08\x07garbage" * 100)
def _missing_onnx(d): (d/"model.onnx").unlink()
def _missing_data(d): (d/"model.onnx.data").unlink()
def _genai_disagrees(d):
    f = d/"genai_config.json"; g = json.loads(f.read_text())
    g["model"]["decoder"]["num_key_value_heads"] = 8; f.write_text(json.dumps(g))

def _genai_not_config(d): (d/"genai_config.json").write_text("[1, 2]")
def _genai_field_missing(d):
    (d/"export_report.json").unlink()
    f = d/"genai_config.json"; g = json.loads(f.read_text()); del g["model"]["decoder"]["head_size"]; f.write_text(json.dumps(g))

BROKEN = {"corrupt_model_onnx": (_corrupt_onnx, "not a readable ONNX model"),
          "genai_config_not_a_config": (_genai_not_config, "is not a genai_config"),
          "genai_config_field_missing": (_genai_field_missing, "FAIL spec"),
          "missing_model_onnx": (_missing_onnx, "model.onnx does not exist"),
          "missing_data": (_missing_data, "model.onnx.data"),
          "genai_config_disagrees": (_genai_disagrees, "num_key_value_heads")}

@case('broken folder', 'check exits non-zero naming the broken file or field and what to do')
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_folder_check_cli(case, exported, tmp_path):
    d = _copy_export(exported, tmp_path); BROKEN[case][0](d)
    p = cli("check", d)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    text = p.stdout + p.stderr
    assert BROKEN[case][1] in text and ("Fix" in text or "export again" in text or "correct genai_config" in text), text

@case('broken folder', 'generate exits 2 naming the broken file or field, with the fix')
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_folder_generate_cli(case, exported, tmp_path):
    d = _copy_export(exported, tmp_path); BROKEN[case][0](d)
    p = cli("generate", d, "reverse: abc", timeout=120)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert BROKEN[case][1] in p.stderr and "Fix" in p.stderr, p.stderr

@case('broken folder', 'OnnxLM raises CheckError naming the broken file or field, with the fix')
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_folder_generate_api(case, exported, tmp_path):
    d = _copy_export(exported, tmp_path); BROKEN[case][0](d)
    with pytest.raises(CheckError) as ei: OnnxLM(d).generate("reverse: abc")
    assert BROKEN[case][1] in str(ei.value) and "Fix" in str(ei.value)

# ---------------------------------------------------------------- 4. precision / execution provider
@case('options', "exit 2 / BadOption: 'cannot run on cpu', suggests fp16 on cuda; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_fp16_on_cpu(mode, tmp_path):
    out = tmp_path/"o"
    code, msg = export_fails(mode, "embedded", out, "--precision", "fp16")
    assert code in (2, "BadOption") and "cannot run on cpu" in msg and "fp16 on cuda" in msg
    assert_nothing_left(out)

@case('options', 'exit 2 / ExportError: "\'cuda\' is not available" with the fix; nothing written')
@pytest.mark.parametrize("mode", MODES)
def test_cuda_without_gpu(mode, tmp_path):
    from mistral_onnx.env import available_providers
    if "cuda" in available_providers(): pytest.skip("this machine has a CUDA provider")
    out = tmp_path/"o"
    code, msg = export_fails(mode, "embedded", out, "--ep", "cuda")
    assert code in (2, "ExportError") and "'cuda' is not available" in msg and "Fix" in msg
    assert_nothing_left(out)

@case('options', 'the fix is `mistral_onnx[cuda]` without the extra, `nvidia-smi` with it')
def test_cuda_extra_missing_vs_no_gpu(monkeypatch):
    "Without the cuda extra the fix is to install it; with it installed but no GPU visible, the fix is the driver."
    import mistral_onnx.routes as rt
    from mistral_onnx.env import Runtime
    monkeypatch.setattr(rt, "available_providers", lambda: ["cpu"])
    monkeypatch.setattr(rt, "runtime", lambda m: Runtime(m, {"onnxruntime": "1.32.0"}, "onnxruntime"))
    with pytest.raises(ExportError, match=r"mistral_onnx\[cuda\]"): check_provider("cuda")
    monkeypatch.setattr(rt, "runtime", lambda m: Runtime(m, {"onnxruntime-gpu": "1.31.1"}, "onnxruntime-gpu"))
    with pytest.raises(ExportError, match="nvidia-smi"): check_provider("cuda")

# ---------------------------------------------------------------- 5. output folder
@case('data loss', "exit 2: 'already exists', names --overwrite; the existing export unchanged")
@pytest.mark.parametrize("mode", MODES)
def test_output_exists_refused(mode, exported, tmp_path):
    out = _copy_export(exported, tmp_path, "out"); h = tree_hash(out)
    code, msg = export_fails(mode, "embedded", out)
    assert code in (2, "ExportError") and "already exists" in msg and "overwrite" in msg
    assert_nothing_left(out, old_hash=h)

@case('data loss', "exit 2: 'is not an export folder' with the fix; the user's folder unchanged")
@pytest.mark.parametrize("mode", MODES)
def test_overwrite_refuses_a_folder_that_is_not_an_export(mode, tmp_path):
    "`--overwrite` on a user's own folder (here with a file in it) must not delete it."
    out = tmp_path/"mine"; out.mkdir(); (out/"thesis.tex").write_text("years of work"); h = tree_hash(out)
    code, msg = export_fails(mode, "embedded", out, "--overwrite")
    assert code in (2, "ExportError") and "is not an export folder" in msg and "Fix" in msg
    assert_nothing_left(out, old_hash=h)

@case('data loss', "exit 2: 'never modifies or replaces a source'; the source folder unchanged")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_output_in_or_over_the_source_refused(mode, where, tmp_path):
    src = src_copy(tmp_path, "models/src")
    out = {"same": src, "inside": src/"onnx", "parent": src.parent}[where]
    code, msg = export_fails(mode, src, out, "--overwrite")
    assert code in (2, "ExportError") and "never modifies or replaces a source" in msg and "Fix" in msg
    assert sorted(x.name for x in src.parent.iterdir()) == ["src"] and not (src/"onnx").exists()

@case('data loss', 'exit 0; the old export replaced entirely (no stale file), nothing beside it')
def test_overwrite_replaces(exported, tmp_path):
    out = _copy_export(exported, tmp_path, "out")
    (out/"stale.txt").write_text("from the old export")
    p = cli("export", "embedded", out, "--overwrite", "--precision", "int4")
    assert p.returncode == 0, p.stderr
    assert not (out/"stale.txt").exists() and json.loads((out/"export_report.json").read_text())["precision"] == "int4"
    assert leftovers(out) == []

def _failing_route(job):
    "A route (it gets a `routes.Job`) that writes half a model, then fails."
    (job.tmp/"model.onnx").write_bytes(b"half written")
    raise ExportError("injected failure of the route after writing half a model. Fix: none needed, this is a test.")

@case('data loss', 'ExportError from the route; the old export unchanged, nothing beside it')
def test_overwrite_failed_second_export_keeps_old(exported, tmp_path, monkeypatch):
    out = _copy_export(exported, tmp_path, "out"); h = tree_hash(out)
    monkeypatch.setitem(ROUTES, "failing", Route("failing", "a test route that fails after writing half a model", _failing_route, {"cpu": ("fp32",)}))
    with pytest.raises(ExportError, match="injected failure"): export("embedded", out, route="failing", overwrite=True)
    assert_nothing_left(out, old_hash=h)

def _find_builders(marker:str) -> list:
    "pids of model-builder processes whose command line contains `marker`."
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit(): continue
        try: cmd = (p/"cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError: continue
        if ("onnxruntime_genai.models.builder" in cmd or "builder_main()" in cmd) and marker in cmd: pids.append(int(p.name))   # the builder, or its low-memory wrapper
    return pids

def _alive(pid):
    try: return (Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]) not in "ZX"
    except (OSError, IndexError): return False

def _start_and_signal(args, marker, sig, tmpdir, timeout=120):
    "Start the CLI; once the builder subprocess runs (convert stage), send `sig`; return (proc, stdout, stderr, builder pids)."
    env = dict(os.environ, TMPDIR=str(tmpdir))
    p = subprocess.Popen([str(BIN/"mistral-onnx"), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen, t0, pids = [], time.time(), []
    while time.time() - t0 < timeout:
        line = p.stdout.readline()
        if not line: break
        seen.append(line)
        if "[ convert]" in line: break
    while time.time() - t0 < timeout and not pids and p.poll() is None:
        pids = _find_builders(marker); time.sleep(0.05)
    assert pids, "the builder never started: " + "".join(seen)
    p.send_signal(sig)
    out, err = p.communicate(timeout=timeout)
    return p, "".join(seen) + out, err, pids

@case('signals', "exit 130 'interrupted'; builder process gone; nothing beside the output, $TMPDIR empty")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_export(sig, tmp_path):
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir(); out = tmp_path/"o"; src = src_copy(tmp_path); h = tree_hash(src)
    p, so, se, pids = _start_and_signal(["export", src, out], str(tmp_path), sig, tmpdir)
    assert p.returncode == 130 and "interrupted" in se and "Traceback" not in se, (p.returncode, se)
    time.sleep(0.5)
    assert not any(_alive(pid) for pid in pids), "the builder subprocess outlived the export"
    assert_nothing_left(out)
    assert list(tmpdir.iterdir()) == [], list(tmpdir.iterdir())          # the work folder is gone too
    assert tree_hash(src) == h

@case('signals', 'Cancelled; builder process gone; nothing written, $TMPDIR empty')
def test_cancel_event_during_export_api(tmp_path, monkeypatch):
    "The Python API's `cancel` event, set once the convert stage has started, as a widget's Cancel button does."
    import threading, tempfile
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir(); monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    out = tmp_path/"o"; src = src_copy(tmp_path); h = tree_hash(src)
    cancel, pids, started = threading.Event(), [], []
    def press_cancel():                  # a user pressing Cancel while the builder runs
        t0 = time.time()
        while not pids and time.time() - t0 < 60: pids.extend(_find_builders(str(tmp_path))); time.sleep(0.05)
        cancel.set()
    def progress(stage, frac, msg):
        if stage == "convert" and not started:
            started.append(threading.Thread(target=press_cancel, daemon=True)); started[0].start()
    with pytest.raises(Cancelled, match="cancelled"): export(src, out, progress=progress, cancel=cancel)
    assert pids and not any(_alive(pid) for pid in pids)
    assert_nothing_left(out)
    assert list(tmpdir.iterdir()) == [] and tree_hash(src) == h

@case('signals', 'exit 130; the old export unchanged, nothing beside it')
def test_overwrite_interrupted_keeps_old(exported, tmp_path):
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir()
    out = _copy_export(exported, tmp_path, "out"); h = tree_hash(out)
    p, so, se, pids = _start_and_signal(["export", "embedded", out, "--overwrite"], str(tmp_path), signal.SIGTERM, tmpdir)
    assert p.returncode == 130 and "interrupted" in se
    assert_nothing_left(out, old_hash=h)

@case('signals', 'SIGKILL: old export unchanged, builder dies too; the next export removes the partial folder, lock and $TMPDIR work folder')
def test_overwrite_killed_keeps_old_and_next_export_cleans_up(exported, tmp_path, monkeypatch):
    "SIGKILL cannot be caught: the old folder must still be intact, and the next export removes what was left."
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir()
    out = _copy_export(exported, tmp_path, "out"); h = tree_hash(out)
    p, so, se, pids = _start_and_signal(["export", "embedded", out, "--overwrite"], str(tmp_path), signal.SIGKILL, tmpdir)
    assert p.returncode == -signal.SIGKILL
    t0 = time.time()
    while any(_alive(pid) for pid in pids) and time.time() - t0 < 10: time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "the builder outlived its killed parent"
    assert tree_hash(out) == h                       # the old export is untouched
    assert [x.name[:8] for x in tmpdir.iterdir()] == ["mo-work-"]   # what SIGKILL leaves in $TMPDIR
    import tempfile; monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    r = export("embedded", out, overwrite=True)      # the next export cleans stale partials, the stale lock and the work folder
    assert r.report["kv_check"]["ok"] and leftovers(out) == [] and list(tmpdir.iterdir()) == []

@case('signals', 'the old folder set aside by a killed swap is restored by the next export, then refused as existing')
def test_killed_mid_swap_old_folder_restored(exported, tmp_path):
    "Where the atomic exchange is unavailable the old folder is renamed aside first; if the export dies right then, the next one puts it back."
    out = tmp_path/"out"; aside = tmp_path/".out.old-999999"; shutil.copytree(exported["fp32"], aside); h = tree_hash(aside)
    with pytest.raises(ExportError, match="already exists"): export("embedded", out)   # restored, then refused as usual
    assert_nothing_left(out, old_hash=h)

# read-only folder and a full disk: a real mount where permitted, else a failure injected at the file layer
def _mount(target:Path, opts:str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)], capture_output=True)
    return r.returncode == 0

def _umount(target:Path): subprocess.run(["umount", "-l", str(target)], capture_output=True)

@case('disk', "exit 2: 'not writable' / 'Cannot create' with the fix; nothing written")
def test_output_on_read_only_folder(tmp_path, monkeypatch, record_property):
    ro = tmp_path/"ro"; src = src_copy(tmp_path)
    if _mount(ro, "size=8m,ro"):
        record_property("how", "read-only tmpfs mount")
        try:
            code, msg = export_fails("cli", src, ro/"out")
            assert code == 2 and "not writable" in msg and "Fix" in msg, msg
            code, msg = export_fails("cli", src, ro/"sub"/"out")
            assert code == 2 and "Cannot create" in msg and "Fix" in msg, msg
            assert list(ro.iterdir()) == []
        finally: _umount(ro)
    else:
        record_property("how", "EROFS injected into os.mkdir/os.open")
        ro.mkdir()
        def erofs(*a, **k): raise OSError(errno.EROFS, "Read-only file system", str(a[0]))
        monkeypatch.setattr(os, "access", lambda *a, **k: True)
        monkeypatch.setattr(os, "open", erofs)
        code, msg = export_fails("api", src, ro/"out")
        assert "Read-only" in msg and "Fix" in msg
        monkeypatch.undo(); assert list(ro.iterdir()) == []

@case('disk', "refused before work when the disk estimate does not fit (naming --ignore-resource-check); with it, exit 2: 'No space left' with 'free space'; nothing left on the full disk")
def test_disk_full_mid_export(tmp_path, record_property):
    "The builder writes 3.2 MB of weights into a 1 MB tmpfs: the export must say the disk is full and leave nothing."
    full = tmp_path/"full"; src = src_copy(tmp_path)
    if not _mount(full, "size=1m"): pytest.skip("mount not permitted here; test_disk_full_injected covers ENOSPC")
    record_property("how", "1 MB tmpfs mount")
    try:
        code, msg = export_fails("cli", src, full/"out")          # refused before any work: the estimate does not fit
        assert code == 2 and "of disk" in msg and "Fix" in msg and "--ignore-resource-check" in msg, msg
        assert_nothing_left(full/"out")
        code, msg = export_fails("cli", src, full/"out", "--ignore-resource-check")   # told to start: the disk fills mid-export
        assert code == 2 and "No space left" in msg and "Fix" in msg and "free" in msg, msg
        assert_nothing_left(full/"out")
        assert list(full.iterdir()) == []
    finally: _umount(full)

@case('disk', "ExportError: 'No space left', 'free space'; nothing written")
def test_disk_full_injected(tmp_path, monkeypatch):
    "ENOSPC injected while the tokenizer is copied (after the builder wrote the graph)."
    import mistral_onnx.export as ex
    def enospc(*a, **k): raise OSError(errno.ENOSPC, "No space left on device", str(a[1]))
    monkeypatch.setattr(ex.shutil, "copy2", enospc)
    src = src_copy(tmp_path); out = tmp_path/"o"
    code, msg = export_fails("api", src, out)
    assert code == "ExportError" and "No space left" in msg and "free" in msg
    assert_nothing_left(out)

# ---------------------------------------------------------------- 7. hub without network; remote code
def _hub_env(tmp_path, endpoint):
    return dict(os.environ, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path/"hf"), HF_HUB_ETAG_TIMEOUT="3",
                HF_HUB_DOWNLOAD_TIMEOUT="3", HF_HUB_DISABLE_TELEMETRY="1")

@case('network', "exit 2 within the timeout, one 'cannot reach' line with the fix")
def test_hub_no_network_unresolvable(tmp_path):
    t0 = time.time()
    p = cli("export", "someone/some-model", tmp_path/"o", env=_hub_env(tmp_path, "http://hub.invalid"), timeout=60)
    assert time.time() - t0 < 30
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    assert "cannot reach" in lines[0] and "Fix" in lines[0]
    assert_nothing_left(tmp_path/"o")

@case('network', "exit 2 within the timeout, at most 2 connections, one 'cannot reach' line with the fix")
def test_hub_no_network_hanging_server(tmp_path, record_property):
    "A server that accepts connections and never answers: bounded by HF_HUB_ETAG_TIMEOUT, and no retry storm."
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
    try:
        t0 = time.time()
        p = cli("export", "someone/some-model", tmp_path/"o", env=_hub_env(tmp_path, f"http://127.0.0.1:{s.getsockname()[1]}"), timeout=60)
        took = time.time() - t0
        s.setblocking(False); conns = 0
        while True:
            try: c, _ = s.accept(); c.close(); conns += 1
            except BlockingIOError: break
    finally: s.close()
    record_property("seconds", round(took, 1)); record_property("connections", conns)
    assert took < 30, took
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "cannot reach" in lines[0] and "Fix" in lines[0], p.stderr
    assert conns <= 2, f"{conns} connections: a retry storm"
    assert_nothing_left(tmp_path/"o")

def _remote_code_source(tmp_path):
    "The embedded model with auto_map pointing at code in the folder; that code writes a sentinel file when it runs."
    src = src_copy(tmp_path)
    c = json.loads((src/"config.json").read_text())
    c["auto_map"] = {"AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (src/"config.json").write_text(json.dumps(c))
    sentinel = tmp_path/"remote_code_ran"
    (src/"configuration_x.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\nfrom transformers import MistralConfig as XConfig\n")
    (src/"modeling_x.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\nfrom transformers import MistralForCausalLM as XForCausalLM\n")
    return src, sentinel

@case('remote code', "exit 2 naming auto_map and --trust-remote-code; the repository's code never ran")
@pytest.mark.parametrize("mode", MODES)
def test_remote_code_refused_without_flag(mode, tmp_path):
    src, sentinel = _remote_code_source(tmp_path); out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SourceError") and "auto_map" in msg and "--trust-remote-code" in msg
    assert not sentinel.exists()
    assert_nothing_left(out)

@case('remote code', 'with --trust-remote-code: exit 0, the builder told hf_remote=true')
def test_remote_code_runs_only_with_flag(tmp_path):
    "With --trust-remote-code the check lets it through and the builder is told it may run the repository's code."
    src, sentinel = _remote_code_source(tmp_path)
    with pytest.raises(SourceError, match="trust_remote_code=True"): resolve_source(src)
    assert resolve_source(src, trust_remote_code=True) == src
    p = cli("export", src, tmp_path/"o", "--trust-remote-code")
    assert p.returncode == 0, p.stderr
    cmd = json.loads((tmp_path/"o"/"export_report.json").read_text())["route_info"]["command"]
    assert "hf_remote=true" in cmd
    assert sentinel.exists()                      # the repository's code ran, because the user asked

# ---------------------------------------------------------------- 8. generation input
GEN = {"empty": ("", "empty"), "blank": ("   ", "empty"), "too_long": ("reverse: " + "x" * 200, "context"),
       "non_utf8": ("reverse: ab\udcff", "UTF-8")}

@case('options', 'GenerationError naming the problem (empty, context, UTF-8) with the fix')
@pytest.mark.parametrize("case", list(GEN))
def test_generate_bad_prompt_api(case, exported):
    lm = OnnxLM(exported["fp32"])
    prompt, words = GEN[case]
    with pytest.raises(GenerationError, match=words) as ei: lm.generate(prompt)
    assert "Fix" in str(ei.value)

@case('options', 'exit 2 naming the problem with the fix')
@pytest.mark.parametrize("case", ["empty", "blank", "too_long"])
def test_generate_bad_prompt_cli(case, exported):
    p = cli("generate", exported["fp32"], GEN[case][0])
    assert p.returncode == 2 and GEN[case][1] in p.stderr and "Fix" in p.stderr, p.stderr

@case('options', "exit 2: 'UTF-8' with the fix, no traceback")
def test_generate_non_utf8_bytes_cli(exported):
    p = subprocess.run([str(BIN/"mistral-onnx"), "generate", str(exported["fp32"]), b"reverse: ab\xff\xfe"],
                       capture_output=True, timeout=120)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 2 and "UTF-8" in err and "Fix" in err and "Traceback" not in err, err

@case('options', 'exit 2 naming --max-new-tokens and its allowed range; GenerationError in the API')
@pytest.mark.parametrize("n", [0, -3])
def test_generate_max_new_tokens_below_one(n, exported):
    p = cli("generate", exported["fp32"], "reverse: abc", "--max-new-tokens", n)
    assert p.returncode == 2 and "--max-new-tokens" in p.stderr and "allowed: an integer >= 1" in p.stderr and "Fix" in p.stderr, p.stderr
    with pytest.raises(GenerationError, match="max_new_tokens"): OnnxLM(exported["fp32"]).generate("reverse: abc", max_new_tokens=n)

@case('wrong verdict', 'an answer cut by the context says so (stats.hit_context)')
def test_answer_cut_at_context_is_reported(exported):
    "A prompt that fits but leaves no room for its answer: the answer stops at the context, and the stats say so."
    lm = OnnxLM(exported["fp32"])
    lm.generate("reverse: " + "ab" * 25, max_new_tokens=64)
    assert lm.stats.hit_context and lm.stats.new_tokens < 64
    lm.generate("reverse: abc"); assert not lm.stats.hit_context

@case('options', 'GenerationError naming the vocabulary')
def test_generate_ids_outside_vocab(exported):
    lm = OnnxLM(exported["fp32"])
    with pytest.raises(GenerationError, match="vocabulary"): list(lm.stream_ids([1, 5, 100000]))

# ---------------------------------------------------------------- 9. two exports to the same output
@case('concurrency', "one exits 0, the other 2 ('is running' or 'already exists'); the result passes check")
def test_two_exports_at_once(tmp_path, record_property):
    out = tmp_path/"o"; src = src_copy(tmp_path); h = tree_hash(src)
    procs = [subprocess.Popen([str(BIN/"mistral-onnx"), "export", str(src), str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    res = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in res)
    assert codes == [0, 2], res
    loser = [e for c, e in res if c == 2][0]
    record_property("loser", loser.strip()[:200])
    assert ("is running" in loser or "already exists" in loser) and "Fix" in loser, loser
    assert check_kv(out).ok and leftovers(out) == [] and tree_hash(src) == h

@case('concurrency', "a live lock holder refuses the export ('is running'); a dead one's lock does not")
def test_lock_held_by_live_process(tmp_path):
    "A lock held by a running process refuses the export; a lock file left by a dead one does not."
    out = tmp_path/"o"; lock = tmp_path/".o.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_CREAT|os.O_RDWR); "
                               "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); print('held', flush=True); time.sleep(60)",
                               str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ExportError, match="is running") as ei: export("embedded", out)
        assert "Fix" in str(ei.value) and not out.exists()
    finally: holder.kill(); holder.wait()
    assert lock.exists()                                  # left by the killed holder
    r = export("embedded", out)
    assert r.report["kv_check"]["ok"] and leftovers(out) == []

# ================================================================ round 2 (issue 14)
# ---------------------------------------------------------------- data loss: names are names; nothing replaced unasked
def _decoys(d:Path, other:str) -> dict:
    "What another export of the output `other` may hold beside it: its partial folder, its old folder mid-swap. {path: hash}"
    part = d/f".{other}.partial-abcd1234"; part.mkdir(); (part/"model.onnx").write_text("another export, running")
    old = d/f".{other}.old-4242"; old.mkdir(); (old/"genai_config.json").write_text('{"another": "export"}')
    return {x: tree_hash(x) for x in (part, old)}

@case("data loss", "another output's partial and set-aside folders survive; the export lands at the literal name")
@pytest.mark.parametrize("name,other", [("a*", "ab"), ("a?", "ab"), ("[ab]", "a")], ids=["star", "question", "brackets"])
def test_stale_cleanup_matches_names_literally(name, other, tmp_path):
    "An output named with `*`, `?` or `[...]` is a name, never a pattern: another export's folders beside it are not touched."
    from mistral_onnx.export import Transaction
    decoys = _decoys(tmp_path, other)
    with Transaction(tmp_path/name) as t:
        (t.tmp/"genai_config.json").write_text("{}"); t.commit()
    assert (tmp_path/name/"genai_config.json").exists()
    assert {x: tree_hash(x) for x in decoys} == decoys, "another export's folders were touched"
    assert not (tmp_path/other).exists(), "a folder that was not this export's was 'restored'"
    assert leftovers(tmp_path/name) == []

@case("data loss", "a new export gets 0777 less the umask; `export 'a*' --overwrite` over a shared 2775 folder: exit 0, mode and group kept, output 'ab''s partial/old folders unchanged, no leftovers")
def test_overwrite_keeps_mode_and_touches_only_its_own(exported, tmp_path):
    "A new export under umask 002; then `mistral-onnx export embedded 'a*' --overwrite` where 'a*' is a shared setgid 2775 export and another output 'ab' has work in progress beside it."
    from mistral_onnx.export import Transaction
    old = os.umask(0o002)
    try:
        with Transaction(tmp_path/"new") as t: (t.tmp/"genai_config.json").write_text("{}"); t.commit()
    finally: os.umask(old)
    assert (tmp_path/"new").stat().st_mode & 0o7777 == 0o775
    out = _copy_export(exported, tmp_path, "a*"); os.chmod(out, 0o2775); gid = out.stat().st_gid
    decoys = _decoys(tmp_path, "ab")
    p = cli("export", "embedded", out, "--overwrite", env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    assert (out.stat().st_mode & 0o7777, out.stat().st_gid) == (0o2775, gid)
    assert {x: tree_hash(x) for x in decoys} == decoys and not (tmp_path/"ab").exists()
    assert leftovers(out) == [] and not list(tmp_path.glob("mo-work-*")) and check_kv(out).ok

@case("data loss", "exit 2 naming the link and its target, with the fix; the link and its target unchanged")
@pytest.mark.parametrize("mode", MODES)
def test_overwrite_refuses_a_symlinked_output(mode, exported, tmp_path):
    '--overwrite on an output that is a symbolic link to an export (`latest -> v1`).'
    target = _copy_export(exported, tmp_path, "v1"); h = tree_hash(target)
    link = tmp_path/"latest"; link.symlink_to(target)
    code, msg = export_fails(mode, "embedded", link, "--overwrite")
    assert code in (2, "ExportError") and "symbolic link" in msg and str(target) in msg and "Fix" in msg, msg
    assert link.is_symlink() and os.readlink(link) == str(target) and tree_hash(target) == h
    assert leftovers(link) == []

def _olive_workflow(tmp_path) -> Path:
    (tmp_path/"m").mkdir(); (tmp_path/"m"/"config.json").write_text(json.dumps({**json.loads((EMBEDDED_DIR/"config.json").read_text())}))
    wf = {"input_model": {"type": "HfModel", "model_path": "m", "io_config": {"input_names": ["input_ids"], "output_names": ["logits"],
          "kv_cache": True}}, "passes": {"c": {"type": "OnnxConversion"}}}
    f = tmp_path/"wf.json"; f.write_text(json.dumps(wf)); return f

@case("data loss", "exit 2: 'already exists' naming --overwrite; the existing file (or the input itself) unchanged")
def test_diagnose_write_fixed_refuses_existing_file(tmp_path):
    "`diagnose --write-fixed F` where F exists: a file of the user's, and the workflow config being diagnosed."
    wf = _olive_workflow(tmp_path); before = wf.read_text()
    mine = tmp_path/"notes.json"; mine.write_text("my notes")
    for target in (mine, wf):
        p = cli("diagnose", wf, "--write-fixed", target)
        assert p.returncode == 2 and "already exists" in p.stderr and "--overwrite" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert mine.read_text() == "my notes" and wf.read_text() == before
    p = cli("diagnose", wf, "--write-fixed", mine, "--overwrite")
    assert "written to" in p.stdout and json.loads(mine.read_text())["input_model"], p.stdout + p.stderr

@case("data loss", "exit 2 before measuring: 'already exists' naming --overwrite; the file unchanged")
def test_bench_json_refuses_existing_file(exported, tmp_path):
    '`bench --json F` where F exists.'
    f = tmp_path/"results.json"; f.write_text("last week's numbers")
    p = cli("bench", "embedded", exported["fp32"], "--json", f, "--runner", "ortgenai", timeout=60)
    assert p.returncode == 2 and "already exists" in p.stderr and "--overwrite" in p.stderr, p.stderr
    assert f.read_text() == "last week's numbers" and "ortgenai" not in p.stdout

@case("data loss", "demo exits 2 on an output that is not an earlier demo's export, naming --overwrite; the folder unchanged")
def test_demo_keeps_a_foreign_export(exported, tmp_path):
    '`demo --out D` where D is an export of another model, not an earlier demo.'
    out = _copy_export(exported, tmp_path, "mine")
    r = json.loads((out/"export_report.json").read_text()); r["source"] = "/models/my-finetune"
    (out/"export_report.json").write_text(json.dumps(r)); h = tree_hash(out)
    p = cli("demo", "--out", out, "-n", 1)
    assert p.returncode == 2 and "already exists" in p.stderr and "overwrite" in p.stderr, p.stderr
    assert_nothing_left(out, old_hash=h)

# ---------------------------------------------------------------- outside the folder: one rule
def _point_graph_outside(d:Path, how:str, tmp_path:Path):
    other = tmp_path/"other"; other.mkdir(exist_ok=True)
    for f in ("model.onnx", "model.onnx.data"): shutil.copy2(d/f, other/f)
    g = json.loads((d/"genai_config.json").read_text())
    g["model"]["decoder"]["filename"] = "../other/model.onnx" if how == "relative" else str(other/"model.onnx")
    (d/"genai_config.json").write_text(json.dumps(g))

@case("outside folder", "check and generate exit 2: 'outside the folder' / 'not a name inside the folder' with the fix")
@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_graph_filename_outside_folder(how, exported, tmp_path):
    "genai_config's `filename` is `../other/model.onnx` or an absolute path."
    d = _copy_export(exported, tmp_path); _point_graph_outside(d, how, tmp_path); h = tree_hash(d), tree_hash(tmp_path/"other")
    for args in (("check", d), ("generate", d, "reverse: abc")):
        p = cli(*args, timeout=120)
        assert p.returncode == 2 and ("outside the folder" in p.stderr or "not a name inside the folder" in p.stderr), (args, p.stderr)
        assert "Fix" in p.stderr and "Traceback" not in p.stderr and not p.stdout.strip(), p.stdout
    assert (tree_hash(d), tree_hash(tmp_path/"other")) == h

@case("outside folder", "validate exits 1: the graph's runners fail with 'outside the folder'; no PASS")
def test_validate_graph_outside_folder(exported, tmp_path):
    '`validate` on a folder whose genai_config names a graph outside it.'
    d = _copy_export(exported, tmp_path); _point_graph_outside(d, "relative", tmp_path)
    p = cli("validate", "embedded", d, "--sequence", "3,2", timeout=300)
    assert p.returncode in (1, 2) and "outside the folder" in p.stdout + p.stderr and "PASS" not in p.stdout.splitlines()[0:1], p.stdout + p.stderr

def _external_data_to(d:Path, location:str):
    import onnx
    m = onnx.load(str(d/"model.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location": e.value = location
    onnx.save(m, str(d/"model.onnx"))

@case("outside folder", "check exits 1: 'external data ... outside the folder'; generate exits 2")
@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_external_data_outside_folder(how, exported, tmp_path):
    "model.onnx's external-data location is `../x.data`, an absolute path, or a symlink out of the folder."
    d = _copy_export(exported, tmp_path); outside = tmp_path/"elsewhere.data"; shutil.copy2(d/"model.onnx.data", outside)
    if how == "symlink": (d/"model.onnx.data").unlink(); (d/"model.onnx.data").symlink_to(outside)
    else: _external_data_to(d, "../elsewhere.data" if how == "dotdot" else str(outside))
    p = cli("check", d)
    assert p.returncode == 1 and "outside the folder" in p.stdout and "FAIL" in p.stdout, p.stdout + p.stderr
    p = cli("generate", d, "reverse: abc", timeout=120)
    assert p.returncode == 2 and "Fix" in p.stderr and not p.stdout.strip(), p.stderr

@case("outside folder", "exit 2 / SourceError naming the shard and the index, with the fix; nothing written, source unchanged")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_shard_outside_source_refused(mode, how, tmp_path):
    'model.safetensors.index.json names a shard by absolute path or `../`.'
    src = src_copy(tmp_path); outside = tmp_path/"stolen.safetensors"; shutil.copy2(src/"model.safetensors", outside)
    name = str(outside) if how == "absolute" else "../stolen.safetensors"
    (src/"model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {"model.embed_tokens.weight": name}}))
    out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SourceError") and "model.safetensors.index.json names the shard" in msg and "Fix" in msg, msg
    assert_nothing_left(out)

# ---------------------------------------------------------------- wrong verdicts: numbers that can fail
def _with_nan(src:Path, tensor="model.layers.0.mlp.down_proj.weight"):
    from safetensors.numpy import load_file, save_file
    w = load_file(str(src/"model.safetensors")); w[tensor] = w[tensor].copy(); w[tensor].flat[::7] = float("nan")
    save_file(w, str(src/"model.safetensors"), metadata={"format": "pt"})

@case("wrong verdict", "export exits 2: 'NaN or infinite' naming the tensors, with the fix; nothing written")
def test_nan_weights_fail_the_export(tmp_path):
    'A source whose weights hold NaN (every 7th value of one tensor).'
    src = src_copy(tmp_path); _with_nan(src); out = tmp_path/"o"
    code, msg = export_fails("cli", src, out)
    assert code == 2 and "NaN or infinite" in msg and "Fix" in msg, msg
    assert_nothing_left(out)

def _poison_graph_weights(d:Path):
    "Write NaN over the first float initializer of layer 0 in model.onnx.data (the file the graph reads)."
    import numpy as np, onnx
    m = onnx.load(str(d/"model.onnx"), load_external_data=False)
    t = next(t for t in m.graph.initializer if t.data_type == 1 and "layers.0" in t.name and t.external_data)
    ext = {e.key: e.value for e in t.external_data}
    a = np.memmap(d/ext["location"], dtype=np.float32, mode="r+", offset=int(ext.get("offset", 0)), shape=(int(np.prod(t.dims)),))
    a[:] = np.nan; a.flush(); del a

@case("wrong verdict", "validate exits 1 on NaN logits ('NaN or inf'), never PASS with max |diff| 0")
def test_nan_logits_fail_validate(exported, tmp_path):
    'An export whose layer-0 weights were overwritten with NaN, validated against PyTorch.'
    d = _copy_export(exported, tmp_path); _poison_graph_weights(d)
    p = cli("validate", "embedded", d, "--runner", "onnxruntime", "--sequence", "3,2", timeout=300)
    assert p.returncode == 1 and "NaN or inf" in p.stdout and "FAIL" in p.stdout, p.stdout + p.stderr

@case("wrong verdict", "exit 2 naming the field, its value and config.json, with the fix; nothing written")
@pytest.mark.parametrize("field,value", [("max_position_embeddings", 0), ("sliding_window", -5)])
def test_unloadable_or_wrong_config_values_refused(field, value, tmp_path):
    '`max_position_embeddings: 0` (unloadable) or `sliding_window: -5` (wrong answers) in config.json.'
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text()); c[field] = value
    (src/"config.json").write_text(json.dumps(c)); out = tmp_path/"o"
    code, msg = export_fails("cli", src, out)
    assert code == 2 and f"`{field}` is {value}" in msg and "config.json" in msg and "Fix" in msg, msg
    assert_nothing_left(out)

@case("wrong verdict", "bench exits 2 on a missing export and when no ONNX runner can run a garbage one; never 0")
def test_bench_missing_or_garbage_export(exported, tmp_path):
    '`bench` on a folder that does not exist, and on one whose model.onnx is garbage.'
    p = cli("bench", "embedded", tmp_path/"nothing", "--runner", "ortgenai", timeout=120)
    assert p.returncode == 2 and "Fix" in p.stderr, p.stderr
    d = _copy_export(exported, tmp_path); (d/"model.onnx").write_bytes(b"garbage" * 50)
    p = cli("bench", "embedded", d, "--runner", "ortgenai", "--runner", "onnxruntime", "--prompt-len", 4, "--new-tokens", 4, "--repeats", 1, timeout=300)
    assert p.returncode in (1, 2) and "decode" not in p.stdout, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and ("could not run" in p.stderr or "not a readable ONNX model" in p.stderr), p.stderr

# ---------------------------------------------------------------- bounded work: refused before allocating, never a hang
@case("bounded work", "exit 2 in seconds naming the field and the size the weights hold; nothing written")
@pytest.mark.parametrize("field,value,words", [("num_hidden_layers", 10**9, "set num_hidden_layers to 4"),
                                               ("vocab_size", 10**9, "embed_tokens.weight has"),
                                               ("max_position_embeddings", 10**13, "rotary tables")], ids=["layers", "vocab", "context"])
def test_absurd_sizes_refused_before_allocating(field, value, words, tmp_path):
    '`num_hidden_layers`/`vocab_size` 1e9 or `max_position_embeddings` 1e13 in config.json.'
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text()); c[field] = value
    (src/"config.json").write_text(json.dumps(c)); out = tmp_path/"o"
    code, msg = export_fails("cli", src, out, timeout=120)          # a hang or a memory bomb fails by the timeout
    assert code == 2 and words in msg and "Fix" in msg, msg
    assert_nothing_left(out)

@case("bounded work", "exit 2 naming the FIFO, with the fix; no hang (bounded by the test's timeout)")
@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json", "SOURCE"])
def test_fifo_in_source_refused(name, tmp_path):
    'A FIFO named config.json, model.safetensors or tokenizer.json in the source, or the source itself a FIFO.'
    src = src_copy(tmp_path)
    if name == "SOURCE": shutil.rmtree(src); os.mkfifo(src)
    else: (src/name).unlink(); os.mkfifo(src/name)
    out = tmp_path/"o"
    p = cli("export", src, out, timeout=60)
    assert p.returncode == 2 and "FIFO" in p.stderr and "Fix" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert_nothing_left(out)

# ---------------------------------------------------------------- signals: clean exits, 130, leftovers of a killed run cleaned
@case("signals", "SIGHUP: exit 130; builder gone; nothing beside the output, $TMPDIR empty, source unchanged")
def test_sighup_during_export(tmp_path):
    'SIGHUP (the terminal closed) while the builder runs.'
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir(); out = tmp_path/"o"; src = src_copy(tmp_path); h = tree_hash(src)
    p, so, se, pids = _start_and_signal(["export", src, out], str(tmp_path), signal.SIGHUP, tmpdir)
    assert p.returncode == 130 and "interrupted" in se and "Traceback" not in se, (p.returncode, se)
    time.sleep(0.5)
    assert not any(_alive(pid) for pid in pids)
    assert_nothing_left(out); assert list(tmpdir.iterdir()) == [] and tree_hash(src) == h

@case("signals", "Ctrl-C pressed 4 times: exit 130 (never -2), one message, nothing beside the output, $TMPDIR empty")
def test_repeated_sigint_during_export(tmp_path):
    'Ctrl-C pressed four times in quick succession while the builder runs.'
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir(); out = tmp_path/"o"; src = src_copy(tmp_path)
    env = dict(os.environ, TMPDIR=str(tmpdir))
    p = subprocess.Popen([str(BIN/"mistral-onnx"), "export", str(src), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    t0, pids = time.time(), []
    while time.time() - t0 < 120 and not pids and p.poll() is None: pids = _find_builders(str(tmp_path)); time.sleep(0.05)
    assert pids, "the builder never started"
    for _ in range(4): p.send_signal(signal.SIGINT); time.sleep(0.02)
    so, se = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in se and se.count("error:") + se.count("interrupted") >= 1, (p.returncode, se)
    time.sleep(0.5)
    assert not any(_alive(pid) for pid in pids)
    assert_nothing_left(out); assert list(tmpdir.iterdir()) == []

@case("signals", "a dead export's $TMPDIR/mo-work-* is removed by the next export; a live one's and a stranger's are kept")
def test_killed_exports_work_folder_cleaned_by_next(tmp_path, monkeypatch):
    "$TMPDIR holding a SIGKILLed export's work folder, a running one's, and a folder that is not provably ours."
    import fcntl, tempfile
    from mistral_onnx.export import Transaction
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir(); monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    dead = tmpdir/"mo-work-dead0000"; dead.mkdir(); (dead/".owner").write_text("999999"); (dead/"cache").mkdir()
    stranger = tmpdir/"mo-work-notours"; stranger.mkdir()                       # no .owner lock: not provably ours
    live = tmpdir/"mo-work-live0000"; live.mkdir(); (live/".owner").write_text("")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR); "
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", str(live/".owner")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with Transaction(tmp_path/"o") as t: (t.tmp/"genai_config.json").write_text("{}"); t.commit()
        assert not dead.exists() and stranger.exists() and live.exists()
        assert sorted(x.name for x in tmpdir.iterdir()) == ["mo-work-live0000", "mo-work-notours"]   # its own work folder is gone too
    finally: holder.kill(); holder.wait()

PANEL_EXIT = """
import sys, time
from mistral_onnx.widgets import ExportPanel
p = ExportPanel(source=sys.argv[1], out=sys.argv[2]); p.start()
t0 = time.time()
while not any(s == "convert" and f > 0 for s, f, m in p.seen) and time.time() - t0 < 120: time.sleep(0.05)
print("converting", flush=True)
"""   # then the script ends with the export's thread running

@case("signals", "leaving Python while ExportPanel exports: exit 0; no lock, partial folder or $TMPDIR work folder left; builder gone")
def test_interpreter_exit_with_export_panel_running(tmp_path):
    "A script starts ExportPanel's export and ends while the builder runs."
    tmpdir = tmp_path/"tmp"; tmpdir.mkdir(); out = tmp_path/"o"; src = src_copy(tmp_path)
    p = subprocess.run([sys.executable, "-c", PANEL_EXIT, str(src), str(out)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, TMPDIR=str(tmpdir)))
    assert p.returncode == 0 and "converting" in p.stdout and "Traceback" not in p.stderr, p.stdout + p.stderr
    t0 = time.time()
    while _find_builders(str(tmp_path)) and time.time() - t0 < 10: time.sleep(0.1)
    assert not _find_builders(str(tmp_path)), "the builder outlived the interpreter"
    assert_nothing_left(out); assert [x.name for x in tmpdir.iterdir() if x.name.startswith("mo-")] == []   # torch's own caches may be there

# ---------------------------------------------------------------- translation: the cause named with field and file
@case("translation", "exit 2 naming the field, its value and config.json, with the fix; the builder never runs")
@pytest.mark.parametrize("field,value", [("rope_theta", "abc"), ("intermediate_size", "128"), ("rms_norm_eps", -1), ("tie_word_embeddings", "no")])
def test_config_field_wrong_type_named(field, value, tmp_path):
    'A config value of the wrong type: `rope_theta: "abc"`, `intermediate_size: "128"`, `rms_norm_eps: -1`, `tie_word_embeddings: "no"`.'
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text()); c[field] = value
    (src/"config.json").write_text(json.dumps(c)); out = tmp_path/"o"
    code, msg = export_fails("cli", src, out)
    assert code == 2 and f"`{field}` is {value!r}" in msg and "config.json" in msg and "Fix" in msg and "doctor" not in msg, msg
    assert_nothing_left(out)

@case("translation", "exit 2 naming the field, the weight that contradicts it and the value to set")
@pytest.mark.parametrize("field,fix", [("intermediate_size", "set intermediate_size to {}"), ("hidden_size", "set hidden_size to {}"),
                                       ("num_attention_heads", "q_proj"), ("hidden_130", "set hidden_size to {}")],
                         ids=["intermediate_size", "hidden_size", "num_attention_heads", "hidden_not_divisible"])
def test_config_inconsistent_with_weights_named(field, fix, tmp_path):
    "A size in config.json that the weights contradict (halved; heads set to the KV heads; hidden_size 130, not divisible by 8 heads, with no head_dim): named with the weight's shape, before the builder runs, never a wrong fix."
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text())
    if field == "hidden_130":       # the case: the fix used to be "set num_key_value_heads to 1"
        fix = fix.format(c["hidden_size"]); field = "hidden_size"; c["hidden_size"] = 130; c.pop("head_dim")
    else: fix = fix.format(c[field]); c[field] = c[field] // 2 if field != "num_attention_heads" else c["num_key_value_heads"]
    (src/"config.json").write_text(json.dumps(c)); out = tmp_path/"o"
    code, msg = export_fails("cli", src, out)
    assert code == 2 and field in msg and fix in msg and "doctor" not in msg and "set num_key_value_heads" not in msg, msg
    assert_nothing_left(out)

@case("translation", "the reader of the output exits (`| head`): exit 2 saying the pipe broke and how to keep the output, never 'free space'; nothing left")
def test_broken_pipe_during_export(tmp_path):
    "`mistral-onnx export ... | head -1`: the reader goes away after the first line."
    out = tmp_path/"o"; tmpdir = tmp_path/"tmp"; tmpdir.mkdir()
    p = subprocess.Popen([str(BIN/"mistral-onnx"), "export", "embedded", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=dict(os.environ, TMPDIR=str(tmpdir)))
    p.stdout.readline(); p.stdout.close()                      # as `head -1` does
    err = p.stderr.read(); p.wait(timeout=300)
    assert p.returncode == 2 and "broken pipe" in err and "Fix" in err and "free space" not in err and "Traceback" not in err, (p.returncode, err)
    assert "Exception ignored" not in err
    assert_nothing_left(out); assert list(tmpdir.iterdir()) == []

@case("translation", "generate --ep cuda on a CPU-only install: exit 2 saying what to install, not 'run check'")
def test_generate_cuda_on_cpu_install(exported):
    "`mistral-onnx generate OUT PROMPT --ep cuda` where only the CPU runtime is installed."
    from mistral_onnx.env import available_providers
    if "cuda" in available_providers(): pytest.skip("this machine has a CUDA provider")
    p = cli("generate", exported["fp32"], "reverse: abc", "--ep", "cuda", timeout=120)
    assert p.returncode == 2 and "mistral_onnx[cuda]" in p.stderr and "mistral-onnx check" not in p.stderr and not p.stdout.strip(), p.stderr

@case("translation", "exit 2 naming the tokenizer file that does not parse, with the fix")
@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json"])
def test_corrupt_tokenizer_file_named(name, tmp_path):
    'tokenizer.json or tokenizer_config.json cut in half.'
    src = src_copy(tmp_path); f = src/name; f.write_text(f.read_text()[: len(f.read_text()) // 2]); out = tmp_path/"o"
    code, msg = export_fails("cli", src, out)
    assert code == 2 and name in msg and "Fix" in msg and "copy" in msg, msg
    assert_nothing_left(out)

def _tool_fails_unknown(job):
    for i in range(50): job.log(f"tool line {i}")
    job.log("SomeToolError: something nobody foresaw")
    raise ExportError("the tool failed (exit 1). Last lines:\n  SomeToolError: something nobody foresaw\nFix: run `mistral-onnx doctor` to see.")

@case("translation", "an unknown route failure keeps the tool's message and points to its full log beside the output, not to doctor")
def test_unknown_route_failure_keeps_its_log(tmp_path, monkeypatch):
    "A route that fails for a reason nobody translated (its message says 'run doctor')."
    monkeypatch.setitem(ROUTES, "unknown-failure", Route("unknown-failure", "a test route that fails for no known reason", _tool_fails_unknown, {"cpu": ("fp32",)}))
    out = tmp_path/"o"
    with pytest.raises(ExportError) as ei: export("embedded", out, route="unknown-failure")
    msg = str(ei.value)
    assert "SomeToolError: something nobody foresaw" in msg and "doctor" not in msg and "full log is kept at" in msg, msg
    logs = list(tmp_path.glob("o.export-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in msg and "tool line 49" in logs[0].read_text()
    assert_nothing_left(out)

@case("translation", "a real builder failure nobody translates (unknown hidden_act): exit 2 with the builder's own error and its log kept")
def test_unknown_builder_failure_points_to_log(tmp_path):
    '`hidden_act: no_such_activation`: the model builder itself fails.'
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text()); c["hidden_act"] = "no_such_activation"
    (src/"config.json").write_text(json.dumps(c)); out = tmp_path/"o"
    code, msg = export_fails("cli", src, out)
    assert code == 2 and "no_such_activation" in msg and "full log is kept at" in msg and "doctor" not in msg, msg
    logs = list(tmp_path.glob("o.export-error-*.log"))
    assert len(logs) == 1 and "no_such_activation" in logs[0].read_text()
    assert_nothing_left(out)

# ---------------------------------------------------------------- options: every value checked at the edge
OPTIONS = {"top_k": (["generate", "X", "p", "--top-k", "-5"], "--top-k is -5; allowed: an integer >= 1"),
           "top_p": (["generate", "X", "p", "--top-p", "2"], "--top-p is 2.0; allowed: a finite number > 0 and <= 1"),
           "temperature_nan": (["generate", "X", "p", "--temperature", "nan"], "--temperature is nan; allowed: a finite number > 0"),
           "seed": (["generate", "X", "p", "--seed", "-1"], "allowed: an integer >= 0"),
           "demo_n_0": (["demo", "-n", "0"], "-n is 0; allowed: an integer >= 1"),
           "demo_n_neg": (["demo", "-n", "-5"], "-n is -5; allowed: an integer >= 1"),
           "min_accuracy": (["demo", "--min-accuracy", "1.5"], "allowed: a finite number >= 0 and <= 1"),
           "accuracy_prompts": (["validate", "embedded", "X", "--accuracy-prompts", "-1"], "--accuracy-prompts is -1; allowed: an integer >= 1"),
           "decode_steps": (["validate", "embedded", "X", "--decode-steps", "0"], "allowed: an integer >= 1"),
           "repeats": (["bench", "embedded", "X", "--repeats", "0"], "--repeats is 0; allowed: an integer >= 1 and <= 1000"),
           "new_tokens": (["bench", "embedded", "X", "--new-tokens", "1"], "--new-tokens is 1; allowed: an integer >= 2"),
           "not_a_number": (["generate", "X", "p", "--top-k", "many"], "'many' is not an integer")}

@case("options", "exit 2 before any work, naming the option, the value and the allowed range; no traceback")
@pytest.mark.parametrize("case_", list(OPTIONS))
def test_cli_option_out_of_range(case_, tmp_path):
    'A flag outside its range: --top-k -5, --top-p 2, --temperature nan, demo -n 0, --accuracy-prompts -1, ...'
    args, words = OPTIONS[case_]
    p = cli(*[str(tmp_path/"x") if a == "X" else a for a in args], timeout=60)
    assert p.returncode == 2 and words in p.stderr and "Fix" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert list(tmp_path.iterdir()) == [] and not p.stdout.strip()

@case("options", "validate --sequence not PROMPT,STEPS: exit 2 naming the form")
def test_cli_sequence_malformed(exported):
    '`validate --sequence 3,x`.'
    p = cli("validate", "embedded", exported["fp32"], "--sequence", "3,x", timeout=120)
    assert p.returncode == 2 and "PROMPT,STEPS" in p.stderr and "Fix" in p.stderr, p.stderr

@case("options", "panels refuse a bad value with BadOption naming what is allowed (never a TraitError or a silent clamp)")
def test_panel_options_refused():
    'Panels built with an unknown route or provider, max tokens 0 or 10000, prompt length -1, repeats 0.'
    from mistral_onnx.env import BadOption
    from mistral_onnx.widgets import ExportPanel, ChatPanel, BenchPanel
    for make, words in ((lambda: ExportPanel(route="nope"), "Unknown route 'nope'"),
                        (lambda: ExportPanel(execution_provider="tpu"), "not available here"),
                        (lambda: ChatPanel(max_new_tokens=0), "allowed: an integer >= 1 and <= 512"),
                        (lambda: ChatPanel(max_new_tokens=10_000), "allowed: an integer >= 1 and <= 512"),
                        (lambda: BenchPanel(prompt_len=-1), "allowed: an integer >= 1"),
                        (lambda: BenchPanel(repeats=0), "allowed: an integer >= 1 and <= 1000")):
        with pytest.raises(BadOption, match=words): make()

# ---------------------------------------------------------------- check PASS means generate starts (04_check, 07_generate: folder helper)
def _truncate_data(d): f = d/"model.onnx.data"; b = f.read_bytes(); f.write_bytes(b[: len(b) // 2])
def _genai_set(path, value):
    def damage(d):
        f = d/"genai_config.json"; g = json.loads(f.read_text()); node = g
        *head, last = path
        for k in head: node = node[k]
        if value is KeyError: node.pop(last, None); g.get("search", {}).pop("max_length", None)
        else: node[last] = value
        f.write_text(json.dumps(g))
    return damage
def _no_tokenizer(d): (d/"tokenizer.json").unlink()
def _corrupt_tokenizer(d): f = d/"tokenizer.json"; f.write_text(f.read_text()[:500])

UNLOADABLE = {"data_truncated": (_truncate_data, "truncated"),
              "context_string": (_genai_set(("model", "context_length"), "abc"), "model.context_length"),
              "context_negative": (_genai_set(("model", "context_length"), -5), "context length"),
              "context_missing": (_genai_set(("model", "context_length"), KeyError), "context length"),
              "tokenizer_missing": (_no_tokenizer, "tokenizer"),
              "tokenizer_corrupt": (_corrupt_tokenizer, "tokenizer")}

@case("wrong verdict", "check exits 1 naming what ORT GenAI would trip on (2 for a context_length that is not a number, refused as genai_config is read); generate exits 2 with the fix and prints no answer")
@pytest.mark.parametrize("case_", list(UNLOADABLE))
def test_check_pass_means_generate_starts(case_, exported, tmp_path):
    'A folder ORT GenAI cannot use: truncated model.onnx.data, context_length a string/negative/missing, tokenizer.json missing or corrupt.'
    d = _copy_export(exported, tmp_path); damage, words = UNLOADABLE[case_]; damage(d); h = tree_hash(d)
    p = cli("check", d, timeout=120)
    if case_ == "context_string":     # a field of the wrong type is refused as genai_config.json is read (`folder.check_genai_types`): exit 2
        assert p.returncode == 2 and words in p.stderr and "Fix" in p.stderr and "Traceback" not in p.stderr, p.stdout + p.stderr
    else: assert p.returncode == 1 and words in p.stdout and "FAIL" in p.stdout.splitlines()[0], p.stdout + p.stderr
    p = cli("generate", d, "reverse: abc", timeout=120)
    assert p.returncode == 2 and "Fix" in p.stderr and "Traceback" not in p.stderr and not p.stdout.strip(), (p.stdout, p.stderr)
    assert tree_hash(d) == h, "check or generate changed the folder"

@case("wrong verdict", "generate on NaN logits exits 2 ('NaN or infinite') instead of printing an empty answer with exit 0")
def test_generate_nan_logits_refused(exported, tmp_path):
    '`generate` on an export whose weights hold NaN.'
    d = _copy_export(exported, tmp_path); _poison_graph_weights(d)
    p = cli("generate", d, "reverse: abc", timeout=120)
    assert p.returncode == 2 and "NaN or infinite" in p.stderr and "Fix" in p.stderr and not p.stdout.strip(), (p.stdout, p.stderr)

@case("wrong verdict", "diagnose exits 1 on a model folder whose config says 8 KV heads where the weights hold 2, naming k_proj")
def test_diagnose_reads_the_weights(tmp_path):
    '`diagnose` on a model folder whose config says 8 KV heads where the weights hold 2.'
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text())
    (src/"config.json").write_text(json.dumps({**c, "num_key_value_heads": 8}))
    p = cli("diagnose", src, timeout=120)
    assert p.returncode == 1 and "k_proj" in p.stdout, p.stdout + p.stderr

# ---------------------------------------------------------------- bounded work in exported folders
def _layers_1e9_genai(d):
    (d/"export_report.json").unlink()
    f = d/"genai_config.json"; g = json.loads(f.read_text()); g["model"]["decoder"]["num_hidden_layers"] = 10**9; f.write_text(json.dumps(g))
def _layers_1e9_report(d):
    f = d/"export_report.json"; r = json.loads(f.read_text()); r["source_config"]["num_hidden_layers"] = 10**9; f.write_text(json.dumps(r))

@case("bounded work", "check exits 1, generate 2, diagnose 1, in seconds (no MemoryError): the layer count beyond the graph named")
@pytest.mark.parametrize("where", ["genai_config", "export_report"])
def test_absurd_layer_count_in_folder(where, exported, tmp_path):
    "`num_hidden_layers: 1e9` in an export's genai_config or report, then check, generate, diagnose."
    d = _copy_export(exported, tmp_path); (_layers_1e9_genai if where == "genai_config" else _layers_1e9_report)(d)
    for args, code in ((("check", d), 1), (("generate", d, "reverse: abc"), 2), (("diagnose", d), 1)):
        p = cli(*args, timeout=120)                          # a memory bomb fails by the timeout (or MemoryError's exit 1 + traceback)
        assert p.returncode == code and "1000000000" in p.stdout + p.stderr and "Traceback" not in p.stderr, (args, p.returncode, p.stdout[-500:], p.stderr[-500:])

@case("bounded work", "a FIFO named model.onnx / genai_config.json / a workflow json: exit 2 naming the FIFO; no hang")
@pytest.mark.parametrize("name", ["model.onnx", "genai_config.json", "workflow"])
def test_fifo_in_export_refused(name, exported, tmp_path):
    'A FIFO named model.onnx or genai_config.json in an export, or given to diagnose as a workflow json.'
    if name == "workflow": target = tmp_path/"wf.json"; os.mkfifo(target); cmds = [("diagnose", target)]
    else:
        d = _copy_export(exported, tmp_path); (d/name).unlink(); os.mkfifo(d/name)
        cmds = [("check", d), ("generate", d, "reverse: abc")]
    for args in cmds:
        p = cli(*args, timeout=60)
        assert p.returncode == 2 and "FIFO" in p.stderr and "Fix" in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)

@case("translation", "a file a command cannot write (here /proc/version): exit 2 with the system's reason and the fix, not 'unexpected'")
def test_unwritable_output_file_named(tmp_path):
    "`diagnose wf.json --write-fixed /proc/version --overwrite`: the write itself fails."
    wf = _olive_workflow(tmp_path)
    p = cli("diagnose", wf, "--write-fixed", "/proc/version", "--overwrite", timeout=60)
    assert p.returncode == 2 and "error:" in p.stderr and "Fix" in p.stderr and "unexpected" not in p.stderr and "Traceback" not in p.stderr, p.stderr

# ---------------------------------------------------------------- round 3 (issue 26): ownership, atomic writes, typed arguments
@case("data loss", "exit 2 / ExportError: 'is not an export folder' with the fix; a folder holding genai_config.json {} and a user file unchanged")
@pytest.mark.parametrize("mode", MODES)
def test_overwrite_refuses_a_folder_with_only_a_genai_config(mode, tmp_path):
    "A file named genai_config.json does not make a folder an export: only the marker this package writes does."
    out = tmp_path/"mine"; out.mkdir(); (out/"genai_config.json").write_text("{}"); (out/"thesis.tex").write_text("years of work")
    h = tree_hash(out)
    code, msg = export_fails(mode, "embedded", out, "--overwrite")
    assert code in (2, "ExportError") and "is not an export folder" in msg and "Fix" in msg, msg
    assert_nothing_left(out, old_hash=h)
    assert (out/"thesis.tex").read_text() == "years of work"

def _limit_file_size(limit):
    "preexec_fn: files the child writes stop at `limit` bytes (a write past it fails with EFBIG, as on a full disk), SIGXFSZ ignored."
    def set_limit():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit

@case("data loss", "a write that fails half-way (file size limit): exit 2 naming the file and 'unchanged', with the fix; the old file kept whole, no temporary file beside it")
def test_failing_write_keeps_the_old_file(tmp_path):
    "`diagnose wf.json --write-fixed F --overwrite` when the write of F fails after 64 bytes."
    wf = _olive_workflow(tmp_path); target = tmp_path/"fixed.json"; target.write_text("my earlier fix")
    p = cli("diagnose", wf, "--write-fixed", target, "--overwrite", timeout=120, preexec_fn=_limit_file_size(64))
    assert p.returncode == 2 and str(target) in p.stderr and "unchanged" in p.stderr and "Fix" in p.stderr and "Traceback" not in p.stderr, (p.returncode, p.stderr)
    assert target.read_text() == "my earlier fix"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["fixed.json", "m", "wf.json"], sorted(x.name for x in tmp_path.iterdir())

@case("data loss", "exit 0; unmarked `.OUT.partial-*` / `.OUT.old-N` folders (named like a killed export's, not written by us) left as they were")
def test_stale_cleanup_leaves_unmarked_folders(tmp_path):
    "Folders that merely match the names of a killed export's leftovers, without this package's marker, are the user's."
    out = tmp_path/"o"; theirs = [tmp_path/".o.partial-abcd1234", tmp_path/".o.old-4242"]
    for d in theirs: d.mkdir(); (d/"notes.txt").write_text(f"mine: {d.name}")
    hashes = {d: tree_hash(d) for d in theirs}
    r = export("embedded", out)
    assert r.report["kv_check"]["ok"] and (out/"model.onnx").exists()
    for d in theirs: assert d.is_dir() and tree_hash(d) == hashes[d], d
    assert not (out/"notes.txt").exists()

@case("options", "BadOption naming overwrite and 'True or False'; the existing export unchanged, nothing beside it")
def test_export_overwrite_must_be_a_bool(exported, tmp_path):
    'export(..., overwrite="no") in Python: a string is not a yes.'
    from mistral_onnx.env import BadOption
    out = _copy_export(exported, tmp_path, "out"); h = tree_hash(out)
    with pytest.raises(BadOption) as ei: export("embedded", out, overwrite="no")
    assert "overwrite" in str(ei.value) and "True or False" in str(ei.value), str(ei.value)
    assert_nothing_left(out, old_hash=h)

# ---------------------------------------------------------------- round 3: wrong verdicts
@case("wrong verdict", "check exits non-zero naming the genai_config field, its type and the fix (no traceback, no 'unexpected'); OnnxLM raises CheckError saying the same")
@pytest.mark.parametrize("path,value,field", [(("model", "eos_token_id"), "2", "model.eos_token_id"),
                                              (("model", "decoder", "inputs"), "x", "model.decoder.inputs")], ids=["eos_string", "inputs_string"])
def test_genai_config_wrong_types_named(path, value, field, exported, tmp_path):
    "genai_config.json with `eos_token_id: \"2\"` or `decoder.inputs: \"x\"`, as a hand edit leaves it."
    d = _copy_export(exported, tmp_path); _genai_set(path, value)(d)
    p = cli("check", d, timeout=120); text = p.stdout + p.stderr
    assert p.returncode != 0 and field in text and "Fix" in text and "Traceback" not in text and "unexpected" not in text, text
    with pytest.raises(CheckError) as ei: OnnxLM(d)
    assert field in str(ei.value) and "Fix" in str(ei.value)

@case("wrong verdict", "exit 2 / SourceError: a local folder named `embedded` is never replaced by the shipped model; the fix says ./embedded; nothing written")
@pytest.mark.parametrize("mode", MODES)
def test_local_folder_named_embedded_refused(mode, tmp_path, monkeypatch):
    "`mistral-onnx export embedded OUT` run where ./embedded is the user's own model."
    mine = src_copy(tmp_path, "embedded"); h = tree_hash(mine); out = tmp_path/"o"
    monkeypatch.chdir(tmp_path)
    code, msg = export_fails(mode, "embedded", out, cwd=tmp_path) if mode == "cli" else export_fails(mode, "embedded", out)
    assert code in (2, "SourceError") and "./embedded" in msg and "Fix" in msg, msg
    assert tree_hash(mine) == h
    assert_nothing_left(out)

@case("wrong verdict", "export exit 0 with a note naming the stored float32 and the declared bfloat16, and the --precision to pass")
def test_fp32_weights_under_a_bf16_config_noted(tmp_path):
    "config.json says bfloat16 while model.safetensors holds float32: the export says so instead of deciding silently."
    src = src_copy(tmp_path); c = json.loads((src/"config.json").read_text())
    (src/"config.json").write_text(json.dumps({**c, "dtype": "bfloat16", "torch_dtype": "bfloat16"}))
    p = cli("export", src, tmp_path/"o")
    assert p.returncode == 0, p.stderr
    text = p.stdout + p.stderr
    assert "bfloat16" in text and "float32" in text and "--precision" in text, text

# ---------------------------------------------------------------- round 3: unclear errors
def _bad_config(edit):
    def damage(src):
        c = json.loads((src/"config.json").read_text()); edit(c); (src/"config.json").write_text(json.dumps(c))
    return damage

BUILDER_FIELDS = {"architectures_missing": (_bad_config(lambda c: c.pop("architectures", None)), "architectures"),
                  "rope_scaling_not_object": (_bad_config(lambda c: c.update(rope_scaling="linear")), "rope_scaling"),
                  "rope_type_unknown": (_bad_config(lambda c: c.update(rope_scaling={"rope_type": "bogus", "factor": 2.0})), "rope_scaling.rope_type"),
                  "rope_factor_text": (_bad_config(lambda c: c.update(rope_scaling={"rope_type": "linear", "factor": "two"})), "rope_scaling.factor")}

@case("translation", "exit 2 / SourceError naming config.json and the field (architectures, rope_scaling...), with the fix, before the builder runs; nothing written")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case_", list(BUILDER_FIELDS))
def test_builder_config_fields_named(case_, mode, tmp_path):
    "Fields the model builder reads unchecked (and then fails on with a TypeError): a missing architectures, a bad rope_scaling."
    src = src_copy(tmp_path); damage, field = BUILDER_FIELDS[case_]; damage(src); out = tmp_path/"o"
    code, msg = export_fails(mode, src, out)
    assert code in (2, "SourceError") and field in msg and "config.json" in msg and "Fix" in msg and "TypeError" not in msg, msg
    assert_nothing_left(out)

@case("options", "BadOption naming max_new_tokens and 'a whole number' (never a raw TypeError)")
@pytest.mark.parametrize("how", ["generate", "stream_ids"])
def test_float_max_new_tokens_refused(how, exported):
    "`max_new_tokens=2.0` in Python."
    from mistral_onnx.env import BadOption
    lm = OnnxLM(exported["fp32"])
    with pytest.raises(BadOption) as ei:
        if how == "generate": lm.generate("reverse: abc", max_new_tokens=2.0)
        else: list(lm.stream_ids([1, 40, 50], max_new_tokens=2.0))
    assert "max_new_tokens" in str(ei.value) and "whole number" in str(ei.value), str(ei.value)

@case("options", "numpy ids in range (an array, or numpy ints in a list) generate the same tokens as Python ints")
def test_numpy_ids_accepted(exported):
    np = pytest.importorskip("numpy")
    lm = OnnxLM(exported["fp32"]); ids = [1, 40, 50, 60]
    want = list(lm.stream_ids(ids, max_new_tokens=4))
    assert list(lm.stream_ids(np.array(ids, dtype=np.int64), max_new_tokens=4)) == want
    assert list(lm.stream_ids([np.int32(i) for i in ids], max_new_tokens=4)) == want

@case("options", "bench --json / --html into a folder that does not exist: exit 2 before measuring, naming the path")
@pytest.mark.parametrize("flag", ["--json", "--html"])
def test_bench_output_path_checked_before_measuring(flag, exported, tmp_path):
    "`bench ... --json DIR/r.out` where DIR does not exist (a path that is a folder was refused before measuring already)."
    f = tmp_path/"nowhere"/"r.out"
    p = cli("bench", "embedded", exported["fp32"], flag, f, "--runner", "ortgenai", timeout=60)
    assert p.returncode == 2 and str(f) in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert "ortgenai" not in p.stdout and "tokens/s" not in p.stdout, p.stdout      # nothing measured

# ---------------------------------------------------------------- round 3: check PASS proves what generate needs
def _set_template(t):
    def damage(d):
        f = d/"tokenizer_config.json"; c = json.loads(f.read_text()); c["chat_template"] = t; f.write_text(json.dumps(c))
    return damage

def _context_beyond_graph(d):
    f = d/"genai_config.json"; g = json.loads(f.read_text()); g["model"]["context_length"] = g["search"]["max_length"] = 4096
    f.write_text(json.dumps(g))

def _token_beyond_vocab(d):
    f = d/"tokenizer.json"; t = json.loads(f.read_text())
    t["added_tokens"].append({"id": 416, "content": "<|tool|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    f.write_text(json.dumps(t))

GENERATE_NEEDS = {"template_does_not_render": (_set_template("{% for m in messages %}{{ m['content'] }{% endfor %}"), "chat template", "tokenizer_config.json"),
                  "context_beyond_rotary_table": (_context_beyond_graph, "context length", "model.context_length"),
                  "tokenizer_id_beyond_vocab": (_token_beyond_vocab, "tokenizer ids", "vocab_size 416"),
                  "eos_outside_vocab": (_genai_set(("model", "eos_token_id"), 416), "genai_config eos_token_id", "model.eos_token_id"),
                  "eos_list_outside_vocab": (_genai_set(("model", "eos_token_id"), [2, 100000]), "genai_config eos_token_id", "model.eos_token_id"),
                  "bos_outside_vocab": (_genai_set(("model", "bos_token_id"), 416), "genai_config bos_token_id", "model.bos_token_id")}

@case("wrong verdict", "check exits 1 with a FAIL row naming the file or field and the fix; generate exits 2 with the fix and prints no answer")
@pytest.mark.parametrize("case_", list(GENERATE_NEEDS))
def test_check_proves_what_generate_needs(case_, exported, tmp_path):
    "A chat template that does not render, a context longer than the graph's rotary table, tokenizer ids beyond vocab_size, bos/eos outside the vocabulary."
    d = _copy_export(exported, tmp_path); damage, row, named = GENERATE_NEEDS[case_]; damage(d); h = tree_hash(d)
    p = cli("check", d, timeout=120)
    fails = [l for l in p.stdout.splitlines() if l.strip().startswith("FAIL")]
    assert p.returncode == 1 and "FAIL" in p.stdout.splitlines()[0] and any(row in l and named in l and "Fix" in l for l in fails), p.stdout + p.stderr
    p = cli("generate", d, "reverse: abc", timeout=120)
    assert p.returncode == 2 and "Fix" in p.stderr and "Traceback" not in p.stderr and not p.stdout.strip(), (p.stdout, p.stderr)
    assert tree_hash(d) == h, "check or generate changed the folder"

# ---------------------------------------------------------------- the matrix itself
def test_every_case_is_classed():
    "Every test here carries `@case(class, outcome)`: the reliability matrix page is generated from them and cannot miss one."
    missing = [n for n, f in globals().items() if n.startswith("test_") and callable(f) and n != "test_every_case_is_classed"
               and not hasattr(f, "reliability")]
    assert not missing, f"tests without @case(...): {missing}"
