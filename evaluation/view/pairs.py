"""Two configs compared case by case on one metric, for the side-by-side page: on how
many cases each is better (case means, samples averaged first) and the paired test the
comparison runs (``compare_many``: McNemar for binary scores, paired t or Wilcoxon
otherwise), with the cases each side wins, to link to."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from evaluation.errors import EvalError


@dataclass(frozen=True)
class PairSummary:
    metric: str
    a_better: tuple[str, ...]  # case ids where A's case mean is better (descriptive: higher)
    b_better: tuple[str, ...]
    tied: int
    test: str
    p_value: float | None
    diff: float | None  # mean A − B over the cases both scored
    diff_ci: tuple[float, float] | None  # its 95% interval, unadjusted (one pair)
    higher_is_better: bool
    descriptive: bool  # no better direction (output_length): differences, never "better"
    no_interval: str = ""  # why ``diff_ci`` is None where ``diff`` is not


def pair_summary(
    session: Session, experiment_id: int, a: str, b: str, metric: str
) -> PairSummary | None:
    """None when the two configs share no scored case on ``metric``."""
    import pandas as pd

    from evaluation.metrics import get_metric
    from evaluation.statistics._cases import case_table
    from evaluation.statistics.multiple import compare_many  # scipy, statsmodels: on use

    # The status is kept in Python: named in SQL it led SQLite to the (experiment, status)
    # index, reading every generation of the experiment instead of the two configs'.
    query = text(
        "SELECT s.value, g.config_hash AS config, c.case_id, g.sample_index, "
        'c."group" AS "group", s.metric, g.status FROM scores s '
        "JOIN generations g ON g.id = s.generation_id JOIN cases c ON c.uid = g.case_uid "
        "WHERE g.experiment_id = :e AND g.config_hash IN (:a, :b) AND s.metric = :m"
    )
    params = {"e": experiment_id, "m": metric, "a": a, "b": b}
    scores = pd.read_sql(query, session.connection(), params=params)
    scores = scores[scores["status"] == "ok"].drop(columns="status").dropna(subset=["value"])
    if scores.empty or set(scores["config"]) != {a, b}:
        return None
    try:
        definition = get_metric(metric)
        higher, score_type = definition.higher_is_better, definition.score_type
        descriptive = definition.descriptive
    except EvalError:
        higher, score_type, descriptive = True, "continuous", False
    higher = higher is not False
    means = case_table(scores, metric).means[[a, b]].dropna()
    if means.empty:
        return None
    # a descriptive metric has no better side: A's cases are those where it is higher
    ahead = means[a] - means[b] if higher or descriptive else means[b] - means[a]
    comparison = (
        compare_many(scores, metric, score_type=score_type, higher_is_better=higher, configs=[a, b])
        .comparisons[0]
        .comparison
    )
    d, ci = comparison.diff, comparison.diff_ci
    same_way = comparison.a == a
    diff = None if d is None else (d if same_way else -d)
    diff_ci = None if ci is None else (ci if same_way else (-ci[1], -ci[0]))
    return PairSummary(
        metric=metric,
        a_better=tuple(ahead[ahead > 0].index.astype(str)),
        b_better=tuple(ahead[ahead < 0].index.astype(str)),
        tied=int((ahead == 0).sum()),
        test=comparison.test,
        p_value=comparison.p_value,
        diff=diff,
        diff_ci=None if diff_ci is None else (float(diff_ci[0]), float(diff_ci[1])),
        higher_is_better=higher,
        descriptive=descriptive,
        no_interval=_no_interval(comparison.n_used) if diff is not None and ci is None else "",
    )


def _no_interval(n: int) -> str:
    """Why the difference has no interval: one shared case, or every shared case differing
    by the same amount (scores not 0/1), whose spread of 0 would read as a certainty."""
    if n < 2:
        return "no interval: 1 shared case"
    return f"no interval: all {n} cases differ by this much, a spread of 0 that bounds nothing"
