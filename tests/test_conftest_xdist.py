"""The suite's xdist defaults (tests/conftest.py): a worker count given on the command
line keeps the groups that keep tests sharing a server or a machine-wide resource on one
worker; only an explicit ``--dist`` overrides that."""

from __future__ import annotations

import pytest

from tests.conftest import WORKERS, pytest_cmdline_main

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    ("args", "workers", "dist"),
    [
        ((), WORKERS, "loadgroup"),
        (("-n", "4"), 4, "loadgroup"),
        (("-n", "0"), 0, "no"),
        (("-n", "4", "--dist", "load"), 4, "load"),
    ],
)
def test_the_worker_count_never_drops_the_groups(pytester, args, workers, dist):
    config = pytester.parseconfig(*args)
    pytest_cmdline_main(config)
    assert (config.option.numprocesses, config.option.dist) == (workers, dist)


def test_process_tree_tests_come_after_the_integration_tests_before_the_rest():
    """The tests that start real `evalflow run` processes (the `started` fixture) are
    handed out right after the real-model and integration tests, not left for the end."""
    from types import SimpleNamespace

    from tests.conftest import REPO, _order

    def item(path: str, *fixtures: str) -> SimpleNamespace:
        return SimpleNamespace(path=REPO / path, fixturenames=fixtures)

    first = (REPO / "tests" / "real_models", REPO / "tests" / "integration")
    items = [
        item("tests/selection/test_a.py"),
        item("tests/flows/test_run_lifecycle.py", "tmp_path", "started"),
        item("tests/integration/test_b.py", "started"),
        item("tests/real_models/test_c.py"),
    ]
    items.sort(key=_order(first))
    assert [i.path.name for i in items] == [
        "test_c.py", "test_b.py", "test_run_lifecycle.py", "test_a.py"
    ]  # fmt: skip
