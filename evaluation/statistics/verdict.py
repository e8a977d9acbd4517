"""The verdict on one metric: a winner, or the configs within noise of the best, in one
short line that every output (CLI, comparison artifact, HTML report, view) shows as computed.

Configs are named by their label (``evaluation.labels``: the words not every compared
config shares), never by a rank on this metric that no table shows; a long list is given
as its count. A config is significantly worse when some config with the best mean beats
it after adjustment; configs tied with the best on the mean are
treated alike, so the verdict does not depend on how equal means happen to be ordered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from evaluation.labels import distinguishing_labels
from evaluation.statistics.precision import DEFAULT_DECIMALS, fixed, significant
from evaluation.wording import part_of_suite, with_failures

DESCRIPTIVE = "descriptive: neither higher nor lower is better"


class _Pair(Protocol):
    """What the verdict needs of an adjusted comparison (``AdjustedComparison``)."""

    significant: bool

    @property
    def comparison(self): ...


@dataclass(frozen=True)
class Verdict:
    winner: str | None
    tied_at_top: tuple[str, ...]
    significantly_worse: tuple[str, ...]
    text: str


#: Lists of configs longer than this are given as a count ("the other 8").
NAMED_AT_MOST = 6


def named(configs: Sequence[str], short: dict[str, str], *, others: bool = False) -> str:
    """ "a, b and c" by label, or "8 configs" ("the other 8" with ``others``)."""
    if not configs:
        return ""
    if len(configs) > NAMED_AT_MOST:
        return f"the other {len(configs)}" if others else f"{len(configs)} configs"
    shown = [short[c] for c in configs]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def decide(
    metric: str,
    ranking: Sequence[tuple[str, float | None]],
    adjusted: Sequence[_Pair],
    higher_is_better: bool | None,
    how: str,
    baseline: str | None = None,
    *,
    cases: Mapping[str, int] | None = None,
    suite_cases: int = 0,
    suite_part: str = "subset",
    suite_named: int = 0,
    suite_run: Mapping[str, tuple[int, int]] | None = None,
    headline: str = "",
) -> Verdict:
    """The verdict from the ranking (best first, unscored configs last with None) and the
    adjusted pairwise comparisons. ``higher_is_better=None``: a descriptive metric, no
    verdict. ``cases``: how many cases each config's mean rests on, of ``suite_cases``:
    a mean of part of the suite says so, as ``suite_part`` says the cases were taken
    ("0.875, subset: 8 of 36 cases", "first 8 of 36 cases" of a `--limit` run: the
    run's heading's words; ``suite_named``: the spec's ``cases:`` count, "first 3 of the
    spec's 28 named cases, in suite order" as the run's heading says it; ``suite_run``:
    per config, its cases run and those whose every generation failed, as the heading
    counts them: "first 6 of 36 cases; 2 failed: figures over the 4 scored", and those
    run but not scored on the metric: "2 failed, 1 not scored: figures over the 3
    scored"), and means over
    different cases say that each pair was tested on the cases both ran. ``headline``:
    what the ranking's figures are where they are not the means of the case scores the
    pairs are tested on ("corpus chrf": the leaderboard's figure); the verdict names it
    and the case scores it tested."""
    if higher_is_better is None:
        return Verdict(None, (), (), f"no verdict on {metric}: {DESCRIPTIVE}")
    short = distinguishing_labels([c for c, _ in ranking]) if ranking else {}
    means = {c: m for c, m in ranking if m is not None}
    ranked = [c for c, m in ranking if m is not None]
    if not ranked:
        return Verdict(None, (), (), f"no verdict on {metric}: no config has a scored case")
    first = ranked[0]

    written = _writer(means.values())

    def figure(config: str) -> str:
        n = (cases or {}).get(config, suite_cases)
        part = part_of_suite(str(n), suite_cases, suite_part, named=suite_named)
        part = f", {part}" if 0 < n < suite_cases else ""
        ran, failed = (suite_run or {}).get(config, (n, 0))
        if (failed or ran - failed > n) and suite_cases:  # failed, or run but not scored
            run = part_of_suite(str(ran), suite_cases, suite_part, named=suite_named)
            run = run if ran < suite_cases else ""
            unscored = max(ran - failed - n, 0)
            part = f", {with_failures(run, str(failed), suite_cases, str(n), unscored=unscored)}"
        return f"{headline} {written(means[config])}{part}".lstrip()

    if headline:  # the pairs are tested on the case scores, not on the figures ranked
        how = f"paired on per-case {metric}, {how}"

    head = f"{short[first]} ({figure(first)})"
    if len(ranked) == 1:
        return Verdict(None, (first,), (), f"no verdict on {metric}: only {head} has scores")
    best = means[first]
    top = [c for c in ranked if math.isclose(means[c], best, rel_tol=1e-12, abs_tol=1e-12)]
    if len(top) == len(ranked):  # no best to name: every config scores the same
        text = (
            f"all {len(ranked)} configs score {written(best)} on {metric}: nothing to choose "
            "between"
        )
        return Verdict(None, tuple(ranked), (), text + _different_cases(ranked, cases))
    pairs = {frozenset((ac.comparison.a, ac.comparison.b)): ac for ac in adjusted}
    unpaired = [o for t in top for o in ranked if o != t and frozenset((t, o)) not in pairs]
    if unpaired:
        if baseline in top:  # not "the baseline was compared with the baseline only"
            tied = [c for c in top if c != baseline]
            what = (
                f"the baseline {short[baseline]} ({figure(baseline)}) ties on the mean "
                f"with {named(tied, short)}, compared with the baseline only"
            )
        else:
            anchor = f" ({short[baseline]})" if baseline in short else ""
            what = f"{head} was compared with the baseline{anchor} only"
        return Verdict(
            None, (), (), f"no verdict on {metric}: {what}; compare all pairs to name a winner"
        )
    beaten = {
        o for t in top for o in ranked if o not in top and _beats(pairs, t, o, higher_is_better)
    }
    tied = tuple(c for c in ranked if c not in beaten)
    worse = tuple(c for c in ranked if c in beaten)
    # ranked by a figure the pairs are not tested on, a config ranked below the best can
    # be significantly better than it on the case scores: said, not hidden in "within noise"
    above = [
        o for o in tied if o not in top and any(_beats(pairs, o, t, higher_is_better) for t in top)
    ]
    ahead = f"; significantly better than it on per-case {metric}: {named(above, short)}"
    ahead = ahead if above else ""
    if len(tied) == 1:
        text = (
            f"{head} wins on {metric}: significantly better than the other "
            f"{len(ranked) - 1} ({how})"
        ) + _different_cases(ranked, cases)
        return Verdict(first, tied, worse, text)
    if len(top) > 1:  # configs tied on the mean are named with the first
        head = f"{short[first]} ({figure(first)}, as has {named(top[1:], short)})"
    worse_text = named(worse, short, others=True) or "none"
    text = (
        f"no clear winner on {metric}: {len(tied)} of {len(ranked)} within noise of the best, "
        f"{head}{ahead}; significantly worse: {worse_text} ({how})"
    )
    return Verdict(None, tied, worse, text + _different_cases(ranked, cases))


def _writer(means: Iterable[float]) -> Callable[[float], str]:
    """How a metric's means are written: three decimals for scores (every mean in [0, 1]:
    0.778, 1.000, 0.000, as the tables write them), else three significant figures
    (a latency's 30.8, a length's 112)."""
    if all(0.0 <= m <= 1.0 for m in means):
        return lambda value: fixed(value, DEFAULT_DECIMALS)
    return significant


def _different_cases(ranked: Sequence[str], cases: Mapping[str, int] | None) -> str:
    """What a verdict over means of different case sets rests on ("" when they agree)."""
    counts = {cases[c] for c in ranked if c in cases} if cases else set()
    if len(counts) < 2:
        return ""
    return (
        f"; the means rest on different cases ({min(counts)} to {max(counts)}): each pair "
        "is tested on the cases both ran"
    )


def _beats(pairs: dict, top: str, other: str, higher_is_better: bool) -> bool:
    ac = pairs[frozenset((top, other))]
    c = ac.comparison
    if not ac.significant or c.diff is None or c.diff == 0:
        return False
    top_minus_other = c.diff if c.a == top else -c.diff
    return (top_minus_other > 0) == higher_is_better
