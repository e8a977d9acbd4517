"""The terminal progress bar of `evalflow run`: generations done, rate, ETA and failures
so far, drawn on stderr beside (not inside) the log, then the step under way after
generation (scoring, comparing, writing the report). Only on a terminal and not with -q.
The rate and ETA are the ones the log lines print (``tasks.progress.Reading``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.default_styles import DEFAULT_STYLES
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.theme import Theme

from evaluation.run._rate import format_duration

if TYPE_CHECKING:
    from tasks.progress import Reading

# rich's bar colours are RGB: a 16-colour terminal gets both the finished bar's green
# and the empty bar's grey23 as the same grey (SGR 90), so a complete bar looked empty.
# Named colours keep their hue on every colour system.
_BAR_THEME = Theme(
    {k: v for k, v in DEFAULT_STYLES.items() if k.startswith(("bar.", "progress."))}
    | {"bar.complete": "magenta", "bar.finished": "green", "bar.pulse": "magenta"}
)


class RunProgress:
    """A rich progress bar fed by ``tasks.progress`` listeners: one bar per run label."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[step]}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def update(self, reading: Reading) -> None:
        """A listener for ``tasks.progress.LISTENERS``."""
        label = reading.label
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(
                label, total=reading.total, failed=0, rate="", eta="ETA -", step=""
            )
        task = self.tasks[label]
        if reading.step is not None:  # after generation: the counts stay as they were
            self.progress.update(task, step=f"· {reading.step}…")
            return
        rate = "" if reading.per_s is None else f"{reading.per_s:.1f} gen/s"
        if reading.done >= reading.total:
            eta = ""
        elif reading.eta_s is None:
            eta = "ETA -"
        else:
            eta = f"ETA {format_duration(reading.eta_s)}"
        self.progress.update(
            task,
            completed=reading.done,
            total=reading.total,
            failed=reading.failed,
            rate=rate,
            eta=eta,
        )


@contextmanager
def run_progress(enabled: bool, console: Console | None = None) -> Iterator[RunProgress | None]:
    """Show the bar while the block runs (``enabled`` and a terminal), else nothing."""
    console = console or _log_console() or Console(stderr=True)
    if not (enabled and console.is_terminal):
        yield None
        return
    from tasks.progress import LISTENERS

    bar = RunProgress(console)
    console.push_theme(_BAR_THEME)  # Prefect's console has only its own log styles
    LISTENERS.append(bar.update)
    try:
        with bar.progress:
            yield bar
    finally:
        LISTENERS.remove(bar.update)
        console.pop_theme()


def _log_console() -> Console | None:
    """The console of Prefect's log handler: a bar drawn on it keeps the log lines above
    itself instead of breaking into them."""
    for handler in logging.getLogger().handlers:
        console = getattr(handler, "console", None)
        if type(handler).__name__ == "PrefectConsoleHandler" and isinstance(console, Console):
            return console
    return None
