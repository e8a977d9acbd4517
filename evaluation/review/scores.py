"""Ratings as scores: human stars become metrics ``human_<criterion>`` that get intervals
and paired comparisons like any other metric, and preferences get a binomial test.

Several raters of one generation are averaged first (the generation, not the rating, is
the unit); a pair rated by several raters counts once, by majority (an even split is a
tie). Stars are ordinal, so star comparisons use the sign test and the Wilcoxon
signed-rank test with Pratt's zero handling (most star differences are zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from sqlalchemy import delete, select
from sqlmodel import Session

from evaluation.review._names import HUMAN_PREFIX, human_metric
from evaluation.review.frames import ratings_frame
from evaluation.review.store import CRITERIA, PREFERENCE
from evaluation.statistics import PairedComparison, compare_pair, mean_interval
from evaluation.storage.models import Generation, Score
from evaluation.storage.repository import replace_scores

STAR_SCALE = (1.0, 5.0)  # every criterion is graded 1–5 stars
Scale = Literal["stars", "unit"]


def rating_scores(ratings: pd.DataFrame, *, scale: Scale = "stars") -> pd.DataFrame:
    """Long score rows (generation_id, config, case_id, sample_index, group, metric,
    value, n_raters) from current star ratings: the mean over raters per generation and
    criterion. ``scale="unit"`` maps stars to [0, 1] as (stars − 1)/4, the scale the
    selector expects of a quality score."""
    stars = ratings[ratings["criterion"].isin(CRITERIA) & ratings["stars"].notna()]
    if "current" in stars.columns:
        stars = stars[stars["current"].astype(bool)]
    columns = ["generation_id", "config", "case_id", "sample_index", "group", "metric"]
    if stars.empty:
        return pd.DataFrame(columns=[*columns, "value", "n_raters"])
    keys = ["generation_id", "config", "case_id", "sample_index", "criterion"]
    frame = stars.assign(group=stars["group"].astype(object)).groupby(keys, dropna=False, sort=True)
    out = frame.agg(
        value=("stars", "mean"), n_raters=("rater", "nunique"), group=("group", "first")
    ).reset_index()
    out["value"] = out["value"].astype(float)
    if scale == "unit":
        out["value"] = (out["value"] - 1.0) / 4.0
    out["metric"] = out.pop("criterion").map(human_metric)
    return out[[*columns, "value", "n_raters"]]


@dataclass(frozen=True)
class StarSummary:
    """Mean stars of one config on one criterion, with its interval over cases."""

    config: str
    criterion: str
    n: int
    mean: float | None
    ci: tuple[float, float] | None
    note: str = ""


def star_summaries(scores: pd.DataFrame, *, confidence: float = 0.95) -> list[StarSummary]:
    """Per config and criterion: the mean of per-case mean stars with its interval on the
    1–5 scale (clustered by case group where the suite has groups; see ``mean_interval``)."""
    out = []
    for (config, metric), part in scores.groupby(["config", "metric"], sort=True):
        per_case = part.groupby("case_id").agg(value=("value", "mean"), group=("group", "first"))
        groups = per_case["group"] if per_case["group"].notna().any() else None
        est = mean_interval(
            per_case["value"].to_numpy(), groups, confidence=confidence, bounds=STAR_SCALE
        )
        criterion = str(metric).removeprefix(HUMAN_PREFIX)
        out.append(StarSummary(str(config), criterion, est.n, est.mean, est.ci, est.note))
    return out


@dataclass(frozen=True)
class StarComparison:
    """Config A against B on one criterion's stars over the cases both were rated on:
    the Wilcoxon signed-rank comparison (statistics module) and the sign test."""

    a: str
    b: str
    criterion: str
    wilcoxon: PairedComparison
    a_better: int
    b_better: int
    equal: int
    sign_p: float | None
    note: str = ""


def compare_stars(scores: pd.DataFrame, a: str, b: str, criterion: str) -> StarComparison:
    """Paired comparison of stars: Wilcoxon (``zero_method="pratt"``) via
    ``compare_pair`` and the exact sign test ``binomtest(n_A_better, n_A + n_B, 0.5)``
    on the cases' mean stars; ties are counted, not tested."""
    metric = human_metric(criterion)
    wilcoxon = compare_pair(scores, a, b, metric, score_type="ordinal", test="wilcoxon")
    rows = scores[scores["metric"] == metric]
    wide = rows.pivot_table(index="case_id", columns="config", values="value", aggfunc="mean")
    if a not in wide.columns or b not in wide.columns:
        return StarComparison(a, b, criterion, wilcoxon, 0, 0, 0, None, "no shared cases")
    both = wide[[a, b]].dropna()
    d = (both[a] - both[b]).to_numpy()
    wins_a, wins_b = int((d > 0).sum()), int((d < 0).sum())
    equal = int((d == 0).sum())
    if wins_a + wins_b == 0:
        note = "no case rated differently: sign test undefined"
        return StarComparison(a, b, criterion, wilcoxon, wins_a, wins_b, equal, None, note)
    from scipy import stats  # here: a run's report imports this module without ratings

    p = float(stats.binomtest(wins_a, wins_a + wins_b, 0.5).pvalue)
    return StarComparison(a, b, criterion, wilcoxon, wins_a, wins_b, equal, p)


