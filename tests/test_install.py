"""What each README command installs: the main job's command only evalflow's own
dependencies (no compiler, no test tools), the test command the dev extra, exactly as
CI runs it; and no module of the product imports a package that only the dev extra
installs (the base install would fail at that import)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import packages_distributions

import pytest

from tests.conftest import REPO
from tests.support.import_graph import build

README = (REPO / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _quick_start_commands() -> list[str]:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _distribution(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def dev_only_imports() -> dict[str, str]:
    """Top-level import name -> distribution, for the dev extra's distributions that the
    base install does not list (as installed here; the distribution's own name where it
    is not installed)."""
    base = {_distribution(r) for r in PYPROJECT["project"]["dependencies"]}
    dev = {_distribution(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    provided: dict[str, set[str]] = {}
    for name, dists in packages_distributions().items():
        for dist in dists:
            provided.setdefault(dist.lower().replace("_", "-"), set()).add(name)
    base_names = {n for d in base for n in provided.get(d, ())}
    found: dict[str, str] = {}
    for dist in dev - base:
        for name in provided.get(dist, {dist.replace("-", "_")}) - base_names:
            found[name] = dist
    return found


def test_the_main_job_installs_no_extra_and_the_tests_install_dev():
    main_job, tests = _quick_start_commands()
    assert "-e . " in main_job and "[dev]" not in main_job
    assert "evalflow run benchmarks/sweeps/demo-simulated.yaml" in main_job
    assert "-e '.[dev]'" in tests and tests.endswith("python -m pytest")


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    _, tests = _quick_start_commands()
    assert tests in ci


def test_the_dev_only_packages_are_known():
    """A reader that found none would pass the test below."""
    names = dev_only_imports()
    assert {"pytest", "playwright", "llama_cpp"} <= set(names)


@pytest.mark.parametrize("package", ["evaluation", "selection", "tasks", "flows", "deployments"])
def test_no_product_module_imports_a_dev_only_package(package):
    dev_only = dev_only_imports()
    graph = build().within(package)
    found = {
        f"{module} imports {name} ({dev_only[name]}, dev extra only)"
        for module, names in graph.external.items()
        for name in names & set(dev_only)
    }
    assert not found, "; ".join(sorted(found))


def test_every_documented_install_of_evalflow_uses_the_constraints():
    # newcomer: docs/trends.md's CI job and running-for-real.md's step 3 installed without
    # them, where running-for-real.md warns that Prefect then fails (SQLAlchemy 2.1,
    # FastAPI > 0.150)
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    unconstrained = [
        f"{page.name}: {line.strip()}"
        for page in pages
        for line in page.read_text(encoding="utf-8").splitlines()
        if re.search(r"pip install\b.*\s-e\s+['\"]?\.", line) and "-c constraints.txt" not in line
    ]
    assert unconstrained == []
