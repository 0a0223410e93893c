import os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def cli(*args, timeout=600, **kw):
    "Run the installed `mistral-onnx` console script; return the CompletedProcess."
    return subprocess.run([str(BIN/"mistral-onnx"), *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)

@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    "The embedded model exported once per session: {'fp32': path, 'int4': path}."
    from mistral_onnx.export import export
    d = tmp_path_factory.mktemp("exports")
    return {p: export("embedded", d/p, precision=p).out for p in ("fp32", "int4")}
