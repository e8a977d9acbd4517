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
