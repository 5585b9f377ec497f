"""The package's layout shows its stages: few modules at the top, stage subpackages, no import cycle (lazy imports
inside functions count: they are edges too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "flexlam_rl"
STAGES = ("model", "data", "pretrain", "evaluate", "align", "act", "bench", "cli")


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from x import name`` counts ``x.name`` when that is a module)."""
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, (path, is_package) in files.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    hit = f"{target}.{alias.name}" if f"{target}.{alias.name}" in files else target
                    if hit in files and hit != name:
                        graph[name].add(hit)
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name in files}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and any(graph.values())  # the graph was read
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]  # the finder finds one


def test_the_package_is_laid_out_by_stage() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 10, top
    assert all((PACKAGE / stage / "__init__.py").is_file() for stage in STAGES)


def test_no_function_takes_more_than_eight_parameters() -> None:
    """Long parameter lists become options objects (Episodes, AlignOptions, LatentBCScoring, ...)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                count = len(names) - (names[:1] in (["self"], ["cls"])) + bool(args.vararg) + bool(args.kwarg)
                if count > 8:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({count})")
    assert long == []


def test_benchmarks_are_thin_clients_of_the_library() -> None:
    """``benchmarks/`` stays small (at most 1,200 lines of Python) and its scripts import only the package's modules,
    never each other: the work is the library's, a script parses and prints."""
    scripts = sorted((PACKAGE.parent / "benchmarks").rglob("*.py"))
    lines = sum(len(path.read_text().splitlines()) for path in scripts)
    assert scripts and lines <= 1200, f"benchmarks/ holds {lines} lines of Python"
    names = {path.stem for path in scripts}
    for path in scripts:
        imported = {node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & names, f"{path.name} imports another benchmark script: {sorted(imported & names)}"
