"""A recommendation request checked before anything is read: every argument validated
(BadRequest, a ValueError, naming the bad one), the request as JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evaluation.errors import EvalError
from evaluation.spec import Config
from evaluation.suites import TASK_TYPES
from selection._choice import WEIGHTED, Prefer

WEIGHT_KEYS = tuple(WEIGHTED)
MAX_VERSION = 2**53  # as the CLI's --version: past it a database's integer overflows


class BadRequest(ValueError):
    """An argument :func:`selection.recommend` refuses: the caller's input, which the CLI
    reports as bad input (exit 2); any other ValueError is a fault of evalflow's own."""


def check_request(
    task_type: str,
    max_latency_s: float | None,
    max_energy_j: float | None,
    min_quality: float | None,
    prefer: Prefer,
    candidates: Sequence[Config | str] | None,
    version: int | None,
    input_chars: float | None,
) -> dict[str, Any]:
    """Validate every argument before anything is read (ValueError names the bad one:
    never a TypeError, an overflow or a non-finite number logged as JSON); the request
    as JSON."""
    if not isinstance(task_type, str) or task_type not in TASK_TYPES:
        raise BadRequest(
            f"task_type must be one of {', '.join(TASK_TYPES)}; got {_shown(task_type)}"
        )
    for name, value in (
        ("max_latency_s", max_latency_s),
        ("max_energy_j", max_energy_j),
        ("input_chars", input_chars),
    ):
        if value is not None and not (_finite(value) and value > 0):
            raise BadRequest(f"{name} must be a finite number > 0 (or None), got {_shown(value)}")
    if min_quality is not None and not (_finite(min_quality) and 0 <= min_quality <= 1):
        raise BadRequest(
            "min_quality must be a number on the metric's 0–1 scale (or None), "
            f"got {_shown(min_quality)}"
        )
    if isinstance(prefer, Mapping):
        weights = list(prefer.values())
        if (
            set(prefer) - set(WEIGHT_KEYS)
            or not all(_finite(w) and w >= 0 for w in weights)
            or not any(weights)
        ):
            raise BadRequest(
                f"prefer weights take keys {WEIGHT_KEYS} with finite non-negative numbers, "
                f"not all zero; got {_shown(dict(prefer))}"
            )
        prefer_json: Any = {k: float(v) for k, v in prefer.items()}
    elif isinstance(prefer, str) and prefer in ("quality", "speed"):
        prefer_json = prefer
    else:
        raise BadRequest(
            f"prefer must be 'quality', 'speed' or a weight mapping, not {_shown(prefer)}"
        )
    named = None
    if candidates is not None:
        if isinstance(candidates, str | Config | bytes) or not isinstance(candidates, Sequence):
            raise BadRequest(
                "candidates must be a list of configs or config hashes/labels, "
                f"got {_shown(candidates)}"
            )
        if not candidates:  # an answer among none: "none known" said nothing of the list
            raise BadRequest(
                "candidates must name at least one config (None, the default, considers "
                f"every known config), got {_shown(candidates)}"
            )
        for i, c in enumerate(candidates):
            if not isinstance(c, Config) and not (isinstance(c, str) and c.strip()):
                raise BadRequest(
                    f"candidates[{i}] must be a config or a config hash/label, got {_shown(c)}"
                )
        named = [c.hash if isinstance(c, Config) else c for c in candidates]
    if version is not None and not (
        isinstance(version, int) and not isinstance(version, bool) and 1 <= version <= MAX_VERSION
    ):
        raise BadRequest(f"version must be a whole number from 1 to 2**53, got {_shown(version)}")
    return {
        "task_type": task_type,
        "max_latency_s": max_latency_s,
        "max_energy_j": max_energy_j,
        "min_quality": min_quality,
        "prefer": prefer_json,
        "candidates": named,
        "version": version,
        "input_chars": input_chars,
    }


def _shown(value: Any) -> str:
    """``repr(value)``, except an int too long for Python to write as text."""
    if isinstance(value, int) and value.bit_length() > 10_000:
        return f"a whole number of {value.bit_length()} bits"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_shown(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _finite(value: Any) -> bool:
    """A real, finite number (not a bool, not text, not an int past float's range)."""
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int of 10**400: no float holds it
        return False


def check_engine_argument(engine: Any) -> None:
    """BadRequest naming the ``engine`` argument when it is not a SQLAlchemy Engine (a
    newcomer's URL there was answered 'unavailable: No inspection system is available
    for object of type <class 'str'>')."""
    from sqlalchemy.engine import Engine

    if engine is not None and not isinstance(engine, Engine):
        url = " (give a URL as database_url=...)" if isinstance(engine, str) else ""
        raise BadRequest(f"engine must be a SQLAlchemy Engine{url}, got {type(engine).__name__}")


def check_database_url_argument(url: Any) -> None:
    """ValueError naming the ``database_url`` argument when it cannot be a database URL
    (its password masked)."""
    from evaluation.settings import check_database_url

    if not isinstance(url, str) or not url.strip():
        raise BadRequest(f"database_url must be a SQLAlchemy URL (text), got {type(url).__name__}")
    try:
        check_database_url(url, "database_url")
    except EvalError as exc:
        raise BadRequest(str(exc)) from None
