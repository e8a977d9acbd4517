"""Combined estimates: a judge's scores calibrated to the people's ratings of some of the
same outputs, per config and for every two configs, with the multiplicity control the
comparisons use (Holm by default, over the pairs of one criterion).

The unit is the case: a config's score on a case is the mean over its rated (or judged)
samples, as everywhere else in evalflow, and cases of one suite group are one cluster.
For a difference A − B the rated cases are those people rated for both configs; the
judge-only ones those the judge scored for both and people did not. Scores are on the
unit scale, (stars − 1)/4, as ``judge_<criterion>`` and ``human_<criterion>`` are stored.

The combined estimate is valid (covers the people's mean) when the rated cases are a
random draw of the judged ones; which cases to rate is drawn at random within a config
for that reason (:mod:`._plan` chooses which configs and pairs, never which case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from sqlmodel import Session

from evaluation.calibration._ppi import PPIEstimate, ppi_mean
from evaluation.calibration._shown import MIN_INTERVAL
from evaluation.statistics import Adjustment, adjust_p_values

PREFERENCE = "preference"
#: Rated outputs (per judge and criterion) below which the combined numbers are shown
#: but not presented as calibrated; the reason is ``WHY_MINIMUM``.
MIN_CALIBRATION = 30
WHY_MINIMUM = (
    "the combined interval estimates λ and the spread of the judge's error (judge − people) "
    "from the rated outputs alone, and with few of them it covers less than it says "
    "(benchmarks/perf/judge_calibration.py, 95% asked: 92.4% at 10 ratings, 94.0% at 20, "
    "93.9–94.2% at 30); agreement's interval then also spans most of [-1, 1]"
)


@dataclass(frozen=True)
class ConfigEstimate:
    """One config's mean on one criterion, three ways."""

    config: str
    judge: PPIEstimate  # the judge's scores only, every judged case
    people: PPIEstimate  # the people's ratings only
    combined: PPIEstimate  # PPI++: the judge calibrated to the people


@dataclass(frozen=True)
class DiffEstimate:
    """Config ``a`` minus config ``b``, three ways; the decision rests on the combined
    estimate's p-value after adjustment over the criterion's pairs."""

    a: str
    b: str
    judge: PPIEstimate
    people: PPIEstimate
    combined: PPIEstimate
    p_adjusted: float | None
    significant: bool


@dataclass(frozen=True)
class CalibratedMetric:
    """What one judge says on one criterion, calibrated to the people."""

    judge_name: str
    criterion: str
    n_judged: int  # judged outputs (generations) of the configs
    n_rated: int  # outputs both people and the judge scored
    configs: tuple[ConfigEstimate, ...]
    diffs: tuple[DiffEstimate, ...]
    adjustment: str
    alpha: float

    @property
    def metric(self) -> str:
        return f"judge_{self.criterion}"

    def source(self) -> str:
        """Which numbers these are, as show, compare and the report say it."""
        text = (
            f"combined: judge {self.judge_name} on {self.n_judged} outputs calibrated to "
            f"people's ratings of {self.n_rated} (PPI++)"
        )
        if self.n_rated < MIN_CALIBRATION:
            text += (
                f" — NOT presented as calibrated: {self.n_rated} rated outputs, at least "
                f"{MIN_CALIBRATION} needed (`evalflow judge-card` says why)"
            )
        return text


