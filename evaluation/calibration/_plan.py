"""Which outputs people should rate next, and how many ratings would settle what is open.

A comparison is open while its combined difference is not significant after the
adjustment over the pairs. Its variance is about A/n + B/N: A = Var(people − λ·judge) per
rated case (the judge–people disagreement left after calibration), B = λ²·Var(judge)
(the judge-only part), n rated cases, N judge-only ones. At the observed difference d it
is settled when |d| ≥ q·SE, q the two-sided normal quantile at α/m (Bonferroni over the
m pairs: Holm's first step, the strictest). Each case rated moves one from N to n, and
once few judge-only cases are left the people-only variance V/n is the better figure, so
n* is the least n with min(A/n + B/(K − n), V/n) ≤ (d/q)², K = n + N; where none is,
not even rating every case settles it at that difference.

The order: open comparisons whose winner could flip first, by how much one more rated
case lowers their variance (A/n − A/(n + 1): large where the judge and people disagree
most and few cases are rated), then the rest. Which configs people rate is chosen here;
which of their cases is not: the review draws those at random among the cases nobody has
rated yet, which keeps the rated cases a random draw of the judged ones, as the combined
estimate needs (a case chosen for the judge's opinion of it would bias the estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import special

from evaluation.calibration._combined import CalibratedMetric, DiffEstimate
from evaluation.calibration._shown import DIFFERENCE, MIN_INTERVAL, interval_words
from evaluation.wording import counted


@dataclass(frozen=True)
class OpenComparison:
    """One open comparison and what would settle it."""

    criterion: str
    a: str
    b: str
    diff: DiffEstimate
    rated: int  # cases rated for both
    more: int | None  # rated cases of both configs still needed; None: ratings cannot
    gain: float  # variance one more rated case removes
    note: str = ""


def _settled_at(
    target_se: float, n: int, big_n: int, a: float, b: float, people: float
) -> int | None:
    """How many more rated cases bring the standard error down to ``target_se``: at n
    rated of K = n + N cases, SE² = min(A/n + B/(K − n), V/n), the people-only V/n once
    few judge-only cases are left. None when not even K rated cases do."""
    if target_se <= 0:  # a difference of exactly 0: no number of cases settles it
        return None
    total = n + big_n
    for k in range(n + 1, total + 1):
        var = people / k if k == total else min(a / k + b / (total - k), people / k)
        if var <= target_se**2:
            return k - n
    return None


def open_comparisons(metrics: list[CalibratedMetric]) -> list[OpenComparison]:
    """Every comparison not yet decided, the ones ratings settle soonest first."""
    out = []
    for m in metrics:
        open_ = [d for d in m.diffs if not d.significant and d.combined.estimate is not None]
        q = float(special.ndtri(1 - m.alpha / (2 * max(1, len(m.diffs)))))
        for d in open_:
            est = d.combined
            n = est.n_rated
            # The combined variance at n rated cases: A/n, which more ratings shrink, and
            # B/N from the judge-only cases, of which each rating takes one away.
            big_n = est.n_judge_only
            judge_part = est.var_judge_only or 0.0
            a_part = max(0.0, (est.se or 0.0) ** 2 - judge_part) * n
            people = d.people.se**2 * d.people.n_rated if d.people.se else a_part
            more = _settled_at(abs(est.estimate) / q, n, big_n, a_part, judge_part * big_n, people)
            note = _why_open(est.estimate, est.se, n, more)
            if n < MIN_INTERVAL:  # no interval, no test yet: the next ratings give them
                more = MIN_INTERVAL - n
            elif est.se == 0:  # every rated case the same difference: no spread to plan from
                more = None
            gain = a_part / n - a_part / (n + 1)
            out.append(OpenComparison(m.criterion, d.a, d.b, d, n, more, gain, note))
    return sorted(out, key=lambda c: (c.more is None, -c.gain, c.more or 0))


def _why_open(estimate: float, se: float | None, n: int, more: int | None) -> str:
    """Why a comparison is open where the number of cases that settle it is not the
    answer; "" where it is. A difference of exactly 0 is a likely tie at any n (rate-next
    read "about 1 more cases ... would settle it" of +0.000 on 10 cases all rated alike,
    newcomers' J8)."""
    if n < MIN_INTERVAL:
        return (
            f"rate at least {counted(MIN_INTERVAL - n, 'more case')} for both for an "
            "interval and a test"
        )
    if se == 0 and abs(estimate) <= 1e-12:
        return (
            "every rated case rated the same for both configs (difference 0): likely a tie; "
            "more ratings may show a spread"
        )
    if se == 0:
        return "no interval yet: every rated case gives the same difference; rate more cases"
    if more is None:
        return "rating every case would not settle it at this difference (likely a tie)"
    return ""


def plan_lines(
    metrics: list[CalibratedMetric], labels: dict[str, str], experiment: str
) -> list[str]:
    """What `evalflow rate-next` prints: each open comparison, how many more rated cases
    would settle it at its observed difference, and the review that rates them."""
    comparisons = open_comparisons(metrics)
    if not metrics:
        return [
            f"nothing to plan: no judge of {experiment} has outputs people rated "
            f"(evalflow judge {experiment} --model M, then evalflow review {experiment})"
        ]
    blank = _unestimated_lines(metrics, labels, experiment)
    if not comparisons:
        if not blank:
            return ["every combined comparison is settled: no rating needed for them"]
        return [
            "no combined comparison could be estimated, so none can be called settled:",
            *blank,
        ]
    lines = ["Open comparisons, the ones one more rating helps most first:"]
    for c in comparisons:
        a, b = labels.get(c.a, c.a), labels.get(c.b, c.b)
        est = c.diff.combined
        shown = interval_words(
            est.estimate, est.ci, est.n_rated, DIFFERENCE, signed=True, unit="rated case"
        )
        p = "" if c.diff.p_adjusted is None else f", p_adj {c.diff.p_adjusted:.3g}"
        settle = c.note or (
            f"about {counted(c.more or 0, 'more case')} rated for both would settle it at "
            "this difference"
        )
        lines.append(f"  {c.criterion}: {a} − {b}: {shown} on {c.rated} rated cases{p}; {settle}")
    best = comparisons[0]
    pairs = best.more if best.more is not None else 10
    lines.append(
        f"next: evalflow review {experiment} --next --pairs {min(pairs, 50)} "
        f"(rates {labels.get(best.a, best.a)} against {labels.get(best.b, best.b)} on cases "
        "drawn at random among those nobody rated; blind as any review)"
    )
    if blank:
        lines += ["Not estimated (no combined difference):", *blank]
    return lines


def _unestimated_lines(
    metrics: list[CalibratedMetric], labels: dict[str, str], experiment: str
) -> list[str]:
    """One line per comparison without a combined difference ("—"): why, and what to do.
    It needs at least 2 cases rated for both configs and judge-only cases (outputs the
    judge scored and people did not) for the judge's scores to add anything."""
    out = []
    for m in metrics:
        if len(m.configs) < 2:  # no difference at all: people rated one config's outputs
            rated = ", ".join(labels.get(e.config, e.config) for e in m.configs)
            out.append(
                f"  {m.criterion}: people rated judged outputs of one config only ({rated}); "
                f"rate at least 2 cases of each config (evalflow review {experiment})"
            )
        for d in m.diffs:
            est = d.combined
            if est.estimate is not None:
                continue
            a, b = labels.get(d.a, d.a), labels.get(d.b, d.b)
            if est.n_rated < 2:
                why = (
                    f"{est.n_rated} case(s) rated for both; rate at least 2 cases per config "
                    f"(evalflow review {experiment})"
                )
            else:
                why = (
                    f"the judge scored no case of both that people did not rate; judge more "
                    f"outputs than people rate (evalflow judge {experiment} --model M), or "
                    "read the people-only difference"
                )
            out.append(f"  {m.criterion}: {a} − {b}: —; {why}")
    return out
