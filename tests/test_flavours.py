"""Runtime flavours: doctor and export must accept a CUDA-flavoured install, and say so when two flavours share one module.

On an NVIDIA machine the `onnxruntime` and `onnxruntime_genai` modules come from the distributions `onnxruntime-gpu`
and `onnxruntime-genai-cuda`, not `onnxruntime` and `onnxruntime-genai` (issue 13: export refused exactly that install).
CI has no GPU and no CUDA wheels, so these tests show the package the same modules under the CUDA distributions'
names: a throwaway folder holds a copy of each CPU distribution's metadata renamed to its CUDA twin (its RECORD naming
the very files on disk, through a link to the installed module), and a `sitecustomize` hides the CPU distributions
from `importlib.metadata`. The commands run as a user types them, in subprocesses that see only that metadata.
The two-flavours case keeps both distributions' metadata, one of whose RECORD no longer matches the files on disk
(what pip leaves when a second flavour is installed over the first)."""
import json, os, re, shutil, subprocess, sys
from importlib import metadata
from pathlib import Path
import pytest
from conftest import cli

CPU = {"onnxruntime": "onnxruntime", "onnxruntime_genai": "onnxruntime-genai"}
CUDA = {"onnxruntime": "onnxruntime-gpu", "onnxruntime_genai": "onnxruntime-genai-cuda"}

SITECUSTOMIZE = '''
import os
from importlib import machinery
_hide = {p for p in os.environ.get("MO_HIDE_DIST_INFO", "").split(os.pathsep) if p}
_orig = machinery.PathFinder.find_distributions
def _find_distributions(cls, *a, **k):
    for d in _orig(*a, **k):
        if str(getattr(d, "_path", "")) not in _hide: yield d
machinery.PathFinder.find_distributions = classmethod(_find_distributions)
'''

def _dist_info(dist) -> Path:
    return next(f for f in dist.files if f.name == "METADATA").locate().parent

def _clone(real:str, name:str, site:Path, stale:bool=False, version:str|None=None):
    """Copy distribution `real`'s metadata into `site` as distribution `name` (at `version`, default the real one);
    `stale`: its native library's hash is another build's."""
    d = metadata.distribution(real); src = _dist_info(d); version = version or d.version
    dst = site/f"{name.replace('-', '_')}-{version}.dist-info"; shutil.copytree(src, dst)
    if name != real or version != d.version:
        meta = [f"Name: {name}" if l.startswith("Name:") else f"Version: {version}" if l.startswith("Version:") else
                l.replace(f"Requires-Dist: {CPU['onnxruntime']}>", f"Requires-Dist: {CUDA['onnxruntime']}>") for l in (dst/"METADATA").read_text().splitlines()]
        (dst/"METADATA").write_text("\n".join(meta) + "\n")
    rows = [r.replace(src.name + "/", dst.name + "/") for r in (dst/"RECORD").read_text().splitlines()]
    if stale:
        native = max((i for i, r in enumerate(rows) if any(x in r for x in (".so,", ".pyd,", ".dll,"))),
                     key=lambda i: int(rows[i].rsplit(",", 1)[1] or 0))
        path, h, size = rows[native].rsplit(",", 2); algo, digest = h.split("=", 1)
        rows[native] = f"{path},{algo}={digest[::-1]},{size}"
    (dst/"RECORD").write_text("\n".join(rows) + "\n")
    for top in (dst/"top_level.txt").read_text().split():
        if not (site/top).exists(): (site/top).symlink_to(d.locate_file(top), target_is_directory=True)

def _env(tmp_path:Path, case:str, genai_version:str|None=None) -> dict:
    """The environment of a subprocess that sees one case: 'cuda' (only the CUDA distributions), 'cuda-over-cpu'
    (both, the CUDA build's files on disk), 'cpu-over-cuda' (both, the CPU build's files on disk)."""
    site = tmp_path/f"site-{case}"; site.mkdir()
    (site/"sitecustomize.py").write_text(SITECUSTOMIZE)
    hide = []
    for mod in CPU:
        real = _dist_info(metadata.distribution(CPU[mod]))
        if case == "cuda": _clone(CPU[mod], CUDA[mod], site, version=genai_version if mod == "onnxruntime_genai" else None); hide.append(real)
        elif case == "cuda-over-cpu":
            _clone(CPU[mod], CUDA[mod], site); (site/"stale").mkdir(exist_ok=True)
            _clone(CPU[mod], CPU[mod], site/"stale", stale=True); hide.append(real)
        elif case == "cpu-over-cuda": _clone(CPU[mod], CUDA[mod], site, stale=True)
        else: raise ValueError(case)
    path = [str(site)] + ([str(site/"stale")] if case == "cuda-over-cpu" else []) + [os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), "MO_HIDE_DIST_INFO": os.pathsep.join(map(str, hide))}

def _py(env:dict, code:str) -> dict:
    "Run `code` (which prints one JSON value) in a subprocess with `env`; return the value."
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])

RUNTIMES = """
import json
from importlib import metadata
from mistral_onnx.env import runtime
out = {}
for m in ("onnxruntime", "onnxruntime_genai"):
    r = runtime(m)
    out[m] = {"installed": r.installed, "active": r.active, "flavour": r.flavour, "conflict": r.conflict, "repair": r.repair(), "str": str(r)}
out["seen"] = sorted(d.metadata["Name"] for d in metadata.distributions() if "onnxruntime" in (d.metadata["Name"] or ""))
print(json.dumps(out))
"""

