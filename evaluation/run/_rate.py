"""How fast a run goes and when it will end: generations per second over the last
minute (a model switch or a slower config shows within a minute, unlike a rate since
the start), the time left at that rate, and durations as people read them."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 60.0


@dataclass
class Rate:
    """Generations per second from (time, done so far) readings within ``window_s``."""

    window_s: float = WINDOW_S
    _readings: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, now: float, done: int) -> None:
        self._readings.append((now, done))
        # Keep one reading at or before the window's start, so the rate spans the window.
        while len(self._readings) > 2 and now - self._readings[1][0] >= self.window_s:
            self._readings.popleft()

    def per_s(self) -> float | None:
        """None until two readings apart in time exist."""
        if len(self._readings) < 2:
            return None
        (t0, d0), (t1, d1) = self._readings[0], self._readings[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta_s(self, remaining: int) -> float | None:
        """Seconds until ``remaining`` more are done at the current rate (None: unknown)."""
        if remaining <= 0:
            return 0.0
        rate = self.per_s()
        return remaining / rate if rate else None


def format_duration(seconds: float) -> str:
    """e.g. "40 s", "12 min 5 s", "3 h 05 min", "2 d 4 h"."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s < 600 and s % 60 else f"{round(s / 60)} min"
    if s < 86400:
        hours, minutes = divmod(round(s / 60), 60)
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(round(s / 3600), 24)
    return f"{days} d {hours} h"


def progress_line(done: int, total: int, failed: int, rate: Rate) -> str:
    """e.g. "120/800 generations (15%), 3.4/s, ETA 3 min 20 s, 2 failed"."""
    percent = 100.0 if total == 0 else 100.0 * done / total
    parts = [f"{done}/{total} generations ({percent:.0f}%)"]
    per_s = rate.per_s()
    if per_s is not None:
        parts.append(f"{per_s:.1f}/s")
    eta = rate.eta_s(total - done)
    if done < total:
        parts.append(f"ETA {format_duration(eta)}" if eta is not None else "ETA unknown yet")
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)
