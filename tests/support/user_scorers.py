"""A module of a user's scorers, importable for one test: written to its tmp_path, put
on sys.path, the scorer cache cleared before and after (evaluation/metrics/_user.py)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.metrics import _user


def scorer_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, source: str
) -> Iterator[str]:
    """For a fixture to ``yield from``: the module's name (``prefix`` and a number of
    the test's own), holding ``source``."""
    name = f"{prefix}_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    _user._loaded.cache_clear()
    yield name
    _user._loaded.cache_clear()
    sys.modules.pop(name, None)
