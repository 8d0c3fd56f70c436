"""No import circles among the benchmark's modules (`benchmark/`, and with it the model packages `baselines/`
and `models/`, which import it and which its registry loads).

The walk is static: every module is parsed with `ast`, and every import in it counts, the
ones inside functions and under `if TYPE_CHECKING:` included (a lazy import that closes a circle is still a
circle in the design, only one Python happens to tolerate). `from package import name` counts as an import
of `package.name` when that is a module, else of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [ROOT / name for name in ("benchmark", "baselines", "models")]


def module_names(packages: list[Path]) -> dict[str, Path]:
    """Every module under `packages` by its dotted name (a package by its own name, not `.__init__`)."""
    names = {}
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The modules of `modules` that the import statement `node` in `module` imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    if node.level:  # relative: from the module's package, one level up per extra dot
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in node.names]
    return [target for target in targets if target in modules]


def import_graph(packages: list[Path]) -> nx.DiGraph:
    """The graph of imports between the modules of `packages` (an edge from importer to imported)."""
    modules = module_names(packages)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in imported(node, module, path.name == "__init__.py", set(modules)):
                    if target != module:
                        graph.add_edge(module, target)
    return graph


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """One import circle per strongly connected group of modules, as `a -> b -> ... -> a`."""
    found = []
    for group in nx.strongly_connected_components(graph):
        if len(group) > 1:
            cycle = nx.find_cycle(graph.subgraph(group))
            found.append([edge[0] for edge in cycle] + [cycle[0][0]])
    return found


def test_no_module_of_the_benchmark_imports_itself_in_a_circle():
    graph = import_graph(PACKAGES)
    assert graph.number_of_nodes() > 60 and graph.has_edge("benchmark.run.runner", "benchmark.run.status")
    assert graph.has_edge("baselines.simvp", "benchmark.registry")
    assert graph.has_edge("benchmark.run.launchers", "benchmark.run.runner")  # an import inside a function counts
    found = cycles(graph)
    assert not found, "import circles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_the_walk_sees_a_circle_closed_by_a_lazy_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n")
    (package / "c.py").write_text("def late():\n    from . import a\n    return a\n")
    (package / "d.py").write_text("import pkg.a\n")
    assert cycles(import_graph([package])) in (
        [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]], [["pkg.b", "pkg.c", "pkg.a", "pkg.b"]],
        [["pkg.c", "pkg.a", "pkg.b", "pkg.c"]])


def test_every_module_of_the_benchmark_is_in_a_stage_folder():
    package = ROOT / "benchmark"
    loose = sorted(path.name for path in package.glob("*.py") if path.name not in ("__init__.py", "__main__.py"))
    assert not loose, f"modules outside a stage folder: {loose} (README, Layout: which folder takes them)"
    stages = {path.parent.name for path in package.glob("*/__init__.py")}
    assert stages == {"cli", "registry", "core", "data", "run", "scoring", "results", "analysis", "present", "paper"}
