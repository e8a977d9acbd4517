"""How long a sweep's generations will take, before it runs (`evalflow plan`).

Each (host, config) gets seconds per generation from, in order: this config measured
on this host earlier (stored generations), a probe just made (``--probe``), the same
model measured on this host with other configs; the last two are a single call's, so a
pipeline config's figure from them is that times its calls per case
(:mod:`evaluation.run._calls`: a map_reduce's chunks and reduce, say), or none (unknown,
as an unmeasured model) for a pipeline of one's own. A simulated host's are what a run at
``--time-scale`` sleeps (``simulated``: :func:`evaluation.run._probe.simulated_figures`),
0 at time scale 0. The work is then laid out over the
hosts' lanes (one per slot) by the dispatcher's own queue (``_dispatch._Queue``: model
kept together, hosts in parallel, each chunk a lane's fair share of what is left by the
pace its host has shown so far), so the figure is the time until the last lane is done.
It assumes a host's per-request latency stays what was measured at its slots then, and
leaves model loads and Prefect's start-up out. Where a figure was measured at fewer slots
than the host has now, whether more slots help depends on the server (Ollama with
OLLAMA_NUM_PARALLEL, llama-server with --parallel and vLLM serve them at once;
llama-cpp-python's server one at a time, each request waiting for the one before): the
estimate is then also given at the slots of the measurement.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import median
from typing import TYPE_CHECKING

from evaluation.run._calls import mean_calls
from evaluation.run._dispatch import Pace, _Queue, default_chunk_size
from evaluation.run._rate import format_duration
from evaluation.run._work import WorkItem
from evaluation.spec import HostSpec

if TYPE_CHECKING:  # only its type: plan reads the database only when there is one
    from evaluation.backends.base import GenerationResult
    from evaluation.storage.throughput import Measured


SIMULATED = "simulated backend: no real generation time"


@dataclass(frozen=True)
class Probed:
    """What ``--probe`` measured of one model on one host just now."""

    host: str
    model: str
    generations: int
    latency_s: float  # the median, as stored runs' figures (``Measured``)
    mean_tokens: float
    slots: int

    @classmethod
    def of(cls, host: HostSpec, model: str, results: Sequence[GenerationResult]) -> Probed:
        """The median latency of ``results`` (one slow request among the few of a probe
        does not move it, where it would a mean) and their mean output tokens."""
        timed = [r.latency_s for r in results if r.latency_s is not None]
        return cls(
            host=host.name,
            model=model,
            generations=len(results),
            latency_s=median(timed) if timed else 0.0,
            mean_tokens=sum(r.eval_count for r in results) / len(results),
            slots=host.slots,
        )


@dataclass(frozen=True)
class Figure:
    """Seconds per generation of a config on a host, and where that figure comes from."""

    seconds: float
    source: str
    measured_slots: int | None = None  # the host's slots when it was measured


@dataclass
class Estimate:
    """The sweep's duration (None when a host and model have no figure), each host's
    share, and the figure used for each (config hash, host)."""

    seconds: float | None
    per_host: dict[str, tuple[int, float]] = field(default_factory=dict)  # items, seconds
    figures: dict[tuple[str, str], Figure] = field(default_factory=dict)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (model, host)
    # hosts whose figures were measured at fewer slots than they have now: those slots,
    # and the duration if each serves only that many at once
    measured_slots: dict[str, int] = field(default_factory=dict)
    at_measured_slots: float | None = None


def figures_for(
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    measured: Sequence[Measured],
    probed: Sequence[Probed] = (),
    simulated: Mapping[str, Figure] | None = None,
) -> tuple[dict[tuple[str, str], Figure], list[tuple[str, str]]]:
    """The figure for every (config hash, host) the work may use (``simulated``: a
    simulated host's, by config hash); the (model, host) pairs with none."""
    by_config = {(m.config_hash, m.host): m for m in measured}
    by_model: dict[tuple[str, str], list[Measured]] = {}
    for m in measured:
        by_model.setdefault((m.model, m.host), []).append(m)
    by_probe = {(p.model, p.host): p for p in probed}
    figures: dict[tuple[str, str], Figure] = {}
    missing: list[tuple[str, str]] = []
    of_config: dict[str, list[WorkItem]] = {}
    for item in items:
        of_config.setdefault(item.config.hash, []).append(item)
    for config_items in of_config.values():
        config = config_items[0].config
        for host in hosts:
            if not host.serves(config.model):
                continue
            if host.kind == "simulated":
                figure = (simulated or {}).get(config.hash, Figure(0.0, SIMULATED))
            elif (m := by_config.get((config.hash, host.name))) is not None:
                figure = _own_figure(m, host)
            else:
                figure = _per_case(_figure(config.model, host, by_probe, by_model), config_items)
            if figure is None:
                if (config.model, host.name) not in missing:
                    missing.append((config.model, host.name))
            else:
                figures[(config.hash, host.name)] = figure
    return figures, missing


def _own_figure(m: Measured, host: HostSpec) -> Figure:
    """The config's own stored generations: a pipeline's are its whole cases."""
    return Figure(
        m.latency_s,
        f"this config on {host.name}: {m.generations} generations "
        f"({m.experiment}, {m.last:%Y-%m-%d}), {m.mean_tokens:.0f} tokens"
        + _slots_note(m.slots, host),
        m.slots,
    )


def _per_case(call: Figure | None, items: Sequence[WorkItem]) -> Figure | None:
    """A single call's ``call`` as a case of ``items``' config takes it: times the calls
    its pipeline makes per case, said in the source (a pipeline of one's own, whose calls
    are not known before it runs: the single call's, said to be)."""
    if call is None:
        return None
    calls = mean_calls(items)
    if calls is None:
        pipeline = getattr(items[0].config.pipeline, "name", None)
        return replace(
            call,
            source=f"{call.source}; a single call's figure: the calls per "
            f"case of pipeline {pipeline} are not known before it runs",
        )
    n, what = calls
    if not what:  # single: one call
        return call
    return replace(
        call,
        seconds=call.seconds * n,
        source=f"{call.source}; × {n:.1f} calls per case ({what}), a single call's figure",
    )


def _figure(
    model: str,
    host: HostSpec,
    by_probe: Mapping[tuple[str, str], Probed],
    by_model: Mapping[tuple[str, str], list[Measured]],
) -> Figure | None:
    """A single call of ``model`` on ``host``: probed just now, else its other configs."""
    if (p := by_probe.get((model, host.name))) is not None:
        return Figure(
            p.latency_s,
            f"probe: {p.generations} generations of {model} on {host.name} just now, "
            f"{p.mean_tokens:.0f} tokens, at {_slots(p.slots)}",
            p.slots,
        )
    if others := by_model.get((model, host.name)):
        n = sum(m.generations for m in others)
        latency = sum(m.generations * m.latency_s for m in others) / n
        tokens = sum(m.generations * m.mean_tokens for m in others) / n
        latest = max(others, key=lambda m: m.last)
        return Figure(
            latency,
            f"{model} on {host.name}, other configs: {n} generations "
            f"({latest.experiment}, {latest.last:%Y-%m-%d}), {tokens:.0f} tokens"
            + _slots_note(latest.slots, host),
            latest.slots,
        )
    return None


def _slots(n: int) -> str:
    return f"{n} slot{'s' * (n != 1)}"


def _slots_note(measured_slots: int | None, host: HostSpec) -> str:
    if measured_slots is None or measured_slots == host.slots:
        return f", at {_slots(host.slots)}"
    return f", at {_slots(measured_slots)} then ({host.slots} now)"


def estimate(
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    measured: Sequence[Measured],
    probed: Sequence[Probed] = (),
    *,
    simulated: Mapping[str, Figure] | None = None,
    chunk_size: int | None = None,
) -> Estimate:
    """Lay ``items`` over the hosts' lanes as the dispatcher would, each generation
    taking its figure's seconds; the time until the last lane is done. Where a host's
    figures were measured at fewer slots than it has now, the same at those slots too
    (``at_measured_slots``): a server that serves one request at a time gains nothing
    from more (a newcomer's `slots: 4` on llama-cpp-python's server planned 11 min for
    42)."""
    figures, missing = figures_for(items, hosts, measured, probed, simulated)
    result = Estimate(None, figures=figures, missing=missing)
    if missing:
        return result
    result.seconds, result.per_host = _lay_out(items, hosts, figures, chunk_size)
    by_name = {h.name: h for h in hosts}
    for (_, name), figure in figures.items():
        then = figure.measured_slots
        if then is not None and then < by_name[name].slots:
            result.measured_slots[name] = min(then, result.measured_slots.get(name, then))
    if result.measured_slots:
        capped = [replace(h, slots=result.measured_slots.get(h.name, h.slots)) for h in hosts]
        result.at_measured_slots = _lay_out(items, capped, figures, chunk_size)[0]
    return result


def _lay_out(
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    figures: Mapping[tuple[str, str], Figure],
    chunk_size: int | None,
) -> tuple[float, dict[str, tuple[int, float]]]:
    """The dispatcher's queue over the hosts' lanes: when the last lane is done, and
    each host's generations and seconds."""

    def seconds_of(host: HostSpec, item: WorkItem) -> float:
        return figures[(item.config.hash, host.name)].seconds

    size = chunk_size or default_chunk_size(len(items), sum(h.slots for h in hosts))
    queue = _Queue(items, hosts, Pace(), size)
    loaded: dict[str, str | None] = {h.name: None for h in hosts}
    lanes: list[tuple[float, int, HostSpec, list[WorkItem] | None]] = [
        (0.0, i, h, None) for i, h in enumerate(h for h in hosts for _ in range(h.slots))
    ]
    heapq.heapify(lanes)
    per_host = {h.name: [0, 0.0] for h in hosts}
    end = 0.0
    while lanes:
        free_at, index, host, last = heapq.heappop(lanes)
        if last is not None:  # its chunk has ended: the dispatcher measures it now
            queue.finish(last, len(last), sum(seconds_of(host, item) for item in last))
        chunk = queue.take(host, loaded[host.name], free_at)
        if chunk is None:
            continue  # this lane is done: nothing left that its host serves
        if loaded[host.name] != chunk[0].model:
            if loaded[host.name] is not None:
                queue.hosts_on[loaded[host.name]] -= 1
            loaded[host.name] = chunk[0].model
            queue.hosts_on[chunk[0].model] += 1
        seconds = sum(seconds_of(host, item) for item in chunk)
        done_at = free_at + seconds
        per_host[host.name][0] += len(chunk)
        per_host[host.name][1] = max(per_host[host.name][1], done_at)
        end = max(end, done_at)
        heapq.heappush(lanes, (done_at, index, host, chunk))
    return end, {name: (n, s) for name, (n, s) in per_host.items()}


def _slots_caveat(result: Estimate, hosts: Sequence[HostSpec]) -> list[str]:
    """The duration at the slots the figures were measured at, and why it may be the
    one that holds."""
    now = {h.name: h.slots for h in hosts}
    which = ", ".join(
        f"{name} {then} (spec: {now[name]})" for name, then in result.measured_slots.items()
    )
    return [
        f"          ≈ {format_duration(result.at_measured_slots or 0.0)} instead if the "
        f"hosts serve only as many requests at once as when measured: {which}",
        "          (more slots help only a server that runs requests in parallel; "
        "llama-cpp-python's runs one at a time: give it slots: 1)",
    ]


def format_estimate(
    result: Estimate,
    items: Sequence[WorkItem],
    hosts: Sequence[HostSpec],
    *,
    race_budget: int | None = None,
    race: bool = False,
) -> str:
    """The estimate as text: in all, per host, and per config with each figure's source."""
    lines = []
    if not items:  # all of it stored: whatever the hosts, there is no time to estimate
        return "duration  none: nothing left to generate (0 generations to go)"
    if all(host.kind == "simulated" for host in hosts) and all(
        figure.source == SIMULATED for figure in result.figures.values()
    ):
        return (
            "duration  simulated hosts only: no real generation time to estimate at time "
            "scale 0 (`--time-scale N` estimates a run given it, which sleeps N × each "
            "simulated latency)"
        )
    if result.seconds is None:
        pairs = ", ".join(f"{model} on {host}" for model, host in result.missing)
        lines.append(f"duration  unknown: no measurements for {pairs}: use --probe")
    else:
        total = format_duration(result.seconds)
        if race:
            lines.append(
                f"duration  a race stops configs early: at most ≈ {total}, the full grid's "
                f"{len(items)} generations (the upper bound)"
            )
            if race_budget is not None and race_budget < len(items):
                share = race_budget / len(items)
                lines.append(
                    f"          at most ≈ {format_duration(result.seconds * share)} within "
                    f"its budget of {race_budget} generations"
                )
        else:
            lines.append(
                f"duration  ≈ {total} for {len(items)} generations (hosts in parallel, each "
                "on its slots; model loads and start-up not counted)"
            )
        for host in hosts:
            n, seconds = result.per_host.get(host.name, (0, 0.0))
            lines.append(
                f"          {host.name}: {n} generations on {_slots(host.slots)}, "
                f"≈ {format_duration(seconds)}"
            )
        if result.at_measured_slots is not None:
            lines += _slots_caveat(result, hosts)
    if result.figures:
        lines.append("per config (seconds per generation, and where the figure comes from):")
        labels = {item.config.hash: item.config for item in items}
        counts: dict[str, int] = {}
        for item in items:
            counts[item.config.hash] = counts.get(item.config.hash, 0) + 1
        for (config_hash, host), figure in result.figures.items():
            if figure.source == SIMULATED:
                continue
            config = labels[config_hash]
            lines.append(
                f"  {config_hash}  {config.model}  {host}  {counts[config_hash]} × "
                f"{figure.seconds:.2f} s  ({figure.source})"
            )
    return "\n".join(lines)
