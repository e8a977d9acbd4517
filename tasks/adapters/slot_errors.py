"""Why a slot write gave no slot: ``SlotUnavailable`` for the run (a host's limit is
missing, no slot came free in time; ``SlotWritesBusy``: the Prefect API stayed busy,
``prefect_client``), and the answer ``HostSlots`` acts on itself: the limit full now
(``_SlotsFull``, the server's 423)."""

from __future__ import annotations

from evaluation.errors import EvalError, TryLater


class SlotUnavailable(EvalError):
    """A host's concurrency limit is missing, or no slot came free in time."""


class SlotWritesBusy(SlotUnavailable, TryLater):
    """A slot write found the run's Prefect API busy for the whole budget: nothing of the
    case is at fault, so it is not stored as failed; the run stops, interrupted, for the
    same command to resume later (exit 75)."""


class _SlotsFull(Exception):
    """The limit has no free slot now (the server's 423)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"no free slot; retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s
