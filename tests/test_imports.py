"""Import structure: no cycles inside adcoffea, and light modules stay light.

The cycle check parses every module with ``ast`` (nothing is imported) and follows every
``import`` of an adcoffea module, including those inside functions (a lazy import still
ties two modules together), but not those under ``if TYPE_CHECKING:`` (typing only).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "adcoffea"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The adcoffea modules ``name`` imports (the most specific module each import names)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def resolve(target: str) -> None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "adcoffea":
                        resolve(alias.name)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative import
                    base = name if is_package else name.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        base = base.rpartition(".")[0]
                    module = f"{base}.{child.module}" if child.module else base
                else:
                    module = child.module or ""
                if module.split(".")[0] != "adcoffea":
                    continue
                for alias in child.names:  # `from pkg import submodule` imports the submodule
                    resolve(f"{module}.{alias.name}")
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_imports_but_not_typing_ones():
    graph = import_graph()
    assert "adcoffea.learn" in graph["adcoffea.pipeline"]  # imported inside run()
    assert "adcoffea.execution" not in graph["adcoffea.results"]  # under TYPE_CHECKING
    assert "adcoffea.execution.accounting" in graph["adcoffea.execution"]


def test_no_import_cycles_inside_adcoffea():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_only_the_command_line_imports_the_pipeline():
    importers = {m for m, deps in import_graph().items() if "adcoffea.pipeline" in deps}
    assert importers == {"adcoffea.cli.run"}, importers


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        # the command line starts fast: commands load their stacks when they run
        (["adcoffea.cli"], ["coffea", "uproot", "torch", "tensorflow", "zfit", "matplotlib"]),
        # the default fit path is numpy + iminuit
        (["adcoffea.cli", "adcoffea.fits.background"], ["tensorflow", "zfit", "torch"]),
        # configs, results and JSON writing are cheap for workers and the report
        (
            ["adcoffea.config", "adcoffea.results", "adcoffea.outputs", "adcoffea.report"],
            ["coffea", "uproot", "torch", "tensorflow", "zfit", "matplotlib"],
        ),
    ],
)
def test_import_cost(modules, absent):
    code = (
        f"import sys\nfor m in {modules!r}: __import__(m)\n"
        f"print([m for m in {absent!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {modules} loads {out.stdout.strip()}"
