"""Where `show` and the selector rank a corpus metric apart: the leaderboard ranks chrF or
BLEU by its corpus value, the selector's quality is the mean of its per-case values
(0–1), and the two can put different configs first (a newcomer's `show` ranked one
config first, `recommend` picked the leaderboard's second with no word why). The answer
then says so in one line, with both figures. Which config is picked does not change: the
selector learns and is judged per case (``benchmarks/perf/results/issue50.md``), and a
corpus value has no per-case values to pair or to weigh by precision.

Read from the stored aggregates of each experiment of the task type that ranks by a
corpus metric (its first), as `show` reads them (the configs its last spec has); no
Prefect, no scorer loaded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from evaluation.compare import is_corpus_metric, stored_board
from evaluation.statistics.precision import significant
from evaluation.storage.models import Experiment
from evaluation.storage.training import PERCENT_METRICS
from evaluation.wording import corpus_value_words, per_case_mean, per_case_words
from selection._candidates import params_label
from selection.quality_text import quality

Boards = Mapping[str, Mapping[str, Mapping[str, float]]]
"""Corpus metric -> experiment -> config hash -> its corpus value on that leaderboard."""


def corpus_boards(session: Session, task_type: str) -> dict[str, dict[str, dict[str, float]]]:
    """The corpus values the leaderboards of ``task_type``'s experiments rank by, for
    those whose first metric is a corpus metric (``Boards``), newest first: each read as
    `show` reads it (:func:`evaluation.compare.stored_board`), so a config the
    experiment's last spec dropped is on none."""
    boards: dict[str, dict[str, dict[str, float]]] = {}
    newest_first = Experiment.id.desc()  # type: ignore[union-attr]
    experiments = session.exec(
        select(Experiment).where(Experiment.task_type == task_type).order_by(newest_first)
    )
    for experiment in experiments:
        if not experiment.metrics or not is_corpus_metric(first := experiment.metrics[0]):
            continue
        _, aggregates = stored_board(session, experiment.id)
        values = {
            a["config_hash"]: float(a["mean"])
            for a in aggregates
            if a["metric"] == first and a["mean"] is not None
        }
        if values:
            boards.setdefault(first, {})[experiment.name] = values
    return boards


def on_its_scale(metric: str) -> str:
    """The selector's scale of ``metric``: "0–1: chrf / 100" for one scored 0–100."""
    return f"0–1: {metric} / 100" if metric in PERCENT_METRICS else "0–1"


def per_case_note(metric: str) -> str:
    """What the selector's quality is of a corpus metric, after its name in the answer's
    note: "; chrf here: the mean of its per-case values, not the corpus chrf the
    leaderboard shows and ranks by (0–1: chrf / 100)"; "" for another metric."""
    if not is_corpus_metric(metric):
        return ""
    return f"; {per_case_words(metric)} ({on_its_scale(metric)})"


def ranked_apart(
    metric: str,
    boards: Boards,
    table: pd.DataFrame,
    shown: pd.DataFrame,
    chosen: Any,
    refused: Mapping[Any, tuple[str, ...]],
    limited: bool = True,
) -> str | None:
    """The line for a pick that is not first on the leaderboard of ``metric``: of the
    configs ``shown`` (measured to meet the limits, as a reader of `show` finds them),
    the one ranked first by its corpus value on the experiment's board that holds most
    of them (the newest of those tied), with its corpus value and the pick's, and both
    configs' quality estimates, the figure the selector ranks by; ``refused``: why the
    limits refuse a candidate, said where they refuse that one; ``limited``: the request
    set limits. None where the pick is
    first, or nothing is ranked."""
    found = boards.get(metric, {}) if is_corpus_metric(metric) else {}
    wanted = {str(i) for i in shown.index}
    held = [(sum(c in wanted for c in board), name) for name, board in found.items()]
    if not held or max(held)[0] == 0:
        return None
    count = max(held)[0]
    experiment = next(name for n, name in held if n == count)  # boards are newest first
    board = {c: v for c, v in found[experiment].items() if c in wanted}
    first = max(board, key=board.__getitem__)
    if first == str(chosen):
        return None
    best, pick = table.loc[first], table.loc[chosen]
    ours = found[experiment].get(str(chosen))
    label = params_label(best)
    figures = f"{label} {significant(board[first])}, " + (
        f"this pick {significant(ours)}" if ours is not None else f"this pick not in {experiment}"
    )
    line = (
        f"`evalflow show {experiment}` ranks {label} first of the configs "
        f"{'measured to meet the limits' if limited else 'measured'}, by "
        f"{corpus_value_words(metric)} ({figures}); the selector ranks by "
        f"{per_case_mean(metric)} ({on_its_scale(metric)}), estimated "
        f"{quality(float(pick['quality']))} for this pick and "
        f"{quality(float(best['quality']))} for {label}"
    )
    if why := refused.get(first):
        line += f", which the limits refuse here: {'; '.join(why)}"
    return line
