"""A judge's report card: how far its scores can be trusted, from what is stored.

- Agreement with people, per criterion, on the outputs both scored: Spearman's rho with
  its interval, and the judge's mean offset (judge − people, unit scale) with its t
  interval: a judge can rank like people and still sit a star above them.
- Position bias, from the pairwise verdicts asked in both orders: the share of decided
  verdicts that chose the output shown first. Each pair is shown both ways, so quality
  cancels and an unbiased judge picks "first" half the time (exact binomial test and
  Clopper–Pearson interval); and how often the two orders contradict each other.
- Length bias: Spearman's rho between the output's length (words) and the judge's
  error (judge − people) on the rated outputs; 0 for a judge that does not reward
  length beyond what people do. Without ratings, only rho between length and the judge's
  stars, which cannot tell length from quality.
- Self-preference, when the judge's model is also a model of the sweep: the judge's
  offset on its own model's outputs minus its offset on the others' (Welch interval).
- Drift: the same judge's stars for the same output (same case, same text) in another
  experiment (another night): the mean change and the share of grades that moved.
- Calibrated or not: the combined estimates are presented as calibrated only from
  ``MIN_CALIBRATION`` rated outputs per criterion up (see :data:`WHY_MINIMUM`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlmodel import Session

from evaluation.calibration._combined import (
    MIN_CALIBRATION,
    PREFERENCE,
    WHY_MINIMUM,
    unit_scores,
)
from evaluation.calibration._shown import DIFFERENCE, UNIT, interval_words
from evaluation.redact import one_line


@dataclass(frozen=True)
class Line:
    """One finding: what, the figure with its interval, and how many it rests on."""

    what: str
    value: float | None
    ci: tuple[float, float] | None
    n: int
    note: str = ""


@dataclass(frozen=True)
class JudgeCard:
    judge: str
    criteria: tuple[str, ...]
    rated: dict[str, int]  # criterion -> outputs both people and the judge scored
    agreement: tuple[Line, ...]
    offset: tuple[Line, ...]
    position: Line | None
    contradictions: Line | None
    length: tuple[Line, ...]
    self_preference: tuple[Line, ...]
    drift: tuple[Line, ...]
    min_ratings: int
    experiment: str = ""
    unscored: tuple[str, ...] = ()  # the reason of each verdict it gave no stars
    in_sweep: bool = False  # the judge's model is a model of the sweep

    def calibrated(self, criterion: str) -> bool:
        return self.rated.get(criterion, 0) >= self.min_ratings


def _t_interval(x: np.ndarray, confidence: float = 0.95) -> tuple[float | None, tuple | None]:
    from scipy import special

    if x.size == 0:
        return None, None
    mean = float(x.mean())
    if x.size < 2:
        return mean, None
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    q = float(special.stdtrit(x.size - 1, 0.5 + confidence / 2))
    return mean, (mean - q * se, mean + q * se)


def judge_card(
    session: Session, experiment_id: int, judge: str, *, min_ratings: int = MIN_CALIBRATION
) -> JudgeCard:
    """The card of ``judge`` (its stored name, kind:model) on the experiment."""
    from evaluation.review.frames import judgements_frame, ratings_frame
    from evaluation.statistics import spearman_interval

    frame = judgements_frame(session, experiment_id)
    mine = frame[frame["judge"] == judge]
    judged = unit_scores(mine)
    human = unit_scores(ratings_frame(session, experiment_id))
    both = judged.merge(
        human[["generation_id", "criterion", "value"]],
        on=["generation_id", "criterion"],
        suffixes=("_judge", "_people"),
    )
    words = _words(session, experiment_id)
    criteria = tuple(sorted(set(judged["criterion"])))
    agreement, offset, length = [], [], []
    rated = {}
    for c in criteria:
        part = both[both["criterion"] == c]
        rated[c] = len(part)
        rho, ci, _, note = spearman_interval(
            part["value_judge"].to_numpy(), part["value_people"].to_numpy()
        )
        agreement.append(Line(c, rho, ci, len(part), note.replace("configs", "outputs")))
        err = (part["value_judge"] - part["value_people"]).to_numpy()
        mean, ci = _t_interval(err)
        offset.append(Line(c, mean, ci, len(part)))
        if len(part):
            lengths = part["generation_id"].map(words).to_numpy(dtype=float)
            rho, ci, _, note = spearman_interval(lengths, err)
            length.append(Line(c, rho, ci, len(part), note.replace("configs", "outputs")))
        else:
            jc = judged[judged["criterion"] == c]
            lengths = jc["generation_id"].map(words).to_numpy(dtype=float)
            rho, ci, _, note = spearman_interval(lengths, jc["value"].to_numpy())
            note = "no ratings: rho of length with the judge's stars, length and quality mixed"
            length.append(Line(c, rho, ci, len(jc), note))
    position, contradictions = _position(mine)
    own = _own_configs(session, experiment_id, judge)
    unscored = mine[(mine["criterion"] != PREFERENCE) & mine["stars"].isna()]
    name = session.connection().execute(
        text("SELECT name FROM experiments WHERE id = :e"), {"e": experiment_id}
    )
    return JudgeCard(
        judge=judge,
        criteria=criteria,
        rated=rated,
        agreement=tuple(agreement),
        offset=tuple(offset),
        position=position,
        contradictions=contradictions,
        length=tuple(length),
        self_preference=tuple(_self_preference(judge, own, both)),
        drift=tuple(_drift(session, experiment_id, judge)),
        min_ratings=min_ratings,
        experiment=str(name.scalar_one()),
        unscored=tuple(str(r or "no reason stored") for r in unscored["reason"]),
        in_sweep=bool(own),
    )


def _words(session: Session, experiment_id: int) -> dict[int, int]:
    rows = session.connection().execute(
        text("SELECT id, output FROM generations WHERE experiment_id = :e"), {"e": experiment_id}
    )
    return {int(i): len(str(o or "").split()) for i, o in rows}


def _position(judgements: pd.DataFrame) -> tuple[Line | None, Line | None]:
    from scipy import stats

    from evaluation.review.judging import pairwise_verdicts

    rows = judgements[judgements["criterion"] == PREFERENCE]
    choices = rows["preference"].dropna()
    first, second = int((choices == "first").sum()), int((choices == "second").sum())
    if first + second == 0:
        return None, None
    test = stats.binomtest(first, first + second, 0.5)
    ci = test.proportion_ci(confidence_level=0.95, method="exact")
    note = f"p = {test.pvalue:.3g} against 0.5 (exact binomial); ties left out"
    position = Line(
        "chose the output shown first",
        first / (first + second),
        (ci.low, ci.high),
        first + second,
        note,
    )
    judged = [v.contradicted for v in pairwise_verdicts(rows) if v.contradicted is not None]
    contradictions = None
    if judged:
        k = int(sum(judged))
        ci = stats.binomtest(k, len(judged), 0.5).proportion_ci(0.95, method="exact")
        contradictions = Line(
            "pairs whose two orders chose opposite outputs",
            k / len(judged),
            (ci.low, ci.high),
            len(judged),
        )
    return position, contradictions


def _judge_model(judge: str) -> str:
    """The model of a judge's stored name (kind:model)."""
    return judge.split(":", 1)[1] if ":" in judge else judge


