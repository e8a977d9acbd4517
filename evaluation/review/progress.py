"""Progress lines of a judge run: how many verdicts were already stored (a rerun skips
them), then done/total, rate and ETA at most every ``interval_s`` (the rate and the line
are `run`'s: ``evaluation.run._rate``). A verdict is one generation graded on every
criterion, or one pair judged in both orders."""

from __future__ import annotations

import time
from collections.abc import Callable

from evaluation.run._rate import Rate, progress_line


class JudgeProgress:
    """``JudgeProgress(write, *, interval_s=30.0, clock=time.monotonic)``: ``write``
    gets each line."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._interval_s = interval_s
        self._clock = clock
        self._rate = Rate()
        self._total = 0
        self._done = 0
        self._unscored = 0
        self._last = 0.0

    def asking(self, judge: str) -> None:
        """Before the judge's server is first asked: a busy one may keep it silent for a
        minute (it answers when its current requests finish)."""
        self._write(
            f"waiting for the judge's server to answer ({judge}; a busy one can take a minute)"
        )

    def start(self, stored: int, todo: int) -> None:
        """``stored`` verdicts are already in the database; ``todo`` are to be asked."""
        self._total = todo
        self._last = self._clock()
        self._rate.add(self._last, 0)
        if stored and not todo:
            self._write(f"all {stored} verdicts already stored; nothing to ask the judge")
        elif stored:
            self._write(
                f"{stored} of {stored + todo} verdicts already stored (skipped); "
                f"judging the other {todo}"
            )

    def completed(self, scored: bool) -> None:
        """One verdict stored; a line when ``interval_s`` has passed since the last."""
        self._done += 1
        self._unscored += not scored
        now = self._clock()
        self._rate.add(now, self._done)
        if now - self._last >= self._interval_s and self._done < self._total:
            self._last = now
            self._write(
                progress_line(
                    self._done,
                    self._total,
                    self._unscored,
                    self._rate,
                    noun="verdicts",
                    failed_word="unscored",
                )
            )
