"""The combined estimates as show, compare and the report print them: every number says
whether it is the judge's alone, the people's alone, or the two combined (and on how
many ratings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlmodel import Session

if TYPE_CHECKING:  # numpy and pandas: imported where an experiment has a calibrated judge
    from evaluation.calibration._combined import CalibratedMetric
    from evaluation.calibration._ppi import PPIEstimate
    from evaluation.statistics import Adjustment


def _cell(est: PPIEstimate, *, signed: bool = False, unit: str = "rated case") -> str:
    """The estimate with its interval, cut to the scale ([0, 1] for a mean, [-1, 1] for a
    difference); without one, why (a judge that scored a config once read "—", as if it
    had scored nothing; two ratings read [0.500, 0.500])."""
    from evaluation.calibration._shown import DIFFERENCE, UNIT, interval_words

    bounds = DIFFERENCE if signed else UNIT
    return interval_words(
        est.estimate, est.ci, est.n_rated, bounds, signed=signed, note=est.note, unit=unit
    )


def calibration_lines(
    metrics: Sequence[CalibratedMetric], labels: Mapping[str, str] | None = None
) -> list[str]:
    """One block per judge and criterion: each config judge only / people only /
    combined, then the differences with their adjusted p-values."""
    from evaluation.statistics._adjust import ADJUSTMENT_NAMES

    labels = labels or {}
    name = {c: labels.get(c, c) for m in metrics for e in m.configs for c in [e.config]}
    width = max([len(v) for v in name.values()] + [6])
    lines: list[str] = []
    for m in metrics:
        conf = round(m.configs[0].combined.confidence * 100) if m.configs else 95
        lines += [
            f"{m.metric}, {m.source()}; {conf}% intervals, unit scale (stars − 1)/4:",
            f"  {'config':<{width}}  {'judge only':<22}  {'people only (n)':<27}  combined (λ)",
        ]
        for e in m.configs:
            people = f"{_cell(e.people)} {e.people.n_rated}"
            lam = f" λ={e.combined.lam:.2f}" if e.combined.lam is not None else ""
            combined = _cell(e.combined) + lam
            if e.combined.estimate is None:
                combined += f" ({e.combined.note})"
            shown = f"{name[e.config]:<{width}}  {_cell(e.judge, unit='case'):<22}  {people:<27}"
            lines.append(f"  {shown}  {combined}")
        if m.diffs:
            adj = ADJUSTMENT_NAMES.get(m.adjustment, m.adjustment)
            lines.append(
                f"  differences, combined, {adj} over {len(m.diffs)} pair(s) at α {m.alpha:g} "
                "(judge only in brackets after):"
            )
            for d in m.diffs:
                pair = f"{name[d.a]} − {name[d.b]}"
                p = "" if d.p_adjusted is None else f"  p_adj {d.p_adjusted:.3g}"
                verdict = "  differ" if d.significant else ""
                lines.append(
                    f"    {pair}: {_cell(d.combined, signed=True)} on {d.combined.n_rated} rated "
                    f"cases{p}{verdict}  (judge only {_cell(d.judge, signed=True, unit='case')})"
                )
    return lines


def calibration_markdown(
    metrics: Sequence[CalibratedMetric], labels: Mapping[str, str] | None = None
) -> list[str]:
    """The blocks of :func:`calibration_lines` as markdown tables (compare --markdown,
    for a pull request's comment): the same numbers, headed by what they are."""
    from evaluation.statistics._adjust import ADJUSTMENT_NAMES

    labels = labels or {}
    lines: list[str] = []
    for m in metrics:
        conf = round(m.configs[0].combined.confidence * 100) if m.configs else 95
        lines += [
            f"### {m.metric}",
            "",
            f"{m.source()}; {conf}% intervals, unit scale (stars − 1)/4.",
            "",
            "| config | judge only | people only | n | combined | λ |",
            "|---|---|---|---|---|---|",
        ]
        for e in m.configs:
            combined = _cell(e.combined)
            if e.combined.estimate is None:
                combined += f" ({e.combined.note})"
            lam = "—" if e.combined.lam is None else f"{e.combined.lam:.2f}"
            judge = _cell(e.judge, unit="case")
            lines.append(
                f"| {labels.get(e.config, e.config)} | {judge} | {_cell(e.people)} "
                f"| {e.people.n_rated} | {combined} | {lam} |"
            )
        if m.diffs:
            adj = ADJUSTMENT_NAMES.get(m.adjustment, m.adjustment)
            lines += [
                "",
                f"Differences, combined, {adj} over {len(m.diffs)} pair(s) at α {m.alpha:g}:",
                "",
                "| pair | combined | rated cases | p_adj | differ | judge only |",
                "|---|---|---|---|---|---|",
            ]
            for d in m.diffs:
                pair = f"{labels.get(d.a, d.a)} − {labels.get(d.b, d.b)}"
                p = "—" if d.p_adjusted is None else f"{d.p_adjusted:.3g}"
                judge = _cell(d.judge, signed=True, unit="case")
                lines.append(
                    f"| {pair} | {_cell(d.combined, signed=True)} | {d.combined.n_rated} | {p} "
                    f"| {'yes' if d.significant else 'no'} | {judge} |"
                )
        lines.append("")
    return lines


def calibration_text(
    session: Session,
    experiment: str,
    *,
    adjust: Adjustment = "holm",
    alpha: float = 0.05,
    labels: Mapping[str, str] | None = None,
    markdown: bool = False,
) -> str:
    """The combined estimates of ``experiment`` as text (or ``markdown`` tables),
    configs in the leaderboard's order; "" when it has no judge calibrated to people
    (no judge, or no rating of a judged output)."""
    from evaluation.compare._leaderboard import load_leaderboard, ranked_rows
    from evaluation.storage.repository import get_experiment

    row = get_experiment(session, experiment)
    if not _has_both(session, int(row.id)):
        return ""
    from evaluation.calibration._combined import load_calibration

    board = load_leaderboard(session, row.name)
    order = [str(r["config"]) for r in ranked_rows(board)] if board.metrics else []
    metrics = load_calibration(session, int(row.id), adjust=adjust, alpha=alpha, order=order)
    if not metrics:
        return ""
    labels = board.labels if labels is None else labels
    render = calibration_markdown if markdown else calibration_lines
    return "\n".join(render(metrics, labels)).rstrip("\n")


def _has_both(session: Session, experiment_id: int) -> bool:
    """Whether the experiment has a judge's verdict and a rating at all (cheap: the
    leaderboard is loaded only then)."""
    from sqlalchemy import text

    from evaluation.review.schema import RATED_IN_EXPERIMENT

    found = (
        session.connection()
        .execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM judgements WHERE experiment_id = :e), "
                f"EXISTS (SELECT 1 FROM ratings r WHERE {RATED_IN_EXPERIMENT})"
            ),
            {"e": experiment_id},
        )
        .one()
    )
    return bool(found[0]) and bool(found[1])
