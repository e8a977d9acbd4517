"""What every chunk of a run shares (``GenerationContext``) and one run of a chunk on it
(``generate_once``): in the run's process (``tasks.generation``, the Prefect task) or in a
lane worker (``tasks.lane_workers``), which imports no Prefect (a worker's start: ~3.5 s
of CPU less on 2 loaded cores) and no storage module (~0.8 s less: the records it makes
are stored by the run's writer). The hosts' slots and spare slots are the caller's
(``tasks/adapters``: ``HostSlots``, ``PoolSpareSlots``), seen here as ``LaneSlots``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from evaluation.backends import Backend
from evaluation.backends.retry import RetryPolicy
from evaluation.run._chunk import as_chunk
from evaluation.run._generate import ChunkOutcome, run_chunk
from evaluation.run._pipelines import SharedCalls
from evaluation.run._record_writer import RecordWriter
from evaluation.run._slot_waits import LaneWatch
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.run._workers import LaneWorkers
from evaluation.spec import HostSpec
from evaluation.suites import Suite

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class Records(Protocol):
    """Where a chunk's records go: the run's ``RecordWriter``, or in a lane worker the
    pipe back to it (``tasks.lane_workers``)."""

    async def put(self, records: Sequence[GenerationRecord]) -> None: ...

    async def flush(self) -> None: ...


class Lane(Protocol):
    """One lane's hold on a slot of its host for one chunk (``tasks.adapters.lane_slot``):
    held for each attempt, lent to a spare call while its case has none, parked for the
    lane's next chunk when the chunk ends."""

    def attempt(self) -> AbstractAsyncContextManager[None]: ...

    def lend(self, to: Callable[[str, Any], bool]) -> None: ...

    def finish(self) -> None: ...


class LaneSlots(Protocol):
    """The hosts' slots of a run (``tasks.adapters.host_slots.HostSlots``)."""

    def lane(self, host: str, watch: LaneWatch | None = None) -> Lane: ...


@dataclass(frozen=True)
class GenerationContext:
    """What every chunk of one run shares (passed quoted: Prefect does not walk it).
    ``workers``: the lane worker processes that run the chunks (``slots``, ``backends``
    and ``shared`` are then theirs, not this process's)."""

    engine: Engine | None  # None in a lane worker (its chunks are retried by the run)
    experiment_id: int
    suite: Suite
    backends: Mapping[str, Backend]
    slots: LaneSlots | None
    policy: RetryPolicy
    writer: Records  # stores outcomes in batches behind the requests
    shared: SharedCalls | None = None  # spare slots and embeddings for pipelines
    workers: LaneWorkers | None = None


async def generate_once(
    host: HostSpec,
    items: list[WorkItem],
    context: GenerationContext,
    watch: LaneWatch | None = None,
) -> ChunkOutcome:
    """``items`` on ``host``, in this process or a lane worker's; ``watch``: told when the
    lane waits for a slot, holds one, holds none (``evaluation.run._slot_waits``)."""
    if context.workers is not None:  # stored by the dispatch's end (tasks/host_pool)
        writer = context.writer
        assert isinstance(writer, RecordWriter)
        try:
            return await context.workers.run(host, as_chunk(items), writer.put_now, watch)
        except Exception:
            await writer.flush()  # stored before the retry reads what is stored
            raise
    assert context.slots is not None
    lane = context.slots.lane(host.name, watch)
    # spare slots that take a lane's slot while its case has no call for it
    lend_to = getattr(context.shared.spare, "lend", None) if context.shared else None
    try:
        outcome = await run_chunk(
            context.backends[host.name],
            items,
            suite=context.suite,
            policy=context.policy,
            sink=context.writer.put,
            slot=lane.attempt,
            shared=context.shared,
            lend=partial(lane.lend, lend_to) if lend_to is not None else None,
            others=[b.host for b in context.backends.values()],
        )
        await context.writer.flush()  # the chunk ends with its outcomes stored
        return outcome
    finally:
        lane.finish()
