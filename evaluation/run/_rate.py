"""How fast a run goes and when it will end: generations per second over the last
minute (a model switch or a slower config shows within a minute, unlike a rate since
the start), the time left by the mix of work still to do (``WorkMix``), and durations
as people read them."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: the rate stays light to import
    from evaluation.run._work import WorkItem
    from evaluation.spec import Limits
    from evaluation.storage.throughput import Measured

WINDOW_S = 60.0
#: A request sent this long or more before its model's first answer from its host came,
#: and answered within this long after it, is cold (``WorkMix``): it waited on the load.
COLD_MARGIN_S = 1.0


@dataclass
class Rate:
    """Generations per second from (time, done so far) readings within ``window_s``."""

    window_s: float = WINDOW_S
    _readings: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, now: float, done: int) -> None:
        self._readings.append((now, done))
        # Keep one reading at or before the window's start, so the rate spans the window.
        while len(self._readings) > 2 and now - self._readings[1][0] >= self.window_s:
            self._readings.popleft()

    def per_s(self) -> float | None:
        """None until two readings apart in time exist."""
        if len(self._readings) < 2:
            return None
        (t0, d0), (t1, d1) = self._readings[0], self._readings[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta_s(self, remaining: int) -> float | None:
        """Seconds until ``remaining`` more are done at the current rate (None: unknown)."""
        if remaining <= 0:
            return 0.0
        rate = self.per_s()
        return remaining / rate if rate else None


@dataclass
class WorkMix:
    """The time left from what is left of each config, not from the overall rate.

    A rate counts generations, and a generation of a slow model is worth several of a
    fast one: at 50% of a sweep whose slower model came second, the last minute's rate
    said 4 min and the run took 10.6 more. Here the work left is weighed in host time:
    W = Σ_c remaining_c · s_c, with s_c the seconds one generation of config c holds a
    slot (this run's mean for c; else what earlier runs measured for c, ``prior_s``;
    else this run's mean for c's model; else earlier runs' mean for c's model; an
    earlier figure scaled by how this run's generations compare with earlier runs'; else
    this run's overall mean), and the hosts' pace is the host time done per second over
    the last minute, P = Σ service seconds stored in the window / the window's span
    (about the slots kept busy). ETA = W / P. Failed generations count as done, with no
    host time.

    A request's time is the client's, the wait in the host's queue included: a host that
    serves fewer at once than the lanes send (a spec's ``slots`` above the server's,
    another run sharing it) makes every generation slower alike, hence the scaling. The
    unscaled figures of runs that had a host to themselves (0.27 s) weighed a second
    model's work against requests that waited 5 s each: a newcomer's ETA said 3 s at
    2731/8000, where the rate on the same line gave 38 s (it took 31).

    A request sent before its model's first answer from its host came and answered with
    it (``COLD_MARGIN_S``) may have waited for the host to load the model: its time
    counts in P (the slot was held) but not in s_c, unless nothing else is measured.
    Counted, the first gemma generation of a newcomer's run (10 s of loading in it) held
    the ETA at 3 times the truth for the rest of the run: 4 min 28 s at 21/40, done
    1 min 25 s later. One answered later waited in the host's queue, as the requests
    after it will: where 1024 lanes had their first answer 6.8 s in (a busy client
    opening its connections), the 840 requests sent in those seconds (5-12 s each) were
    left out, and s_c was that of the few sent after (2.5 s) against a pace that counted
    all. When an answer came is the lane's clock (``answered_at``), not when it was
    stored: a busy writer stores its batches seconds later.
    """

    remaining: dict[str, int]  # config hash -> generations not yet stored
    model_of: dict[str, str]  # config hash -> model
    prior_s: dict[str, float] = field(default_factory=dict)  # config hash -> earlier runs
    window_s: float = WINDOW_S
    _started: float | None = None
    # [time, service s] of what was stored then: a batch stored at once is one entry (a
    # tuple a generation held ~12 MiB of the run's process at 2,300 a second)
    _window: deque[list[float]] = field(default_factory=deque)
    _sum_s: dict[str, float] = field(default_factory=dict)  # of requests not cold
    _count: dict[str, int] = field(default_factory=dict)
    _cold: list[float] = field(default_factory=list)  # service s of the cold requests
    _first_answer: dict[tuple[str | None, str], float] = field(default_factory=dict)

    def start(self, now: float) -> None:
        """The pace counts from ``now``; generations stored at ``now`` itself are not in
        it (their seconds per generation are)."""
        self._started = now

    def stored(
        self,
        now: float,
        config: str,
        service_s: float | None,
        host: str = "",
        answered_at: float | None = None,
    ) -> None:
        """One generation of ``config`` stored; ``service_s``: its time on a slot of
        ``host``, which answered at ``answered_at`` (on the lanes' clock; else ``now``)."""
        if self._started is None:
            self._started = now
        self.remaining[config] = max(0, self.remaining.get(config, 0) - 1)
        if service_s is not None and service_s >= 0:
            came = now if answered_at is None else answered_at
            key = (self.model_of.get(config), host)
            first = self._first_answer[key] = min(self._first_answer.get(key, came), came)
            if came - service_s < first - COLD_MARGIN_S and came < first + COLD_MARGIN_S:
                self._cold.append(service_s)
            else:
                self._sum_s[config] = self._sum_s.get(config, 0.0) + service_s
                self._count[config] = self._count.get(config, 0) + 1
            if self._window and self._window[-1][0] == now:
                self._window[-1][1] += service_s
            else:
                self._window.append([now, service_s])
        while self._window and now - self._window[0][0] > self.window_s:
            self._window.popleft()

    def eta_s(self, now: float) -> float | None:
        """Seconds left (None: nothing measured yet in this run's last minute)."""
        left = {c: n for c, n in self.remaining.items() if n > 0}
        if not left:
            return 0.0
        if self._started is None or not self._window:
            return None
        span = min(self.window_s, now - self._started)
        # what was stored at the start itself came before it (``start``: the first batch)
        pace = sum(s for t, s in self._window if t > self._started) / span if span > 0 else 0.0
        if pace <= 0:
            return None
        return sum(n * self.seconds_per_generation(c) for c, n in left.items()) / pace

    def seconds_per_generation(self, config: str) -> float:
        """s_c as the class docstring says, from the most specific figure there is."""
        if self._count.get(config):
            return self._sum_s[config] / self._count[config]
        if config in self.prior_s:
            return self.prior_s[config] * self._pace_against_earlier()
        model = self.model_of.get(config)
        ours = [c for c in self._count if self.model_of.get(c) == model]
        if ours:
            return sum(self._sum_s[c] for c in ours) / sum(self._count[c] for c in ours)
        earlier = self._earlier_mean(model)
        if earlier is not None:
            return earlier * self._pace_against_earlier()
        if self._count:
            return sum(self._sum_s.values()) / sum(self._count.values())
        return sum(self._cold) / len(self._cold)

    def first_answers_awaited(self) -> tuple[str, ...]:
        """The models of all the work left where none of them has answered yet in this
        run: what is in flight is their first requests, which a host may be loading them
        for (else none)."""
        answered = {model for model, _ in self._first_answer}
        left = {self.model_of.get(c) for c, n in self.remaining.items() if n > 0}
        if not left or left & answered:
            return ()
        return tuple(sorted(model for model in left if model))

    def _earlier_mean(self, model: str | None) -> float | None:
        earlier = [s for c, s in self.prior_s.items() if self.model_of.get(c) == model]
        return sum(earlier) / len(earlier) if earlier else None

    def _pace_against_earlier(self) -> float:
        """This run's seconds per generation over earlier runs', for the configs measured
        in both, else for the models (1 when none is). A model's earlier figure may come
        from other settings (a longer num_predict: a newcomer's ETA said 2 min 14 s for 40 s
        of work), any from another load of the host (``WorkMix``); what this run changes
        for every config, such as the tokens asked for or the queue at the host, scales
        them alike."""
        both = [c for c in self._count if c in self.prior_s]
        if both:
            here = sum(self._sum_s[c] / self._count[c] for c in both)
            there = sum(self.prior_s[c] for c in both)
            return here / there if there > 0 and here > 0 else 1.0
        here = there = 0.0
        for model in {self.model_of.get(c) for c in self._count}:
            earlier = self._earlier_mean(model)
            if earlier is None:
                continue
            ours = [c for c in self._count if self.model_of.get(c) == model]
            here += sum(self._sum_s[c] for c in ours) / sum(self._count[c] for c in ours)
            there += earlier
        return here / there if there > 0 and here > 0 else 1.0


def work_mix(items: Sequence[WorkItem], measured: Sequence[Measured] = ()) -> WorkMix:
    """The mix of ``items`` (the work pending), with the seconds per generation that
    earlier runs measured of each config (``measured``, on this run's hosts: the mean
    over hosts, weighed by their generations) as the prior for configs of those models."""
    remaining = Counter(item.config.hash for item in items)
    model_of = {item.config.hash: item.config.model for item in items}
    models = set(model_of.values())
    seconds: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for m in measured:
        if m.model in models and m.generations > 0:
            seconds[m.config_hash] = seconds.get(m.config_hash, 0.0) + m.latency_s * m.generations
            counts[m.config_hash] += m.generations
            model_of.setdefault(m.config_hash, m.model)
    prior = {c: seconds[c] / counts[c] for c in counts}
    return WorkMix(dict(remaining), model_of, prior)


def format_duration(seconds: float) -> str:
    """e.g. "40 s", "12 min 5 s", "3 h 05 min", "2 d 4 h"."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s < 600 and s % 60 else f"{round(s / 60)} min"
    if s < 86400:
        hours, minutes = divmod(round(s / 60), 60)
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(round(s / 3600), 24)
    return f"{days} d {hours} h"


def format_rate(per_s: float) -> str:
    """A rate as people read it: "3.4/s" from one a second up, else per minute ("4.2/min"),
    where "0.0/s" said nothing of a slow run."""
    return f"{per_s:.1f}/s" if per_s >= 1 else f"{per_s * 60:.1f}/min"


def progress_line(
    done: int,
    total: int,
    failed: int,
    rate: Rate,
    eta_s: float | None = None,
    *,
    noun: str = "generations",
    failed_word: str = "failed",
) -> str:
    """e.g. "120/800 generations (15%), 3.4/s, ETA 3 min 20 s, 2 failed". ``eta_s``:
    the time left by the work's mix (``WorkMix``), else from the rate."""
    percent = 100.0 if total == 0 else 100.0 * done / total
    parts = [f"{done}/{total} {noun} ({percent:.0f}%)"]
    per_s = rate.per_s()
    if per_s is not None:
        parts.append(format_rate(per_s))
    eta = eta_s if eta_s is not None else rate.eta_s(total - done)
    if done < total:
        parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA unknown yet")
    if failed:
        parts.append(f"{failed} {failed_word}")
    return ", ".join(parts)


def request_timeouts(limits: Limits) -> str:
    """What ends a silent request, in the words of the spec's ``limits``."""
    return (
        f"a try gives up after {format_duration(limits.request_timeout_s)} "
        f"({format_duration(limits.first_request_timeout_s)} for a model's first request, "
        f"which may load it), up to {limits.max_attempts} tries "
        "(limits: request_timeout_s, first_request_timeout_s, max_attempts)"
    )
