"""The generation task: one chunk of work items on one host."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run
from prefect.utilities.annotations import quote
from sqlalchemy.engine import Engine

from evaluation.backends import Backend
from evaluation.backends.retry import RetryPolicy
from evaluation.run._chunk import as_chunk
from evaluation.run._generate import ChunkOutcome, run_chunk
from evaluation.run._pipelines import SharedCalls
from evaluation.run._record_writer import OnStored, RecordWriter
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import HostSpec
from evaluation.storage.db import session_scope
from evaluation.storage.repository import completed_keys, save_generations
from evaluation.suites import Suite
from tasks.adapters.prefect_concurrency import HostSlots
from tasks.adapters.spare_slots import PoolSpareSlots


@dataclass(frozen=True)
class GenerationContext:
    """What every chunk of one run shares (passed quoted: Prefect does not walk it)."""

    engine: Engine
    experiment_id: int
    suite: Suite
    backends: Mapping[str, Backend]
    slots: HostSlots
    policy: RetryPolicy
    writer: RecordWriter  # stores outcomes in batches behind the requests
    shared: SharedCalls | None = None  # spare slots and embeddings for pipelines


def record_writer(engine: Engine, experiment_id: int, on_stored: OnStored) -> RecordWriter:
    """The run's one writer of generation outcomes (``on_stored``: each batch stored)."""

    def write(records: list[GenerationRecord]) -> None:
        with session_scope(engine) as session:
            save_generations(session, experiment_id, records)

    return RecordWriter(write, on_stored)


def host_tag(host: HostSpec) -> str:
    """The tag of a host's generation task runs, e.g. "gpu:gpu-a". No concurrency limit
    goes with it: a ``tag:`` limit would hold a slot for a whole chunk, retry waits
    included. The host's slots are its ``ollama-host-*`` limit
    (tasks/adapters/prefect_concurrency.py)."""
    return f"gpu:{host.name}"


def _chunk_name() -> str:
    """e.g. "generate gpu-a llama3.2:3b x100": the host and model show in the UI."""
    params = task_run.parameters
    items = params["items"]
    if isinstance(items, quote):  # the flow passes work quoted so Prefect does not walk it
        items = items.unquote()
    model = items[0].model if items else "-"
    return f"generate {params['host'].name} {model} x{len(items)}"


@task(name="generate-chunk", task_run_name=_chunk_name, cache_policy=NO_CACHE, retries=1)
async def generate_chunk(
    host: HostSpec, items: list[WorkItem], context: GenerationContext
) -> ChunkOutcome:
    """Generate ``items`` on ``host``. Each generation is retried on its own with backoff;
    the host's concurrency slot is given back whenever an attempt fails and handed to
    the lane's next chunk when this one ends (tasks/adapters/prefect_concurrency.py). A task retry
    (after a crash) skips what the first attempt already stored."""
    todo = items
    if task_run.run_count > 1:
        with session_scope(context.engine) as session:
            done = completed_keys(session, context.experiment_id)
        todo = as_chunk(items)  # what an idle lane took from it stays taken
        todo.restart(done)
    lane = context.slots.lane(host.name)
    spare = context.shared.spare if context.shared is not None else None
    try:
        outcome = await run_chunk(
            context.backends[host.name],
            todo,
            suite=context.suite,
            policy=context.policy,
            sink=context.writer.put,
            slot=lane.attempt,
            shared=context.shared,
            lend=partial(lane.lend, spare.lend) if isinstance(spare, PoolSpareSlots) else None,
        )
        await context.writer.flush()  # the chunk ends with its outcomes stored
        return outcome
    finally:
        lane.finish()
