"""The package's structure, tested: imports run one way through the pipeline's layers (no circle), and a route is
one declaration plus its function (the CLI, the export panel and doctor pick it up with no other edit)."""
import ast, json
from pathlib import Path
import pytest
import mistral_onnx

PKG = Path(mistral_onnx.__file__).parent

LAYERS = [("env", "args", "spec", "family", "memory", "quantized_sources"),  # facts about the machine and the model (and its family); checkpoint formats
          ("models", "folder", "published", "sources", "tensors", "resources", "recipes"), # sources and their checks, an exported folder, published configs, estimates, quantization recipes
          ("check", "kv_cache"),                                    # checks and concepts over those
          ("routes", "transaction", "olive_io", "builder", "torch_route", "olive_routes", "quantize", "adapters"),   # the registry, then the routes
          ("export", "session"),                                    # the front; one decode session over an export
          ("quality", "validate", "generate", "engine", "serve", "bench", "compare", "diagnose", "doctor", "peers"),   # what runs or judges an export
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
    def route_dummy(job):
        calls.append(job.precision)
        return route_builder(job)
    monkeypatch.setitem(ROUTES, "dummy", Route("dummy", "the builder, called through a test route", route_dummy, {"cpu": ("fp32",)},
                                               options=ROUTES["builder"].options))
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


def test_a_declared_option_and_recipe_appear_everywhere(tmp_path, monkeypatch, capsys):
    "One declaration each: a route option and a recipe show in --help, the panel, the reproduce line and `mistral-onnx recipes`."
    import json
    from mistral_onnx import routes, recipes
    from mistral_onnx.routes import Option, register_option
    from mistral_onnx.recipes import Recipe, register_recipe
    from mistral_onnx.cli import build_parser, main
    from mistral_onnx.widgets import ExportPanel
    monkeypatch.setitem(routes.ROUTES, "builder", routes.ROUTES["builder"])   # the registration below is undone with the test
    monkeypatch.setitem(recipes.RECIPES, "int4-dummy", None); del recipes.RECIPES["int4-dummy"]
    register_option("builder", Option("dummy_level", int, None, "a test option that becomes accuracy_level", choices=(1, 2, 4),
                                      precisions=("int4",), builder_key="accuracy_level"))
    register_recipe(Recipe("int4-dummy", "int4", "a test recipe: block 64", block_size=64))
    export_parser = next(a for a in build_parser()._actions if a.dest == "command").choices["export"]
    helptext = export_parser.format_help()
    assert "--dummy-level" in helptext and "int4-dummy" in helptext
    p = ExportPanel(out=tmp_path/"o")
    assert "dummy_level" in dict(p.controls_by_name)
    rec = dict(p.controls_by_name)["recipe"]
    assert "int4-dummy" in [v for _, v in rec.options]
    assert main(["recipes"]) == 0 and "int4-dummy" in capsys.readouterr().out
    assert main(["export", "embedded", str(tmp_path/"e"), "--recipe", "int4-dummy", "--dummy-level", "4"]) == 0
    rep = json.loads((tmp_path/"e"/"export_report.json").read_text())
    assert "--recipe int4-dummy" in rep["command"] and "--dummy-level 4" in rep["command"] and "--precision int4" in rep["command"]
    assert rep["route_info"]["extra_options"] == {"block_size": 64, "accuracy_level": 4}
    import onnx
    m = onnx.load(str(tmp_path/"e"/"model.onnx"), load_external_data=False)
    attrs = [{a.name: a.i for a in n.attribute} for n in m.graph.node if n.op_type == "MatMulNBits"]
    assert attrs and all(a["block_size"] == 64 and a["accuracy_level"] == 4 for a in attrs)
