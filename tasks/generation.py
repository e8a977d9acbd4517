"""The generation task: every lane of one host, each running chunks of work items
(a chunk's run itself is ``evaluation.run._chunk_run``'s, which the lane workers import
without Prefect)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run
from sqlalchemy.engine import Engine

from evaluation.errors import TryLater
from evaluation.run._chunk import as_chunk
from evaluation.run._chunk_run import GenerationContext
from evaluation.run._chunk_run import generate_once as _generate
from evaluation.run._generate import ChunkOutcome
from evaluation.run._record_writer import OnStored, RecordWriter
from evaluation.run._slot_waits import LaneWatch
from evaluation.run._work import GenerationRecord, WorkItem, WorkKey
from evaluation.run._writer_process import WriterProcess
from evaluation.spec import HostSpec


def record_writer(
    engine: Engine, experiment_id: int, on_stored: OnStored, *, process: WriterProcess | None = None
) -> RecordWriter:
    """The run's one writer of generation outcomes (``on_stored``: each batch stored);
    ``process``: the batches are stored there (``_writer_process.stores_apart``)."""
    if process is not None:
        return RecordWriter(process.write, on_stored)
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import save_generations

    def write(records: list[GenerationRecord]) -> None:
        with session_scope(engine) as session:
            save_generations(session, experiment_id, records)

    return RecordWriter(write, on_stored)


def host_tag(host: HostSpec) -> str:
    """The tag of a host's generation task run, e.g. "gpu:gpu-a". No concurrency limit
    goes with it: a ``tag:`` limit would hold a slot for the host's whole generation.
    The host's slots are its ``ollama-host-*`` limit (tasks/adapters/host_slots.py)."""
    return f"gpu:{host.name}"


def _host_run_name() -> str:
    """e.g. "generate gpu-a": the host shows in the UI."""
    return f"generate {task_run.parameters['host'].name}"


@task(name="generate-on-host", task_run_name=_host_run_name, cache_policy=NO_CACHE)
async def generate_on_host(host: HostSpec, lanes: Callable[[], Awaitable[None]]) -> None:
    """Every lane of ``host`` in one task run, each running chunk after chunk
    (``generate_chunk``): a task run per chunk cost the API server several writes before
    the chunk's first request, which at 256 slots kept most of them waiting
    (``evaluation.run._dispatch.HostRunner``)."""
    await lanes()


async def generate_chunk(
    host: HostSpec,
    items: list[WorkItem],
    context: GenerationContext,
    watch: LaneWatch | None = None,
) -> ChunkOutcome:
    """Generate ``items`` on ``host``. Each generation is retried on its own with backoff;
    the host's concurrency slot is given back whenever an attempt fails and handed to
    the lane's next chunk when this one ends (tasks/adapters/host_slots.py). A
    chunk that fails otherwise (a write that failed, no slot in time) is tried once more,
    skipping what the first attempt stored; one stopped for later (``TryLater``: a slot
    write found the Prefect API busy for its whole budget) is not: what it finished is
    stored and the run stops. ``watch``: told of the lane's slot
    (``evaluation.run._slot_waits``)."""
    try:
        return await _generate(host, items, context, watch)
    except TryLater:
        await context.writer.flush()
        raise
    except Exception as exc:
        get_run_logger().warning("a chunk on %s failed (%s); trying it once more", host.name, exc)
    todo = as_chunk(items)  # what an idle lane took from it stays taken
    todo.restart(_stored_keys(context.engine, context.experiment_id))
    return await _generate(host, todo, context, watch)


def _stored_keys(engine: Engine | None, experiment_id: int) -> set[WorkKey]:
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import completed_keys

    with session_scope(engine) as session:
        return completed_keys(session, experiment_id)
