"""The project's own import graph, read from the source with ``ast`` (nothing is imported).

An edge ``a -> b`` means module ``a`` imports module ``b`` at run time, wherever the
import statement stands (a function-level "lazy" import still closes a cycle when it
runs); imports under ``if TYPE_CHECKING:`` are left out because they never run. Importing
``pkg.mod`` from outside ``pkg`` also runs ``pkg/__init__`` first, so that edge is drawn
too; from inside ``pkg`` it is not (the package is already being imported).

``python -m tests.support.import_graph`` prints the figures docs/architecture-metrics.md
quotes: lines per folder, the largest modules, the import cycles and the floors (the
longest chain of internal imports).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("evaluation", "selection", "tasks", "flows", "deployments")


@dataclass(frozen=True)
class ImportGraph:
    """Modules by dotted name, their files, and the internal and external imports."""

    files: dict[str, Path]
    edges: dict[str, set[str]]  # internal module -> internal modules it imports
    external: dict[str, set[str]]  # internal module -> top-level external packages

    @property
    def packages(self) -> set[str]:
        return {m for m, path in self.files.items() if path.name == "__init__.py"}

    def within(self, package: str) -> ImportGraph:
        """The graph of one top-level package's modules alone."""
        keep = {m for m in self.files if m.split(".")[0] == package}
        return ImportGraph(
            {m: self.files[m] for m in keep},
            {m: ts & keep for m, ts in self.edges.items() if m in keep},
            {m: ts for m, ts in self.external.items() if m in keep},
        )

    def cycles(self) -> list[list[str]]:
        """The strongly connected components with more than one module (or a self-loop),
        each sorted: every one is an import cycle."""
        return [sorted(c) for c in _components(self.edges) if _is_cycle(c, self.edges)]

    def floors(self) -> tuple[int, list[str]]:
        """The longest chain of imports between internal modules (cycles collapsed to one
        floor each): its length in modules and one such chain, importer first."""
        component_of = {m: i for i, c in enumerate(_components(self.edges)) for m in c}
        best: dict[str, list[str]] = {}

        def chain(module: str, seen: frozenset[str]) -> list[str]:
            if module in best:
                return best[module]
            longest: list[str] = []
            for target in sorted(self.edges.get(module, ())):
                if component_of[target] == component_of[module] or target in seen:
                    continue
                candidate = chain(target, seen | {target})
                if len(candidate) > len(longest):
                    longest = candidate
            best[module] = [module, *longest]
            return best[module]

        top = max((chain(m, frozenset({m})) for m in sorted(self.files)), key=len)
        return len(top), top


def build(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> ImportGraph:
    """The import graph of ``packages`` under ``root``."""
    files: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            files[_module_name(path.relative_to(root))] = path
    edges: dict[str, set[str]] = defaultdict(set)
    external: dict[str, set[str]] = defaultdict(set)
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        for name in _imported_names(path, module, is_package, files):
            target = _resolve(name, files)
            if target is not None:
                edges[module] |= {t for t in (target, *_entered(target, module)) if t != module}
            elif name.split(".")[0] not in PACKAGES:
                external[module].add(name.split(".")[0])
    return ImportGraph(files, dict(edges), dict(external))


def lines_per_folder(graph: ImportGraph) -> dict[str, int]:
    """Lines of Python per top-level package."""
    totals: dict[str, int] = defaultdict(int)
    for module, path in graph.files.items():
        totals[module.split(".")[0]] += _line_count(path)
    return dict(totals)


def largest_modules(graph: ImportGraph, n: int = 5) -> list[tuple[int, str]]:
    return sorted(((_line_count(p), m) for m, p in graph.files.items()), reverse=True)[:n]


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(path: Path, module: str, is_package: bool, files: dict[str, Path]) -> list[str]:
    """Every dotted name an import statement of ``path`` loads, relative imports
    resolved; ``from a import b`` is ``a.b`` where that is a module, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = {id(node) for node in _type_checking_imports(tree)}
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            names += [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                for alias in node.names
            ]
    return names


def _type_checking_imports(tree: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found += [n for s in node.body for n in ast.walk(s)]
    return found


def _entered(target: str, importer: str) -> list[str]:
    """The packages whose ``__init__`` importing ``target`` runs first: its ancestors
    that are not the importer's own (those have run already)."""
    parts = target.split(".")
    own = importer.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts)) if parts[:n] != own[:n]]


def _resolve(name: str, files: dict[str, Path]) -> str | None:
    """The internal module ``name`` denotes exactly, if any."""
    return name if name in files else None


def _components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively."""
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges.get(target, ())))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
    return result


def _is_cycle(component: list[str], edges: dict[str, set[str]]) -> bool:
    return len(component) > 1 or component[0] in edges.get(component[0], set())


def main() -> None:
    graph = build()
    print("lines per folder:")
    for folder, count in sorted(lines_per_folder(graph).items()):
        print(f"  {folder:12} {count:6}")
    print("largest modules:")
    for count, module in largest_modules(graph):
        print(f"  {count:5}  {module}")
    evaluation = graph.within("evaluation")
    flat = [m for m in evaluation.files if m.count(".") == 1 and m not in evaluation.packages]
    print(f"evaluation modules: {len(evaluation.files)}, flat at its top level: {len(flat)}")
    cycles = graph.cycles()
    print(f"import cycles: {len(cycles)}")
    for cycle in cycles:
        print("  " + " <-> ".join(cycle))
    for name, part in (("project", graph), ("evaluation", evaluation)):
        floors, chain = part.floors()
        print(f"floors of {name} (longest import chain): {floors}")
        print("  " + " -> ".join(chain))


if __name__ == "__main__":
    sys.exit(main())