def unit_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per generation and criterion, the mean stars on the unit scale: columns
    generation_id, config, case_id, group, criterion, value. ``frame`` is a ratings or
    judgements frame (stars rows; preference rows and unscored rows are left out)."""
    rows = frame[(frame["criterion"] != PREFERENCE) & frame["stars"].notna()]
    if "current" in rows.columns:
        rows = rows[rows["current"].astype(bool)]
    cols = ["generation_id", "config", "case_id", "group", "criterion", "value"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    rows = rows.assign(value=(rows["stars"].astype(float) - 1.0) / 4.0)
    rows = rows.assign(group=rows["group"].astype(object))
    keys = ["generation_id", "config", "case_id", "criterion"]
    out = rows.groupby(keys, sort=True, dropna=False).agg(
        value=("value", "mean"), group=("group", "first")
    )
    return out.reset_index()[cols]


def calibrate(
    human: pd.DataFrame,
    judge: pd.DataFrame,
    *,
    judge_name: str = "judge",
    confidence: float = 0.95,
    alpha: float = 0.05,
    adjust: Adjustment = "holm",
    order: Sequence[str] = (),
) -> list[CalibratedMetric]:
    """For every criterion that both the judge and people scored: each config's mean
    and each two configs' difference, judge only, people only and combined. ``human``
    and ``judge`` are :func:`unit_scores` frames (one judge's); configs in ``order``
    (the leaderboard's) come first, in it, and each difference is the earlier one minus
    the later one."""
    rank = {c: i for i, c in enumerate(order)}
    out = []
    shared = sorted(set(human["criterion"]) & set(judge["criterion"]))
    for criterion in shared:
        h = human[human["criterion"] == criterion]
        j = judge[judge["criterion"] == criterion]
        rated_gens = set(h["generation_id"]) & set(j["generation_id"])
        if not rated_gens:  # fewer than 2: shown, each estimate "—" (rate-next says why)
            continue
        configs_judged = sorted(set(j["config"]), key=lambda c: (rank.get(c, len(rank)), c))
        tables = {c: _case_table(h, j, c) for c in configs_judged}
        configs = tuple(
            _config_estimate(c, t, confidence) for c, t in tables.items() if t["y"].notna().any()
        )
        names = [c.config for c in configs]
        raw = [_diff(tables[a], tables[b], a, b, confidence) for a, b in combinations(names, 2)]
        # No test below MIN_INTERVAL rated cases, as no interval (a t on 1 df over two
        # cases read "p_adj 0.88" beside "too few for an interval", newcomers' J4)
        tested = [d.combined.p_value() if d.combined.n_rated >= MIN_INTERVAL else None for d in raw]
        p_adj, reject = adjust_p_values(tested, alpha, adjust)
        diffs = tuple(
            DiffEstimate(d.a, d.b, d.judge, d.people, d.combined, p, r)
            for d, p, r in zip(raw, p_adj, reject, strict=True)
        )
        judged = int(j[j["config"].isin(names)]["generation_id"].nunique())
        rated = len(rated_gens & set(j[j["config"].isin(names)]["generation_id"]))
        out.append(
            CalibratedMetric(
                judge_name, str(criterion), judged, rated, configs, diffs, adjust, alpha
            )
        )
    return out


def _case_table(h: pd.DataFrame, j: pd.DataFrame, config: str) -> pd.DataFrame:
    """Per case of ``config``: f (judge, every judged sample), y (people, rated samples)
    and f_rated (judge on the rated samples), group."""
    jc = j[j["config"] == config]
    hc = h[(h["config"] == config) & h["generation_id"].isin(set(jc["generation_id"]))]
    f = jc.groupby("case_id").agg(f=("value", "mean"), group=("group", "first"))
    rated = hc.merge(jc[["generation_id", "value"]], on="generation_id", suffixes=("", "_j"))
    y = rated.groupby("case_id").agg(y=("value", "mean"), f_rated=("value_j", "mean"))
    return f.join(y, how="left")


def _ppi_of(t: pd.DataFrame, y: str, f_rated: str, f: str, confidence: float) -> PPIEstimate:
    rated = t[t[y].notna()]
    unrated = t[t[y].isna()]
    return ppi_mean(
        rated[y].to_numpy(),
        rated[f_rated].to_numpy(),
        unrated[f].to_numpy(),
        groups_rated=rated["group"].to_numpy(),
        groups_unrated=unrated["group"].to_numpy(),
        confidence=confidence,
    )


def _plain(values: pd.Series, groups: pd.Series, confidence: float) -> PPIEstimate:
    """A mean with the same (normal, clustered) variance: λ = 0 and nothing unrated; over
    one case, that case's score, with no interval and a note saying so."""
    if len(values) == 1:
        value = float(values.iloc[0])
        return PPIEstimate(
            value, None, None, 0.0, 1, 0, confidence, "one case", note="1 case, no CI"
        )
    return ppi_mean(
        values.to_numpy(),
        np.zeros(len(values)),
        [],
        groups_rated=groups.to_numpy(),
        confidence=confidence,
        lam=0.0,
    )


def _config_estimate(config: str, t: pd.DataFrame, confidence: float) -> ConfigEstimate:
    rated = t[t["y"].notna()]
    return ConfigEstimate(
        config,
        judge=_plain(t["f"], t["group"], confidence),
        people=_plain(rated["y"], rated["group"], confidence),
        combined=_ppi_of(t, "y", "f_rated", "f", confidence),
    )


def _diff(ta: pd.DataFrame, tb: pd.DataFrame, a: str, b: str, confidence: float):
    both = ta.join(tb, lsuffix="_a", rsuffix="_b", how="inner")
    d = pd.DataFrame(
        {
            "f": both["f_a"] - both["f_b"],
            "y": both["y_a"] - both["y_b"],  # NaN unless people rated both
            "f_rated": both["f_rated_a"] - both["f_rated_b"],
            "group": both["group_a"],
        }
    )
    rated = d[d["y"].notna()]
    return DiffEstimate(
        a,
        b,
        judge=_plain(d["f"], d["group"], confidence),
        people=_plain(rated["y"], rated["group"], confidence),
        combined=_ppi_of(d, "y", "f_rated", "f", confidence),
        p_adjusted=None,
        significant=False,
    )


def load_calibration(
    session: Session,
    experiment_id: int,
    *,
    confidence: float = 0.95,
    alpha: float = 0.05,
    adjust: Adjustment = "holm",
    order: Sequence[str] = (),
) -> list[CalibratedMetric]:
    """Every judge of the experiment calibrated to its people's current ratings; empty
    when there is no judge or no rating of a judged output. ``order``: see calibrate."""
    from evaluation.review.frames import judgements_frame, ratings_frame

    judgements = judgements_frame(session, experiment_id)
    if judgements.empty:
        return []
    human = unit_scores(ratings_frame(session, experiment_id))
    if human.empty:
        return []
    out: list[CalibratedMetric] = []
    for name, part in judgements.groupby("judge", sort=True):
        out += calibrate(
            human,
            unit_scores(part),
            judge_name=str(name),
            confidence=confidence,
            alpha=alpha,
            adjust=adjust,
            order=order,
        )
    return out
