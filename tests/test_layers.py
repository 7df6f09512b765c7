"""The package's imports run one way: artifacts -> data -> model -> generation -> evaluate -> training -> commands,
with no cycle, and the checked-in drawing (tools/imports.mmd) shows today's imports."""

from tools import import_graph


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    assert import_graph.upward(import_graph.imports()) == []


def test_no_import_cycle():
    assert import_graph.cycles(import_graph.imports()) == []


def test_every_module_has_a_layer_and_the_drawing_is_current():
    names = sorted(import_graph.modules())
    assert {import_graph.layer_of(name) for name in names} <= set(import_graph.LAYERS)
    assert import_graph.DRAWING.read_text() == import_graph.mermaid(import_graph.imports(), names), \
        "tools/imports.mmd is out of date: python tools/import_graph.py"


def test_lazy_and_relative_imports_are_seen(tmp_path):
    """A function-level import is a dependency too, and `from ..x import y` names module x (or x.y)."""
    package = tmp_path / "lightning_review"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "__init__.py").write_text("")
    (package / "errors.py").write_text("")
    (package / "model" / "low.py").write_text("def f():\n    from ..model import high\n")
    (package / "model" / "high.py").write_text("from ..errors import UserError\nfrom . import low\n")
    edges = import_graph.imports(tmp_path)
    assert {("model.low", "model.high"), ("model.high", "errors"), ("model.high", "model.low")} <= edges
    assert import_graph.cycles(edges) == [["model.high", "model.low"]]
    assert import_graph.upward({("model.low", "cli")}) == ["model.low (model) -> cli (commands)"]
