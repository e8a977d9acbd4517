"""Lines on stderr that say what a long command is doing while it does it: each step as
it begins, with the seconds since the command began (`retrain: fitting quality (target 1
of 5) · 12 s`), and, while one step is quiet for long (Prefect starting: 44 s on a
newcomer's first run, at load 5), a line every ``EVERY_S`` seconds that it still is.
A terminal's `run` has its display instead (``flows.cli.progress``); `-q` prints none."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from flows.cli.progress import seconds_text

EVERY_S = 10.0


class _Stop(Protocol):
    def wait(self, timeout: float) -> bool: ...


class Steps:
    """``steps("reading the stored results")`` says that step of ``command``; nothing
    where not ``enabled``."""

    def __init__(
        self,
        command: str,
        *,
        enabled: bool = True,
        write: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        began: float | None = None,
    ) -> None:
        """``began``: when the command began, on ``clock`` (default: now)."""
        self.command = command
        self.enabled = enabled
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.clock = clock
        self.began = clock() if began is None else began

    def __call__(self, step: str) -> None:
        if self.enabled:
            self.write(f"{self.command}: {step} · {seconds_text(self.clock() - self.began)}")

    @contextmanager
    def quiet_for_long(
        self, step: str, every_s: float = EVERY_S, *, said: bool = False
    ) -> Iterator[None]:
        """Say ``step`` (unless ``said`` already), then every ``every_s`` seconds while
        the block runs, that it still goes on (a thread: the block may wait in a call
        that never returns to Python, as a server's start does)."""
        if not said:
            self(step)
        if not self.enabled:
            yield
            return
        stop = threading.Event()
        beat = threading.Thread(
            target=self.beat, args=(step, stop, every_s), name="evalflow-steps", daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()

    def beat(self, step: str, stop: _Stop, every_s: float) -> None:
        """Until ``stop`` is set: at every ``every_s`` seconds since the command began
        (10 s, 20 s, ...), ``step`` still goes on. Counted from when the beat started,
        `run`'s first line came at 19-22 s (its Prefect import comes first) and a 13 s
        start said none."""
        while not stop.wait(every_s - (self.clock() - self.began) % every_s):
            self(f"{step}, still")
