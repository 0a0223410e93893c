"""The package's structure, tested: imports run one way through the pipeline's layers (no circle), and a route is
one declaration plus its function (the CLI, the export panel and doctor pick it up with no other edit)."""
import ast, json
from pathlib import Path
import pytest
import mistral_onnx

PKG = Path(mistral_onnx.__file__).parent

LAYERS = [("env", "spec"),                                          # facts about the machine and the model
          ("models", "folder", "published"),                        # sources, an exported folder, published configs
          ("check", "kv_cache"),                                    # checks and concepts over those
          ("routes", "olive_io", "builder", "torch_route", "olive_routes", "quantize"),   # the registry, then the routes
          ("export",),                                              # the front
          ("validate", "generate", "engine", "serve", "bench", "diagnose", "doctor", "peers"),   # what runs or judges an export
          ("widgets", "cli")]                                       # the two faces
LAYER = {m: i for i, ms in enumerate(LAYERS) for m in ms}

def import_graph() -> dict:
    "{module: set of mistral_onnx modules it imports}, lazy (function-level) imports included."
    g = {}
    for f in sorted(PKG.glob("*.py")):
        if f.stem in ("__init__", "_modidx"): continue
        deps = set()
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.ImportFrom):
                m = ("mistral_onnx." + (n.module or "")) if n.level == 1 else (n.module or "")
                if m.startswith("mistral_onnx."): deps.add(m.split(".")[1])
            elif isinstance(n, ast.Import):
                deps |= {a.name.split(".")[1] for a in n.names if a.name.startswith("mistral_onnx.")}
        g[f.stem] = deps - {f.stem}
    return g

def test_every_module_has_a_layer():
    unplaced = sorted(set(import_graph()) - set(LAYER))
    assert not unplaced, f"modules with no layer in tests/test_structure.py LAYERS (place them where they belong): {unplaced}"

def test_imports_run_one_way():
    g = import_graph()
    up = [f"{a} -> {b}" for a, ds in g.items() for b in ds if a in LAYER and b in LAYER and LAYER[b] > LAYER[a]]
    assert not up, f"imports that point up the pipeline: {up}"

def test_no_import_circle():
    g = import_graph(); seen, stack = set(), []
    def visit(m):
        if m in stack: raise AssertionError("import circle: " + " -> ".join(stack[stack.index(m):] + [m]))
        if m in seen: return
        stack.append(m)
        for d in sorted(g.get(m, ())): visit(d)
        stack.pop(); seen.add(m)
    for m in g: visit(m)

def test_the_layer_check_fails_on_an_upward_import(tmp_path, monkeypatch):
    "The check above is not vacuous: a planted `spec -> export` import is caught."
    g = import_graph(); g["spec"] = g["spec"] | {"export"}
    up = [f"{a} -> {b}" for a, ds in g.items() for b in ds if a in LAYER and b in LAYER and LAYER[b] > LAYER[a]]
    assert "spec -> export" in up

def test_a_registered_route_appears_everywhere(tmp_path, monkeypatch):
    "One declaration plus its function: the CLI's choices, the panel's menu, doctor, and export() itself see it."
    from mistral_onnx.routes import ROUTES, Route, Req
    from mistral_onnx.builder import route_builder
    from mistral_onnx.cli import build_parser, main
    from mistral_onnx.widgets import ExportPanel
    from mistral_onnx.doctor import doctor
    from mistral_onnx.export import export
    calls = []
    def route_dummy(src, spec, tmp, precision, execution_provider, log, progress, cancel=None, work=None):
        calls.append(precision)
        return route_builder(src, spec, tmp, precision, execution_provider, log, progress, cancel, work=work)
    monkeypatch.setitem(ROUTES, "dummy", Route("dummy", "the builder, called through a test route", route_dummy, {"cpu": ("fp32",)}))
    monkeypatch.setitem(ROUTES, "dummy-missing", Route("dummy-missing", "needs a package nobody has", route_dummy, {"cpu": ("fp32",)},
                                                       (Req("no-such-package-xyz", ">=1", "it is a test"),), fix="pip install no-such-package-xyz"))
    # the CLI
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"dummy", "dummy-missing"} <= set(next(a for a in sub.choices["export"]._actions if a.dest == "route").choices)
    # the panel's menu, marked where it cannot work
    p = ExportPanel(out=tmp_path/"o")
    assert ("dummy", "dummy") in p.route.options and ("dummy-missing (not here)", "dummy-missing") in p.route.options
    p.route.value = "dummy-missing"
    assert "no-such-package-xyz" in p.route_note.value
    # doctor
    d = doctor()
    assert d.routes["dummy"].works and not d.routes["dummy-missing"].works
    assert "pip install no-such-package-xyz" in str(d)
    # export() runs it, and refuses what it does not declare before any work
    r = export("embedded", tmp_path/"e", route="dummy")
    assert calls == ["fp32"] and r.kv.ok and r.report["route"] == "dummy"
    with pytest.raises(Exception, match="cannot run on cpu with the dummy route"): export("embedded", tmp_path/"f", route="dummy", precision="int4")
    assert main(["export", "embedded", str(tmp_path/"g"), "--route", "dummy-missing"]) == 2
    assert calls == ["fp32"] and not (tmp_path/"f").exists() and not (tmp_path/"g").exists()
