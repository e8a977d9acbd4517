"""The terminal progress bar of `evalflow run`: generations done, rate, ETA and failures
so far, drawn on stderr beside (not inside) the log. Only on a terminal and not with -q."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.default_styles import DEFAULT_STYLES
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from rich.theme import Theme

_BAR_THEME = Theme({k: v for k, v in DEFAULT_STYLES.items() if k.startswith(("bar.", "progress."))})


class RunProgress:
    """A rich progress bar fed by ``tasks.progress`` listeners: one bar per run label."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            _EtaColumn(),
            TextColumn("{task.fields[failed]} failed"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def update(
        self, label: str, done: int, total: int, failed: int, eta_s: float | None = None
    ) -> None:
        """A listener for ``tasks.progress.LISTENERS``; ``eta_s``: the run's ETA by its
        work mix (None: rich's own, from the count done)."""
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(
                label, total=total, failed=0, rate="", eta_s=None
            )
        task = self.tasks[label]
        self.progress.update(task, completed=done, total=total, failed=failed, eta_s=eta_s)
        speed = next(t.speed for t in self.progress.tasks if t.id == task)
        rate = "" if speed is None else f"{speed:.1f} gen/s"
        self.progress.update(task, rate=rate)


class _EtaColumn(TimeRemainingColumn):
    """The run's own ETA (by the work's mix) when it gave one, else rich's."""

    def render(self, task) -> Text:
        eta_s = task.fields.get("eta_s")
        if eta_s is None or task.finished:
            return super().render(task)
        minutes, seconds = divmod(int(eta_s), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


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