def _own_configs(session: Session, experiment_id: int, judge: str) -> set[str]:
    """The experiment's configs whose model is the judge's."""
    configs = session.connection().execute(
        text(
            "SELECT c.hash, c.model FROM configs c JOIN experiment_configs ec "
            "ON ec.config_hash = c.hash WHERE ec.experiment_id = :e"
        ),
        {"e": experiment_id},
    )
    return {h for h, m in configs if m == _judge_model(judge)}


def _self_preference(judge: str, own: set[str], both: pd.DataFrame) -> list[Line]:
    """The judge's offset on its own model's outputs (``own``: their configs) minus on
    the others'."""
    if not own:
        return []
    model = _judge_model(judge)
    out = []
    for c in sorted(set(both["criterion"])):
        part = both[both["criterion"] == c]
        err = part["value_judge"] - part["value_people"]
        mine, others = err[part["config"].isin(own)], err[~part["config"].isin(own)]
        if len(mine) < 2 or len(others) < 2:
            out.append(
                Line(
                    c,
                    None,
                    None,
                    len(part),
                    f"{model} is in the sweep, but too few "
                    "rated outputs of its own and of the others to compare",
                )
            )
            continue
        diff = float(mine.mean() - others.mean())
        va, vb = mine.var(ddof=1) / len(mine), others.var(ddof=1) / len(others)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / ((va**2) / (len(mine) - 1) + (vb**2) / (len(others) - 1)) if se else 1
        from scipy import special

        q = float(special.stdtrit(df, 0.975))
        out.append(
            Line(
                c,
                diff,
                (diff - q * se, diff + q * se),
                len(part),
                f"{model}'s own outputs vs the others' (judge − people)",
            )
        )
    return out


def _drift(session: Session, experiment_id: int, judge: str) -> list[Line]:
    """The same judge's stars, elsewhere, for the same output: same case, config, sample
    and text."""
    query = text(
        "SELECT j1.criterion, j1.stars AS now, j2.stars AS earlier, j2.experiment_id AS other "
        "FROM judgements j1 JOIN generations g1 ON g1.id = j1.generation_id "
        "JOIN generations g2 ON g2.case_uid = g1.case_uid AND g2.config_hash = g1.config_hash "
        "AND g2.sample_index = g1.sample_index AND g2.output = g1.output "
        "AND g2.experiment_id != g1.experiment_id "
        "JOIN judgements j2 ON j2.generation_id = g2.id AND j2.judge = j1.judge "
        "AND j2.criterion = j1.criterion AND j2.other_generation_id IS NULL "
        "WHERE j1.experiment_id = :e AND j1.judge = :j AND j1.other_generation_id IS NULL "
        "AND j1.stars IS NOT NULL AND j2.stars IS NOT NULL"
    )
    frame = pd.read_sql(query, session.connection(), params={"e": experiment_id, "j": judge})
    out = []
    for c, part in frame.groupby("criterion", sort=True):
        change = (part["now"] - part["earlier"]).to_numpy(dtype=float) / 4
        mean, ci = _t_interval(change)
        moved = float((change != 0).mean())
        out.append(
            Line(
                str(c),
                mean,
                ci,
                len(part),
                f"{moved:.0%} of grades moved; {part['other'].nunique()} other run(s)",
            )
        )
    return out