def test_cuda_flavour_is_read_from_the_module(tmp_path):
    env = _env(tmp_path, "cuda")
    r = _py(env, RUNTIMES)
    assert r["seen"] == ["onnxruntime-genai-cuda", "onnxruntime-gpu"]        # the disguise holds: no CPU distribution visible
    assert r["onnxruntime_genai"]["active"] == "onnxruntime-genai-cuda" and r["onnxruntime_genai"]["flavour"] == "cuda"
    assert r["onnxruntime"]["active"] == "onnxruntime-gpu" and r["onnxruntime"]["flavour"] == "cuda"
    assert not r["onnxruntime"]["conflict"] and not r["onnxruntime_genai"]["conflict"]

def test_doctor_and_export_accept_cuda_flavour(tmp_path):
    "Issue 13: `export` refused an install whose onnxruntime_genai came from onnxruntime-genai-cuda."
    env = _env(tmp_path, "cuda")
    p = cli("doctor", "--json", env=env); assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["routes"]["builder"]["works"], rep["routes"]["builder"]
    shown = json.dumps(rep["versions"])
    assert "onnxruntime-genai-cuda" in shown and "onnxruntime-gpu" in shown, rep["versions"]   # the flavour is named
    assert "not installed" not in " ".join(rep["routes"]["builder"]["problems"])
    p = cli("doctor", "--route", "builder", env=env); assert p.returncode == 0, p.stdout + p.stderr
    out = tmp_path/"out"
    p = cli("export", "embedded", out, env=env); assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads((out/"export_report.json").read_text())
    assert "onnxruntime-genai-cuda" in json.dumps(report["versions"]), report["versions"]
    p = cli("check", out, env=env); assert p.returncode == 0 and "PASS" in p.stdout, p.stdout + p.stderr

@pytest.mark.parametrize("case,on_disk,other", [("cuda-over-cpu", "onnxruntime-genai-cuda", "onnxruntime-genai"),
                                                ("cpu-over-cuda", "onnxruntime-genai", "onnxruntime-genai-cuda")])
def test_two_flavours_named_with_repair(tmp_path, case, on_disk, other):
    "Both flavours' distributions installed: the one whose files are on disk is active, and doctor says how to repair."
    env = _env(tmp_path, case)
    r = _py(env, RUNTIMES)["onnxruntime_genai"]
    assert r["conflict"] and set(r["installed"]) == {on_disk, other}
    assert r["active"] == on_disk, r
    assert "pip uninstall" in r["repair"] and on_disk in r["repair"] and other in r["repair"]
    p = cli("doctor", env=env)
    assert on_disk in p.stdout and other in p.stdout and "pip uninstall" in p.stdout, p.stdout + p.stderr
    p = cli("doctor", "--json", env=env)
    assert "pip uninstall" in p.stdout and other in p.stdout, p.stdout + p.stderr

def test_fix_names_the_installed_flavour(tmp_path):
    "A CUDA install too old for the builder: the fix upgrades onnxruntime-genai-cuda; it must not install the CPU flavour beside it."
    env = _env(tmp_path, "cuda", genai_version="0.13.0")
    p = cli("doctor", "--json", env=env)
    rep = json.loads(p.stdout); b = rep["routes"]["builder"]
    assert not b["works"] and any("0.13.0" in x for x in b["problems"]), b
    assert "onnxruntime-genai-cuda" in b["fix"], b["fix"]
    assert not re.search(r"(^|[\s'\"])onnxruntime-genai(?!-cuda)\b", b["fix"]), b["fix"]   # the CPU distribution would make two flavours
    p = cli("export", "embedded", tmp_path/"out", env=env)
    assert p.returncode == 2 and "onnxruntime-genai-cuda" in p.stderr and not (tmp_path/"out").exists(), p.stderr

NO_RUNTIME = '''
import sys
from importlib import machinery
class _Block:
    "As if neither runtime were installed: their modules cannot be imported, their metadata is not found."
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in ("onnxruntime", "onnxruntime_genai"): raise ModuleNotFoundError(f"No module named {name!r}", name=name)
_orig = machinery.PathFinder.find_distributions
def _fd(cls, *a, **k):
    for d in _orig(*a, **k):
        if (d.metadata["Name"] or "").lower() not in ("onnxruntime", "onnxruntime-genai"): yield d
machinery.PathFinder.find_distributions = classmethod(_fd)
sys.meta_path.insert(0, _Block)
'''

def test_no_runtime_says_which_extra(tmp_path):
    "`pip install mistral_onnx` with no extra installs no runtime: doctor says to pick the `cpu` or `cuda` extra, no traceback."
    (tmp_path/"sitecustomize.py").write_text(NO_RUNTIME)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(tmp_path), os.environ.get("PYTHONPATH", "")] if p)}
    p = cli("doctor", env=env)
    assert "Traceback" not in p.stderr and "mistral_onnx[cpu]" in p.stdout + p.stderr and "mistral_onnx[cuda]" in p.stdout + p.stderr, p.stdout + p.stderr
    p = cli("export", "embedded", tmp_path/"out", env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "mistral_onnx[cpu]" in p.stderr, p.stderr
