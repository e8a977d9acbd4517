"""The house rules, checked on the source: no import cycles among the project's modules,
and the dependency rules of DESIGN.md (the domain core knows nothing of Prefect or of the
layers above it; tasks sit under flows)."""

from __future__ import annotations

import pytest

from tests.support.import_graph import ImportGraph, build

# Cycles that exist today and are being taken apart; each entry is a pair of modules the
# cycle runs through. Remove an entry when its cycle is gone: nothing else may be added.
KNOWN_CYCLES: tuple[tuple[str, str], ...] = ()

# (importing package, what it must not import, why)
RULES = (
    ("evaluation", "prefect", "the domain core is plain Python, testable without Prefect"),
    ("selection", "prefect", "the selector is plain Python, callable from any application"),
    ("evaluation", "selection", "the core sits under the selector, which learns from it"),
    ("evaluation", "tasks", "the core knows nothing of the Prefect layers above it"),
    ("evaluation", "flows", "the core knows nothing of the Prefect layers above it"),
    ("evaluation", "deployments", "the core knows nothing of the Prefect layers above it"),
    ("selection", "tasks", "the selector knows nothing of the Prefect layers above it"),
    ("selection", "flows", "the selector knows nothing of the Prefect layers above it"),
    ("selection", "deployments", "the selector knows nothing of the Prefect layers above it"),
    ("tasks", "flows", "tasks are the thin layer under flows"),
    ("tasks", "deployments", "tasks are the thin layer under flows"),
)

# Modules allowed to break a rule for now, with the step that ends it.
KNOWN_BREAKS: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return build()


def test_the_graph_sees_the_project(graph: ImportGraph) -> None:
    """A reader that found nothing would pass every rule below."""
    assert {"evaluation", "selection", "tasks", "flows"} <= {m.split(".")[0] for m in graph.files}
    assert "prefect" in graph.external.get("flows.evaluate", set())
    assert "evaluation.storage.db" in graph.edges["evaluation.storage.repository"]


def test_no_import_cycles(graph: ImportGraph) -> None:
    unknown = [
        cycle
        for cycle in graph.cycles()
        if not any(a in cycle and b in cycle for a, b in KNOWN_CYCLES)
    ]
    assert not unknown, "import cycles: " + "; ".join(" <-> ".join(c) for c in unknown)


@pytest.mark.parametrize(("package", "forbidden", "why"), RULES)
def test_dependency_rule(graph: ImportGraph, package: str, forbidden: str, why: str) -> None:
    breaks = []
    for module, targets in graph.edges.items():
        if module.split(".")[0] != package:
            continue
        breaks += [
            f"{module} imports {t}"
            for t in sorted(targets)
            if t.split(".")[0] == forbidden and (module, t) not in KNOWN_BREAKS
        ]
        if forbidden in graph.external.get(module, set()):
            breaks.append(f"{module} imports {forbidden}")
    assert not breaks, f"{package}/ must not import {forbidden} ({why}): " + "; ".join(breaks)


def test_the_checks_catch_a_cycle_and_a_broken_rule(tmp_path) -> None:
    """The reader finds a lazy import cycle and an external import in a tree of its own."""
    core = tmp_path / "evaluation"
    core.mkdir()
    (core / "__init__.py").write_text("")
    (core / "a.py").write_text("from evaluation.b import x\n")
    (core / "b.py").write_text("def x():\n    from evaluation import a\n    import prefect\n")
    graph = build(tmp_path, ("evaluation",))
    assert graph.cycles() == [["evaluation.a", "evaluation.b"]]
    assert graph.external["evaluation.b"] == {"prefect"}


# Modules of tasks/ (beside tasks/adapters/) that use no Prefect, and why they live there.
PREFECT_FREE_TASK_MODULES = {
    "tasks.lane_workers": "a lane worker's runner: the hosts' Prefect slots (tasks/adapters) "
    "through Prefect's REST API, without importing Prefect",
}


def test_a_module_of_tasks_uses_prefect_or_says_why_it_lives_there(graph: ImportGraph) -> None:
    """tasks/ holds Prefect tasks and what they need of Prefect; what uses none belongs
    below, in evaluation/ (tasks/generation_chunks.py, a chunk's run and what a run's
    chunks share, now evaluation/run/_chunk_run.py)."""
    free = [
        module
        for module in graph.files
        if module.startswith("tasks.")
        and not module.startswith("tasks.adapters")
        and module != "tasks"
        and "prefect" not in graph.external.get(module, set())
    ]
    assert sorted(free) == sorted(PREFECT_FREE_TASK_MODULES), (
        "a module of tasks/ that uses no Prefect: move it to evaluation/ (ARCHITECTURE.md), "
        "or say in PREFECT_FREE_TASK_MODULES why it lives in tasks/"
    )