def card_text(card: JudgeCard) -> str:
    """The card as `evalflow judge-card` prints it."""

    def fig(
        line: Line, signed: bool = False, bounds: tuple[float, float] = DIFFERENCE, **how
    ) -> str:
        """The figure, its interval cut to ``bounds`` (or why it has none, in words)."""
        return interval_words(line.value, line.ci, line.n, bounds, signed=signed, **how)

    if not card.criteria and card.position is None:
        return _nothing_scored(card)
    out = [f"Judge {card.judge}: report card (95% intervals; scores on the unit scale)"]
    for c in card.criteria:
        n = card.rated[c]
        if card.calibrated(c):
            out.append(f"\n{c}: calibrated on {n} outputs people also rated")
        else:
            out.append(
                f"\n{c}: NOT calibrated: {n} outputs people also rated, at least "
                f"{card.min_ratings} needed; {WHY_MINIMUM}"
            )
    out.append("\nAgreement with people (outputs both scored):")
    if not card.criteria:
        out.append(f"  none: the judge graded no output ({_unscored(card)})")
    for a, o in zip(card.agreement, card.offset, strict=True):
        note = f"  ({a.note})" if a.note else ""
        out.append(
            f"  {a.what}: Spearman rho {fig(a, unit='output')}; offset judge − people "
            f"{fig(o, signed=True, unit='output')}; n {a.n}{note}"
        )
    out.append("Position bias (pairwise, both orders):")
    if card.position is None:
        out.append("  no pairwise verdicts (evalflow judge without --no-pairwise asks them)")
    else:
        out.append(
            f"  {card.position.what}: {fig(card.position, bounds=UNIT, minimum=1)} of "
            f"{card.position.n} "
            f"(0.5 = none); {card.position.note}"
        )
        if card.contradictions is not None:
            c = card.contradictions
            out.append(f"  {c.what}: {fig(c, bounds=UNIT, minimum=1)} of {c.n}")
    out.append("Length bias (rho of output words with judge − people):")
    if not card.criteria:
        out.append("  none: the judge graded no output")
    out += [
        f"  {x.what}: {fig(x, signed=True, unit='output')}; n {x.n}"
        + (f"  ({x.note})" if x.note else "")
        for x in card.length
    ]
    out.append("Self-preference (offset on its own model's outputs minus the others'):")
    if not card.self_preference and card.in_sweep:
        out.append(
            f"  {_judge_model(card.judge)} is a model of this sweep, but no output of the sweep "
            "has both the judge's grade and people's rating (`evalflow review`, "
            "`evalflow import-ratings`)"
        )
    elif not card.self_preference:
        out.append("  the judge's model is not a model of this sweep")
    out += [
        f"  {x.what}: {fig(x, signed=True, bounds=(-2.0, 2.0), unit='output')}; n {x.n}  ({x.note})"
        for x in card.self_preference
    ]
    out.append("Drift (the same judge, the same outputs, in other runs; change in stars/4):")
    if not card.drift:
        out.append("  no other run has this judge's grades of the same outputs")
    out += [
        f"  {x.what}: {fig(x, signed=True, unit='output')}; n {x.n}  ({x.note})" for x in card.drift
    ]
    return "\n".join(out)


def _unscored(card: JudgeCard) -> str:
    """ "12 verdicts unscored, 8 of them: <reason>" (the most frequent reason)."""
    if not card.unscored:
        return "no verdicts stored"
    reason, times = Counter(card.unscored).most_common(1)[0]
    which = "all" if times == len(card.unscored) else f"{times} of them"
    return f"{len(card.unscored)} verdict(s) unscored, {which}: {one_line(reason, limit=160)}"


def _nothing_scored(card: JudgeCard) -> str:
    """The card of a judge that graded no output and decided no pair: one paragraph, no
    empty sections."""
    return (
        f"Judge {card.judge}: nothing to report on {card.experiment}: the judge scored nothing "
        f"yet ({_unscored(card)}). A rerun with the same judge skips those verdicts (it asks "
        f"with fixed seeds): judge with a larger model, `evalflow judge {card.experiment} "
        "--model M` (docs/calibrated-judges.md)"
    )
