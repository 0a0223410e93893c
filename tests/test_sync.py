"The notebooks are the source: the package and the README must be what they produce."
import filecmp, shutil, subprocess, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent

def test_readme_in_sync():
    p = subprocess.run([sys.executable, str(ROOT/"tools"/"readme.py"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout

def test_package_is_exported_notebooks(tmp_path):
    shutil.copy(ROOT/"pyproject.toml", tmp_path); shutil.copytree(ROOT/"nbs", tmp_path/"nbs")
    shutil.copytree(ROOT/"mistral_onnx"/"embedded", tmp_path/"mistral_onnx"/"embedded")   # data, not exported code
    shutil.copy(ROOT/"mistral_onnx"/"__init__.py", tmp_path/"mistral_onnx")                   # holds __version__
    subprocess.run([str(Path(sys.executable).parent/"nbdev-export")], cwd=tmp_path, check=True, capture_output=True)
    diff = filecmp.dircmp(ROOT/"mistral_onnx", tmp_path/"mistral_onnx", ignore=["__pycache__"])
    stale = [f for f in diff.left_only if f.endswith(".py")]
    assert not diff.diff_files and not diff.right_only and not stale, f"run nbdev-export: {diff.diff_files} {diff.right_only} {stale}"
