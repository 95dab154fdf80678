"""The layout rules of docs/architecture.md, checked on the source: module size, no import cycle,
dependencies that point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import prefmill

SRC = Path(prefmill.__file__).parent
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(module: str, names: list[str]) -> set[str]:
    """The prefmill modules an import statement loads (``from a import b`` may name submodule a.b)."""
    found = set()
    for name in names:
        sub = f"{module}.{name}"
        found.add(sub if sub in MODULES else module)
    return {m for m in found if m in MODULES}


def _imports(name: str, *, top_level_only: bool, type_checking: bool = False) -> set[str]:
    """prefmill modules that ``name`` imports: at import time only (module level, not under
    ``if TYPE_CHECKING`` unless ``type_checking``), or anywhere in the file."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in MODULES)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                if module.startswith("prefmill"):
                    found.update(_resolve(module, [a.name for a in node.names]))
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if type_checking or "TYPE_CHECKING" not in test:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif not top_level_only:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child])
                    for grand in ast.walk(child):
                        if isinstance(grand, ast.Import | ast.ImportFrom):
                            visit([grand])

    visit(tree.body)
    found.discard(name)
    return found


def test_no_module_over_500_lines() -> None:
    long = {
        str(p.relative_to(SRC.parent)): n
        for p in MODULES.values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
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

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_no_import_cycle() -> None:
    graph = {name: _imports(name, top_level_only=True) for name in MODULES}
    # importing a.b.c runs a/__init__ and a/b/__init__ first: a package depends on nothing of its
    # children by that, but a child's import of its parent is real and already in the graph
    assert _cycles(graph) == []


def test_no_import_cycle_even_in_type_hints() -> None:
    """A module that names another only for type checking still depends on it: the store's layers
    type against ``storage.catalog.Catalog`` (not the ``Store`` built on them), and a trainer
    method's ``trl_args`` against its own options (not the ``TrainConfig`` built from them)."""
    graph = {name: _imports(name, top_level_only=True, type_checking=True) for name in MODULES}
    # a package naming its own submodule for type hints is its lazy face (``engines.vllm`` hands on
    # ``VLLMEngine`` without importing vllm); the submodule importing its package is always real
    for name, found in graph.items():
        runtime = _imports(name, top_level_only=True)
        graph[name] = {m for m in found if m in runtime or not m.startswith(name + ".")}
    assert _cycles(graph) == []


def test_the_graph_sees_a_cycle() -> None:
    """The checker itself: a two-module cycle is found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def _importers(prefix: str) -> dict[str, set[str]]:
    return {
        name: {m for m in _imports(name, top_level_only=False) if m == prefix or m.startswith(prefix + ".")}
        for name in MODULES
        if not (name == prefix or name.startswith(prefix + "."))
    }


def test_nothing_imports_the_cli() -> None:
    users = {name: found for name, found in _importers("prefmill.cli").items() if found}
    users.pop("prefmill.__main__", None)  # `python -m prefmill` is an entry point
    assert users == {}


def test_storage_imports_no_other_part() -> None:
    allowed = ("prefmill.storage", "prefmill.errors", "prefmill.ids")
    bad = {
        name: sorted(m for m in _imports(name, top_level_only=False) if not m.startswith(allowed))
        for name in MODULES
        if name.startswith("prefmill.storage")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_recipe_imports_no_stage_code() -> None:
    """The recipe imports kind declarations (configs, traits), never flows, engines' code, trainer
    runners, commands or the CLI."""
    banned = (
        "prefmill.flows",
        "prefmill.cli",
        "prefmill.commands",
        "prefmill.engines.",
        "prefmill.trainers.runner",
    )
    bad = {
        name: sorted(m for m in _imports(name, top_level_only=True) if m.startswith(banned))
        for name in MODULES
        if name.startswith("prefmill.recipe")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_tasks_never_import_flows_or_trainers() -> None:
    """Tasks sit below the flows and the trainers: a judge that scores with a trained model (the
    ``prm`` judge) reads its format from ``tasks/evaluation/prm_model.py``, which training imports."""
    above = ("prefmill.flows", "prefmill.trainers")
    bad = {
        name: sorted(m for m in _imports(name, top_level_only=False) if m.startswith(above))
        for name in MODULES
        if name.startswith("prefmill.tasks")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_tasks_never_import_the_recipe() -> None:
    """The recipe is the composition of the kinds and sits above the tasks: each config lives next to
    the task code that reads it (``tasks/steps/config.py``, ``tasks/instantiation/config.py``,
    ``tasks/synthesis/config.py``, the judge and prompt-source kind modules) and the recipe imports it
    from there. No task module names the recipe, not even for type hints or inside a function."""
    bad = {
        name: sorted(
            m
            for m in _imports(name, top_level_only=False, type_checking=True)
            if m == "prefmill.recipe" or m.startswith("prefmill.recipe.")
        )
        for name in MODULES
        if name.startswith("prefmill.tasks")
    }
    assert {k: v for k, v in bad.items() if v} == {}