@dataclass(frozen=True)
class PreferenceTest:
    """How often raters preferred A over B in pairs of the two, ties left out of the
    exact binomial test; ``share_a`` is A's share of the decided pairs with its
    Clopper–Pearson interval."""

    a: str
    b: str
    wins_a: int
    wins_b: int
    ties: int
    share_a: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    note: str = ""


def pair_preferences(ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per rated pair: (pair_id, case_id, config_a, config_b, winner) where
    winner is a config hash or None for a tie; several raters decide by majority."""
    prefs = ratings[ratings["criterion"] == PREFERENCE]
    if "current" in prefs.columns:
        prefs = prefs[prefs["current"].astype(bool)]
    rows = []
    for pair_id, part in prefs.groupby("pair_id", sort=True):
        first = part.iloc[0]
        a, b = str(first["pair_config_a"]), str(first["pair_config_b"])
        votes = part["preference"].value_counts()
        margin = int(votes.get("A", 0)) - int(votes.get("B", 0))
        winner = a if margin > 0 else b if margin < 0 else None
        rows.append(
            {
                "pair_id": int(pair_id),
                "case_id": first["case_id"],
                "config_a": a,
                "config_b": b,
                "winner": winner,
                "n_raters": int(part["rater"].nunique()),
            }
        )
    return pd.DataFrame(
        rows, columns=["pair_id", "case_id", "config_a", "config_b", "winner", "n_raters"]
    )


def preference_test(
    preferences: pd.DataFrame, a: str, b: str, *, confidence: float = 0.95
) -> PreferenceTest:
    """Exact two-sided ``scipy.stats.binomtest(wins_a, wins_a + wins_b, 0.5)`` over the
    pairs of ``a`` and ``b`` (either side) in ``pair_preferences`` rows."""
    mask = ((preferences["config_a"] == a) & (preferences["config_b"] == b)) | (
        (preferences["config_a"] == b) & (preferences["config_b"] == a)
    )
    part = preferences[mask]
    wins_a = int((part["winner"] == a).sum())
    wins_b = int((part["winner"] == b).sum())
    ties = int(part["winner"].isna().sum())
    if wins_a + wins_b == 0:
        note = "no pair decided" if len(part) else "no rated pair of these configs"
        return PreferenceTest(a, b, wins_a, wins_b, ties, None, None, None, note)
    from scipy import stats  # here: a run's report imports this module without ratings

    res = stats.binomtest(wins_a, wins_a + wins_b, 0.5)
    ci = res.proportion_ci(confidence_level=confidence, method="exact")
    return PreferenceTest(
        a, b, wins_a, wins_b, ties, wins_a / (wins_a + wins_b), (ci.low, ci.high), res.pvalue
    )


def config_pairs(preferences: pd.DataFrame) -> list[tuple[str, str]]:
    """The distinct config pairs that were reviewed, each once, in a stable order."""
    seen = {
        tuple(sorted((str(a), str(b))))
        for a, b in zip(preferences["config_a"], preferences["config_b"], strict=True)
    }
    return sorted(seen)


def store_rating_scores(
    session: Session, experiment_id: int, *, criteria: Sequence[str] = CRITERIA
) -> dict[str, int]:
    """Write the current human ratings into the scores table as ``human_<criterion>``
    on the unit scale (so the selector and ``evalflow compare`` can use them), replacing
    what an earlier call wrote. Returns the rows written per metric."""
    scores = rating_scores(ratings_frame(session, experiment_id), scale="unit")
    generations = select(Generation.id).where(Generation.experiment_id == experiment_id)
    written: dict[str, int] = {}
    for criterion in criteria:
        metric = human_metric(criterion)
        session.exec(
            delete(Score).where(Score.metric == metric, Score.generation_id.in_(generations))
        )
        part = scores[scores["metric"] == metric]
        replace_scores(session, part["generation_id"].astype(int).tolist(), metric, part["value"])
        written[metric] = len(part)
    return written
