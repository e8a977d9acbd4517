"""Flow run names that say which experiment a run is (``qa-ollama · 2026-11-22 02:00``)
instead of Prefect's random ones, so the Runs page tells one experiment from another.

Each ``*_run_name`` is a flow's ``flow_run_name``: Prefect calls it without arguments
as the run starts and reads the parameters from ``prefect.runtime``. The time is when
the run was scheduled for (UTC), or when it was created. A name never fails a run: a
spec that cannot be read falls back to its file name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from evaluation.errors import EvalError
from evaluation.spec import experiment_name_problem


def run_name(label: str, when: datetime | None) -> str:
    """``<label> · <YYYY-MM-DD HH:MM>`` in UTC."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return f"{label} · {moment:%Y-%m-%d %H:%M}"


def spec_name(spec_path: str) -> str:
    """The spec's ``name``, or its file name when it cannot be read."""
    from evaluation.spec import load_spec

    try:
        return load_spec(spec_path).name
    except (EvalError, OSError, ValueError):
        return Path(spec_path).stem


def _current(label_of) -> str:
    parameters: dict[str, Any] = flow_run.get_parameters()
    return run_name(label_of(parameters), flow_run.get_scheduled_start_time())


def evaluate_run_name() -> str:
    return _current(lambda p: p.get("experiment") or spec_name(str(p["spec_path"])))


def experiment_name(template: str, scheduled: datetime) -> str:
    """``template`` with ``{date}`` (YYYY-MM-DD) and ``{time}`` (HHMMSS) of the scheduled
    start (UTC) filled in: a schedule more often than daily names each run apart (runs of
    one day would otherwise share, and resume, one experiment). EvalError for another
    placeholder or a name that is not an experiment name."""
    moment = scheduled.astimezone(UTC)
    fields = {"date": f"{moment:%Y-%m-%d}", "time": f"{moment:%H%M%S}"}
    try:
        name = template.format_map(fields)
    except (KeyError, ValueError, IndexError) as exc:
        raise EvalError(
            f"experiment: {template!r} may hold only {{date}} and {{time}} ({exc})"
        ) from None
    problem = experiment_name_problem(name) if name != template else None
    if problem:
        raise EvalError(f"experiment: {template!r} gives {name!r}: {problem}")
    return name


def nightly_run_name() -> str:
    return _current(
        lambda p: _filled(p.get("experiment")) or f"{spec_name(str(p['spec_path']))} nightly"
    )


def _filled(template: str | None) -> str | None:
    """The nightly's ``experiment`` with its ``{date}`` and ``{time}`` filled in, as the
    flow fills them; as written when it cannot be (the flow then says why)."""
    if not template:
        return template
    try:
        return experiment_name(template, flow_run.get_scheduled_start_time() or datetime.now(UTC))
    except EvalError:
        return template


def rescore_run_name() -> str:
    return _current(lambda p: f"rescore {p['experiment']}")


def compare_run_name() -> str:
    return _current(lambda p: "compare " + " vs ".join(map(str, p["experiments"])))


def review_run_name() -> str:
    return _current(lambda p: f"review {p['experiment']} by {p['rater']}")


def retrain_run_name() -> str:
    return _current(lambda p: "retrain selector")
