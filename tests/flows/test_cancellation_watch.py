"""The generate stage's watch on its own flow run (tasks/adapters/cancellation.py), with
a stand-in for Prefect's client: the work is cancelled, and its cleanup awaited, once
the flow run says Cancelling; a cancel seen as the work ends still counts."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

from prefect.states import Cancelling, Running

from tasks.adapters.cancellation import unless_cancelled

FLOW_RUN = uuid.uuid4()


class Client:
    """Answers read_flow_run with Running until ``cancel_at`` (monotonic), then
    Cancelling; counts the reads."""

    def __init__(self, cancel_at: float) -> None:
        self.cancel_at = cancel_at
        self.reads = 0

    async def read_flow_run(self, flow_run_id):
        assert flow_run_id == FLOW_RUN
        self.reads += 1
        state = Cancelling() if time.monotonic() >= self.cancel_at else Running()
        return SimpleNamespace(state=state)


def test_work_is_cancelled_within_a_poll_and_its_cleanup_finishes_first():
    cleaned = []

    async def work() -> str:
        try:
            await asyncio.sleep(30)
            return "done"
        finally:
            await asyncio.sleep(0.05)  # giving a host slot back
            cleaned.append(True)

    async def main() -> tuple[object, float]:
        client = Client(cancel_at=time.monotonic() + 0.2)
        started = time.monotonic()
        result = await unless_cancelled(work(), client, FLOW_RUN, poll_s=0.1)
        return result, time.monotonic() - started

    result, took = asyncio.run(main())
    assert result is None and cleaned == [True]
    assert took < 1.0


def test_finished_work_returns_its_result_unless_a_cancel_came_with_its_end():
    async def work() -> str:
        await asyncio.sleep(0.05)
        return "done"

    never = Client(cancel_at=float("inf"))
    assert asyncio.run(unless_cancelled(work(), never, FLOW_RUN, poll_s=1.0)) == "done"
    assert never.reads == 1  # one look as it ended
    already = Client(cancel_at=0.0)
    assert asyncio.run(unless_cancelled(work(), already, FLOW_RUN, poll_s=1.0)) is None
    assert asyncio.run(unless_cancelled(work(), never, None)) == "done"  # no flow run
