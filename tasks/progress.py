"""A progress artifact that follows a long run, updated at most once a second: the
percentage as its bar, and done/total, rate, ETA and failures in its description (what
the Prefect UI shows of a run on a worker, where no terminal bar is drawn)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from sqlalchemy.engine import Engine

from evaluation.monitor import LiveRun, set_stage
from evaluation.run._rate import Rate, WorkMix, progress_line
from evaluation.run._work import GenerationRecord

if TYPE_CHECKING:
    from evaluation.run._dispatch import Unservable


@dataclass(frozen=True)
class Reading:
    """Where a run stands: generations done of ``total`` (``failed`` of them failed), the
    rate and ETA the log and the artifact also print (one definition: ``Rate``), and,
    once generation is over, the step under way (``step``, e.g. "scoring"). Before the
    hosts get their first requests, ``note`` says what generation waits on ("starting 2
    lane workers…"; "" once they get them). ``first_answers_awaited``: the models whose
    first answer all the work left waits on (``WorkMix.first_answers_awaited``)."""

    label: str
    done: int
    total: int
    failed: int
    per_s: float | None
    eta_s: float | None
    step: str | None = None
    note: str | None = None
    first_answers_awaited: tuple[str, ...] = ()


#: Called in this process as generations are stored and as each later step starts.
#: The CLI draws its terminal progress bar from it; a worker's run has no listener.
ProgressListener = Callable[[Reading], None]
LISTENERS: list[ProgressListener] = []
_clock = time.monotonic  # the rate's clock (a test sets its own)


class ProgressArtifact:
    """Shows completion, rate and ETA in the Prefect UI and logs them every 10%."""

    def __init__(
        self,
        artifact_id: UUID | None,
        label: str,
        total: int,
        min_interval_s: float = 1.0,
        mix: WorkMix | None = None,
        live: LiveRun | None = None,
    ):
        self._id = artifact_id
        self._live = live  # the monitor's row (evaluation.monitor), written as it goes
        self._total = total
        self._done = 0
        self._lost = 0  # of done: never sent (``never_answered``), not in the rate
        self._failed = 0
        self._label = label
        self._min_interval_s = min_interval_s
        self._last_update = 0.0
        self._last_logged_decile = -1
        self._pending: asyncio.Task | None = None
        self._shown: tuple[float, str] | None = None  # what the last update sent said
        self._rate = Rate()
        self._rate.add(_clock(), 0)
        self._restart = False  # the first batch after ``work_starts`` starts the count
        self._mix = mix  # the ETA by the work left of each config
        if mix is not None:
            mix.start(_clock())

    def waiting(self, note: str) -> None:
        """Generation waits on ``note`` ("starting 2 lane workers…") before the hosts get
        their first requests: the listeners show it (the terminal's generating line, whose
        count stood still without a word for seconds) until ``work_starts``."""
        self._tell(note)

    def work_starts(self) -> None:
        """The hosts get their first requests now: the rate and the time left are
        measured from the first generations stored after this. Counted from the run's
        start, they counted the lane workers' start-up (each a new interpreter: 42–82 s
        under load): an ETA of hours. Counted from here, they counted the pipeline's
        filling (newcomers' nctput-4, `--workers 4`, 64 slots: answers 0.5-1.0 s after
        this, stored 4.7 s after it through the workers and the writer process; the
        first line read 15.8/s, ETA 6 min, for a phase of 18 s at ~320/s): no rate or ETA
        until a second batch is stored."""
        self._rate = Rate()
        self._restart = True
        if self._mix is not None:
            self._mix.start(_clock())
        self._tell("")  # what it waited on is over

    def _tell(self, note: str) -> None:
        reading = Reading(self._label, self._done, self._total, self._failed, None, None, note=note)
        for listener in LISTENERS:
            listener(reading)

    @classmethod
    async def create(
        cls,
        key: str,
        label: str,
        total: int,
        mix: WorkMix | None = None,
        live: LiveRun | None = None,
    ) -> ProgressArtifact:
        tracker = cls(None, label, total, mix=mix, live=live)
        tracker._id = await acreate_progress_artifact(
            progress=0.0, key=key, description=tracker.description()
        )
        return tracker

    def description(self) -> str:
        """e.g. "Generation progress: demo: 120/800 generations (15%), 3.4/s, ETA 3 min"."""
        line = progress_line(self._done, self._total, self._failed, self._rate, self._eta())
        return f"Generation progress: {self._label}: {line}"

    def _eta(self) -> float | None:
        """The time left by the work's mix, else by the rate."""
        if self._mix is not None:
            return self._mix.eta_s(_clock())
        return self._rate.eta_s(self._total - self._done)

    async def stored(self, records: Sequence[GenerationRecord]) -> None:
        """The record writer's callback: ``records`` were just stored."""
        if self._mix is not None:
            now = _clock()
            for record in records:
                service = record.result.latency_s if record.result is not None else None
                self._mix.stored(
                    now, record.item.config.hash, service, record.host, record.answered_at
                )
            if self._restart:
                self._mix.start(now)
        await self.advance(len(records), sum(not r.ok for r in records))
        if self._live is not None:
            self._live.answered({r.host for r in records})
            errors = [None if r.ok else r.error for r in records]
            self._live.stored(errors, self._rate.per_s(), self._eta())

    async def never_answered(self, unservable: Sequence[Unservable]) -> None:
        """The dispatch's callback: ``unservable`` failed now (no live host serves their
        model; stored as failed once generation ends). Counted as they happen, so the
        terminal's line and the monitor show the failures the run ends with (a server
        killed mid-run left the line at 0 failed where 21 had); done, but not in the rate
        or the work mix's host time (no host spent any on them)."""
        if self._mix is not None:
            now = _clock()
            for lost in unservable:
                self._mix.stored(now, lost.item.config.hash, None, lost.host)
        self._lost += len(unservable)
        await self.advance(len(unservable), len(unservable))
        if self._live is not None:
            self._live.stored([u.error for u in unservable], self._rate.per_s(), self._eta())

    async def advance(self, finished: int, failed: int = 0) -> None:
        """Count ``finished`` more generations (stored, ok or failed), ``failed`` of them
        failed."""
        self._done += finished
        self._failed += failed
        done, total = self._done, self._total
        now = _clock()
        self._rate.add(now, done - self._lost)  # after ``work_starts``: its first reading
        self._restart = False
        reading = Reading(
            self._label,
            done,
            total,
            self._failed,
            self._rate.per_s(),
            self._eta(),
            first_answers_awaited=self._mix.first_answers_awaited() if self._mix else (),
        )
        for listener in LISTENERS:
            listener(reading)
        percent = 100.0 if total == 0 else 100.0 * done / total
        decile = int(percent // 10)
        if decile > self._last_logged_decile:
            self._last_logged_decile = decile
            line = progress_line(done, total, self._failed, self._rate, self._eta())
            get_run_logger().info("%s: %s", self._label, line)
        due = done == total or now - self._last_update >= self._min_interval_s
        if self._id is not None and due and (self._pending is None or self._pending.done()):
            self._last_update = now
            # In the background: a lane that stored a result must not wait on the API
            # (awaiting it here cost ~10% of a sweep's throughput on the embedded server).
            self._shown = (percent, self.description())
            self._pending = asyncio.create_task(
                aupdate_progress_artifact(self._id, progress=percent, description=self._shown[1])
            )

    async def flush(self) -> None:
        """Wait for the last update and show the final count, unless that update said it
        already (the last batch stored sends it: a second write to the API, the last
        step of the generation phase)."""
        if self._pending is not None:
            await self._pending
        if self._id is not None and self._total:
            final = (100.0 * self._done / self._total, self.description())
            if final != self._shown:
                self._shown = final
                await aupdate_progress_artifact(self._id, progress=final[0], description=final[1])


def announce_step(
    label: str, step: str, total: int = 0, *, engine: Engine | None = None, stage: str = ""
) -> None:
    """Say which step of the run is under way ("generating", of ``total``; "scoring"):
    a log line, and a line of the terminal display, so no step sits silent; with
    ``engine``, the monitor's live row shows ``stage`` (one of its stages)."""
    get_run_logger().info("%s: %s…", label, step)
    if engine is not None and stage:
        set_stage(engine, label, stage)
    for listener in LISTENERS:
        listener(Reading(label, 0, total, 0, None, None, step))
