"""The smoke level's verdict: did every config, host and model answer?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evaluation.errors import EvalError, without_class_name

if TYPE_CHECKING:  # not before a run's first generation: the frame comes from the caller
    import pandas as pd

CAUSE_CHARS = 160  # a longer cause is cut at its last space within this (an error: ~1,000)


@dataclass(frozen=True)
class SmokeGroup:
    """The failed generations of one host that failed for one cause."""

    host: str
    cause: str
    failed: int
    models: tuple[str, ...]
    configs: int

    def line(self) -> str:
        configs = f"{self.configs} config{'s' * (self.configs != 1)}"
        return f"{self.failed} on {self.host} ({', '.join(self.models)}: {configs}): {self.cause}"


class SmokeFailed(EvalError):
    """A smoke run had failed generations: fix them before spending a full run. Not the
    user's input: `run` says it in a few lines, grouped by host and cause, and exits 1."""

    def __init__(self, failed: int, total: int, groups: list[SmokeGroup]) -> None:
        self.failed, self.total, self.groups = failed, total, groups
        causes = "; ".join(g.line() for g in groups)
        super().__init__(f"{self.headline()}: {causes}")

    def __reduce__(self):  # pickled (Prefect may): rebuilt from its parts, not its message
        return type(self), (self.failed, self.total, self.groups)

    def headline(self) -> str:
        return f"smoke level failed: {self.failed} of {self.total} generations did not succeed"

    def lines(self) -> list[str]:
        """The headline, then a line per host and cause."""
        return [f"{self.headline()}:", *(f"  {g.line()}" for g in self.groups)]


def smoke_failure(
    generations: pd.DataFrame, models: dict[str, str], hosts_down: dict[str, str]
) -> SmokeFailed | None:
    """The smoke level's failure, or None when every generation succeeded.
    ``generations``: stored rows of the smoke cases; ``models``: config hash → model;
    ``hosts_down``: host → why this run found it down (``DispatchReport.hosts_down``),
    the cause of every failure on it (its rows' errors name each model: one host killed
    was a line per config and model, 1,250 characters)."""
    failed = generations[generations["status"] != "ok"]
    if failed.empty:
        return None
    host = failed["host"].fillna("").replace("", "no host")
    cause = [
        _down(hosts_down[h], h) if h in hosts_down else _said(error, h)
        for h, error in zip(host, failed["error"], strict=True)
    ]
    rows = failed.assign(host=host, cause=cause, model=failed["config_hash"].map(models))
    groups = [
        SmokeGroup(
            host=h,
            cause=c,
            failed=len(g),
            models=tuple(sorted(g["model"].dropna().unique())),
            configs=g["config_hash"].nunique(),
        )
        for (h, c), g in rows.groupby(["host", "cause"], sort=True)
    ]
    groups.sort(key=lambda g: -g.failed)
    return SmokeFailed(len(failed), len(generations), groups)


def _down(reason: str, host: str) -> str:
    """``evaluation.run._generate.host_down_reason``'s words, less the host it names."""
    return f"the host is down: {_cut(reason.removeprefix(f'{host} '))}"


def _said(error: str | None, host: str) -> str:
    """A stored error's first line, less the class name it starts with and the host its
    group names (``BackendRejected: gpu: HTTP 400 ...``), cut at a word."""
    line = (error or "no reason recorded").strip().split("\n")[0]
    return _cut(without_class_name(line).removeprefix(f"{host}: "))


def _cut(text: str) -> str:
    if len(text) <= CAUSE_CHARS:
        return text
    return text[:CAUSE_CHARS].rsplit(" ", 1)[0] + " …"
