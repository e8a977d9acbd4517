"""A progress artifact that follows a long run, updated at most once a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact

#: Called in this process as generations are stored: (label, done, total, failed so far).
#: The CLI draws its terminal progress bar from it; a worker's run has no listener.
ProgressListener = Callable[[str, int, int, int], None]
LISTENERS: list[ProgressListener] = []


class ProgressArtifact:
    """Shows completion in the Prefect UI and logs every 10% in the terminal."""

    def __init__(
        self, artifact_id: UUID | None, label: str, total: int, min_interval_s: float = 1.0
    ):
        self._id = artifact_id
        self._total = total
        self._done = 0
        self._failed = 0
        self._label = label
        self._min_interval_s = min_interval_s
        self._last_update = 0.0
        self._last_logged_decile = -1
        self._pending: asyncio.Task | None = None

    @classmethod
    async def create(cls, key: str, label: str, total: int) -> ProgressArtifact:
        artifact_id = await acreate_progress_artifact(
            progress=0.0, key=key, description=f"Generation progress: {label}"
        )
        return cls(artifact_id, label, total)

    async def advance(self, finished: int, failed: int = 0) -> None:
        """Count ``finished`` more generations (stored, ok or failed), ``failed`` of them
        failed."""
        self._done += finished
        self._failed += failed
        done, total = self._done, self._total
        for listener in LISTENERS:
            listener(self._label, done, total, self._failed)
        percent = 100.0 if total == 0 else 100.0 * done / total
        decile = int(percent // 10)
        if decile > self._last_logged_decile:
            self._last_logged_decile = decile
            get_run_logger().info(
                "%s: %d/%d generations (%.0f%%)", self._label, done, total, percent
            )
        now = time.monotonic()
        due = done == total or now - self._last_update >= self._min_interval_s
        if self._id is not None and due and (self._pending is None or self._pending.done()):
            self._last_update = now
            # In the background: a lane that stored a result must not wait on the API
            # (awaiting it here cost ~10% of a sweep's throughput on the embedded server).
            self._pending = asyncio.create_task(
                aupdate_progress_artifact(self._id, progress=percent)
            )

    async def flush(self) -> None:
        """Wait for the last update and show the final count."""
        if self._pending is not None:
            await self._pending
        if self._id is not None and self._total:
            await aupdate_progress_artifact(self._id, progress=100.0 * self._done / self._total)
