"""Why a slot write gave no slot: ``SlotUnavailable`` for the run (a host's limit is
missing, no slot came free in time, the Prefect API stayed busy: ``prefect_client``),
and the answer ``HostSlots`` acts on itself: the limit full now (``_SlotsFull``, the
server's 423)."""

from __future__ import annotations

from evaluation.errors import EvalError


class SlotUnavailable(EvalError):
    """A host's concurrency limit is missing, or no slot came free in time."""


class _SlotsFull(Exception):
    """The limit has no free slot now (the server's 423)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"no free slot; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s
