"""What a retraining is doing now, for a command that shows it (`evalflow retrain` prints
each step: it was silent for 38-77 s until its result): listeners called with each
step's words as it begins."""

from __future__ import annotations

from collections.abc import Callable

#: Called with each step's words; `evalflow retrain` adds one while its flow runs.
LISTENERS: list[Callable[[str], None]] = []


def announce(step: str) -> None:
    """Tell every listener that ``step`` begins."""
    for listener in list(LISTENERS):
        listener(step)
