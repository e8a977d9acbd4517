"""`evalflow status` as text: what the live page says of a run, for a terminal."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from evaluation.run import format_duration, format_rate
from evaluation.run._slot_waits import wait_words
from evaluation.wording import corpus_value_words

#: An ETA is shown as given until the row has not changed for this long past it.
ETA_GRACE_S = 30.0


def status_text(facts: Mapping[str, Any], now: datetime | None = None) -> str:
    """The lines of one run (``_facts.run_facts``): while it runs, its stage, progress
    with rate and ETA, cases in flight per host, failures by reason and GPU readings;
    after, how it ended and its summary (the caller adds the leaderboard). An ETA the
    run has long passed with nothing changed (a hung host) is said as such, not as if
    fine; ``now``: the time to judge it by (default: the clock)."""
    name, status = facts["name"], facts["status"]
    simulated = " [SIMULATED]" if facts.get("simulated") else ""
    live = facts.get("live")
    if live is None:
        lines = [
            f"{name}{simulated}: {status}"
            + (f" ({facts['reason']})" if facts.get("reason") else "")
        ]
        summary = facts.get("summary")
        if summary:
            took = summary.get("duration_s")
            lines.append(
                f"  {summary['generations']} generations, {summary['failed']} failed"
                + (f", took {format_duration(took)}" if took is not None else "")
            )
            if summary.get("best_config"):
                mean = summary.get("best_mean")
                shown = f" = {mean:.3f}" if mean is not None else ""
                metric = _ranked_figure(summary["metric"])
                lines.append(f"  best on {metric}: {summary['best_config']}{shown}")
            if summary.get("verdict"):
                lines.append(f"  verdict: {summary['verdict']}")
            lines += _failures(summary.get("failures") or {})
        return "\n".join(lines)
    done, total = live["done"], live["total"]
    progress = f"{done}/{total} generations ({live['percent']:.0f}%)" if total else "not started"
    parts = [progress]
    if live.get("per_s") is not None:
        parts.append(format_rate(live["per_s"]))
    if total and done < total:
        eta = live.get("eta_s")
        still = _unchanged_s(live.get("updated_at"), now or datetime.now(UTC))
        if eta is not None and still is not None and still > eta + ETA_GRACE_S:
            why = (
                "its lanes wait for host slots, below"
                if live.get("waiting")
                else "a host not answering? run's log names it"
            )
            parts.append(
                f"nothing stored or sent for {format_duration(still)}, past the ETA of "
                f"{format_duration(eta)} given then ({why})"
            )
        elif eta is None:
            parts.append("ETA unknown yet")
        else:  # counted down from when it was given, and the time of day it points at
            left = eta - still if still is not None else eta
            clock = f" ({live['eta_clock']})" if live.get("eta_clock") else ""
            parts.append(f"ETA {format_duration(left)}{clock}" if left > 0 else f"due now{clock}")
    if live["failed"]:
        parts.append(f"{live['failed']} failed")
    lines = [
        f"{name}{simulated}: running, stage {live['stage']} (updated {_utc(live['updated_at'])})",
        "  " + ", ".join(parts),
    ]
    hosts = sorted({*live["in_flight"], *live["slots"]})
    if hosts and live["stage"] == "generate":  # requests are in flight in no other stage
        lines.append(
            "  in flight: "
            + ", ".join(
                f"{h} {live['in_flight'].get(h, 0)}"
                + (f"/{live['slots'][h]} slots" if h in live["slots"] else "")
                for h in hosts
            )
        )
    when = now or datetime.now(UTC)
    for host, wait in sorted(live.get("waiting", {}).items()):
        since = datetime.fromisoformat(wait["since"])
        waited = (when - (since if since.tzinfo else since.replace(tzinfo=UTC))).total_seconds()
        held_by = [tuple(holder) for holder in wait.get("held_by") or []]
        slots = live["slots"].get(host)
        lines.append("  " + wait_words(host, wait["lanes"], held_by, waited, slots))
    lines += _failures(live["failures"])
    for reading in live["gpu"]:
        lines.append("  gpu " + gpu_text(reading))
    return "\n".join(lines)


def _ranked_figure(metric: str) -> str:
    """The figure the best config is best on: a corpus metric's corpus value, as the
    leaderboard under it ranks by (``corpus_value_words``), else the metric."""
    from evaluation.compare._leaderboard import is_corpus_metric

    return corpus_value_words(metric) if is_corpus_metric(metric) else metric


def _utc(stamp: str) -> str:
    """ "2026-11-25 19:19:01 UTC": the stored time (UTC, with or without its offset) with
    one zone."""
    return stamp.removesuffix("+00:00").replace("T", " ") + " UTC"


def _unchanged_s(stamp: str | None, now: datetime) -> float | None:
    """Seconds since the live row was last written (it is written on every change)."""
    if not stamp:
        return None
    written = datetime.fromisoformat(stamp)
    if written.tzinfo is None:  # stored in UTC
        written = written.replace(tzinfo=UTC)
    return (now - written).total_seconds()


def _failures(failures: Mapping[str, int]) -> list[str]:
    if not failures:
        return []
    return ["  failures by reason:"] + [f"    {n:>5}  {why}" for why, n in failures.items()]


def gpu_text(reading: Mapping[str, Any]) -> str:
    """e.g. "gpu0 on this machine: 87% busy, 6.1 GiB used, 212 W"."""
    parts = []
    if reading.get("util_pct") is not None:
        parts.append(f"{reading['util_pct']:.0f}% busy")
    if reading.get("memory_used_bytes") is not None:
        parts.append(f"{reading['memory_used_bytes'] / 2**30:.1f} GiB used")
    if reading.get("power_w") is not None:
        parts.append(f"{reading['power_w']:.0f} W")
    if reading.get("vram_bytes") is not None:
        parts.append(
            f"{reading['vram_bytes'] / 2**30:.1f} GiB VRAM for {reading.get('model', 'its model')}"
        )
    where = reading.get("name") or reading.get("host") or "?"
    return f"{where}: {', '.join(parts) or 'no readings'}"
