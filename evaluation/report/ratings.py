"""The ratings part of the report: stars with intervals, paired tests on stars and
preferences, inter-rater kappa, judge-versus-human agreement and judge consistency."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlmodel import Session

from evaluation.calibration._combined import CalibratedMetric, load_calibration
from evaluation.review.agreement import (
    KappaEstimate,
    RankAgreement,
    inter_rater_agreement,
    judge_human_agreement,
)
from evaluation.review.frames import judgements_frame, ratings_frame
from evaluation.review.judging import pairwise_verdicts
from evaluation.review.scores import (
    PreferenceTest,
    StarComparison,
    compare_stars,
    config_pairs,
    pair_preferences,
    preference_test,
    rating_scores,
    star_summaries,
)
from evaluation.review.store import CRITERIA, PREFERENCE


@dataclass(frozen=True)
class JudgeSummary:
    """One judge: how many verdicts, how many unscored, how it agrees with the raters,
    and how often its two pairwise orders contradicted each other."""

    judge: str
    judgements: int
    unscored: int
    agreement: tuple[RankAgreement, ...]
    pairs_judged: int
    contradictions: int
    contradiction_rate: float | None


@dataclass(frozen=True)
class RatingsSummary:
    raters: tuple[str, ...]
    n_ratings: int
    n_superseded: int
    stars: pd.DataFrame  # config, criterion, n, mean, ci_low, ci_high, note
    preferences: tuple[PreferenceTest, ...]
    star_tests: tuple[StarComparison, ...]
    kappas: tuple[KappaEstimate, ...]
    judges: tuple[JudgeSummary, ...]
    calibrated: tuple[CalibratedMetric, ...] = ()  # judges combined with people (PPI++)


def ratings_summary(session: Session, experiment_id: int, *, seed: int = 0) -> RatingsSummary:
    everything = ratings_frame(session, experiment_id, current_only=False)
    current = everything[everything["current"]]
    scores = rating_scores(current)
    stars = pd.DataFrame(
        [
            {
                "config": s.config,
                "criterion": s.criterion,
                "n": s.n,
                "mean": s.mean,
                "ci_low": s.ci[0] if s.ci else None,
                "ci_high": s.ci[1] if s.ci else None,
                "note": s.note,
            }
            for s in star_summaries(scores)
        ],
        columns=["config", "criterion", "n", "mean", "ci_low", "ci_high", "note"],
    )
    prefs = pair_preferences(current)
    pairs = config_pairs(prefs)
    criteria = [c for c in CRITERIA if (scores["metric"] == f"human_{c}").any()]
    star_tests = tuple(compare_stars(scores, a, b, c) for a, b in pairs for c in criteria)
    stars_only = current[current["criterion"] != PREFERENCE]
    return RatingsSummary(
        raters=tuple(sorted(current["rater"].unique())),
        n_ratings=len(current),
        n_superseded=int((~everything["current"]).sum()),
        stars=stars,
        preferences=tuple(preference_test(prefs, a, b) for a, b in pairs),
        star_tests=star_tests,
        kappas=tuple(inter_rater_agreement(stars_only, seed=seed)),
        judges=tuple(_judges(judgements_frame(session, experiment_id), stars_only, seed)),
        calibrated=tuple(load_calibration(session, experiment_id)),
    )


def _judges(judgements: pd.DataFrame, human: pd.DataFrame, seed: int) -> list[JudgeSummary]:
    out = []
    for judge, part in judgements.groupby("judge", sort=True):
        pointwise = part[part["criterion"] != PREFERENCE]
        verdicts = pairwise_verdicts(part)
        judged = [v for v in verdicts if v.contradicted is not None]
        contradictions = sum(1 for v in judged if v.contradicted)
        out.append(
            JudgeSummary(
                judge=str(judge),
                judgements=len(pointwise),
                unscored=int(pointwise["stars"].isna().sum()),
                agreement=tuple(judge_human_agreement(human, pointwise, seed=seed)),
                pairs_judged=len(judged),
                contradictions=contradictions,
                contradiction_rate=contradictions / len(judged) if judged else None,
            )
        )
    return out
