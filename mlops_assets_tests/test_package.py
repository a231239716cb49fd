"""The package's shape: no import cycle, nothing loose at its root, Dagster internals in one place.

Read from the source (``ast``), so every import counts, module-level or inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mlops_assets"
COMPAT_MODULE = "mlops_assets.runtime.dagster_compat"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(root: Path) -> dict[str, ast.Module]:
    return {
        _module_name(path, root): ast.parse(path.read_text(), filename=str(path))
        for path in sorted(root.rglob("*.py"))
    }


def _imported(module: str, tree: ast.Module, modules: set[str]) -> Iterator[str]:
    """The package's modules that ``module`` imports anywhere in its source."""
    is_package = any(m.startswith(module + ".") for m in modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    yield f"{source}.{alias.name}"
                elif source in modules:
                    yield source


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each module of the package under ``root`` and the package's modules it imports."""
    sources = _sources(root)
    modules = set(sources)
    return {
        module: set(_imported(module, tree, modules)) - {module} for module, tree in sources.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_package_imports_itself_back() -> None:
    """No import cycle, whether the import is at module level or inside a function."""
    graph = import_graph(PACKAGE)
    assert len(graph) > 50
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    """Positive control: two modules importing each other, one inside a function, are found."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import thing\n")
    (package / "c.py").write_text("from . import a\n")
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.b"]]


def test_the_package_root_holds_only_the_definitions() -> None:
    """Everything but ``definitions.py`` lives in a package named for its concern."""
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "definitions.py"]


def test_dagster_internals_are_imported_by_the_compatibility_module_only() -> None:
    """``dagster._core`` (private, moves between releases) appears in one commented module."""
    importers = {
        module
        for module, tree in _sources(PACKAGE).items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom | ast.Import)
        and any(
            name.startswith("dagster._")
            for name in (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
            )
        )
    }
    assert importers == {COMPAT_MODULE}


def test_pure_ml_code_never_imports_dagster() -> None:
    """``mlops_assets.ml`` is plain typed functions: no dagster import anywhere in it."""
    for module, tree in _sources(PACKAGE).items():
        if not module.startswith("mlops_assets.ml"):
            continue
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            assert not any(n.split(".")[0] == "dagster" for n in names), module
