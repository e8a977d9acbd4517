"""The verdict on one metric: a winner, or the configs within noise of the best, in one
short line that every output (CLI, comparison artifact, HTML report) shows as computed.

Configs are named "#N" by their rank (best first) with a short label: the label's words
that not every compared config shares. A config is significantly worse when some config
with the best mean beats it after adjustment; configs tied with the best on the mean are
treated alike, so the verdict does not depend on how equal means happen to be ordered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

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


def short_labels(names: Sequence[str]) -> dict[str, str]:
    """Each name without the words every name shares ("seed=42", "n=128") and with
    "tpl=" dropped; the full names when that would make two of them equal."""
    words = [name.split() for name in names]
    common = set.intersection(*(set(w) for w in words)) if len(words) > 1 else set()
    short = {
        name: " ".join(x.removeprefix("tpl=") for x in w if x not in common) or name
        for name, w in zip(names, words, strict=True)
    }
    return short if len(set(short.values())) == len(short) else {n: n for n in names}


def rank_list(ranks: Sequence[int]) -> str:
    """ "#2, #5–#8" for ranks 2, 5, 6, 7, 8."""
    out: list[str] = []
    ordered = sorted(ranks)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        span = f"#{ordered[i]}" if i == j else f"#{ordered[i]}–#{ordered[j]}"
        out.append(span if j - i != 1 else f"#{ordered[i]}, #{ordered[j]}")
        i = j + 1
    return ", ".join(out)


def decide(
    metric: str,
    ranking: Sequence[tuple[str, float | None]],
    adjusted: Sequence[_Pair],
    higher_is_better: bool | None,
    how: str,
    baseline: str | None = None,
) -> Verdict:
    """The verdict from the ranking (best first, unscored configs last with None) and the
    adjusted pairwise comparisons. ``higher_is_better=None``: a descriptive metric, no
    verdict."""
    if higher_is_better is None:
        return Verdict(None, (), (), f"no verdict on {metric}: {DESCRIPTIVE}")
    rank = {c: i for i, (c, _) in enumerate(ranking, start=1)}
    short = short_labels([c for c, _ in ranking]) if ranking else {}
    means = {c: m for c, m in ranking if m is not None}
    ranked = [c for c, m in ranking if m is not None]
    if not ranked:
        return Verdict(None, (), (), f"no verdict on {metric}: no config has a scored case")
    first = ranked[0]
    head = f"#1 ({short[first]}, {means[first]:.3g})"
    if len(ranked) == 1:
        return Verdict(None, (first,), (), f"no verdict on {metric}: only {head} has scores")
    best = means[first]
    top = [c for c in ranked if math.isclose(means[c], best, rel_tol=1e-12, abs_tol=1e-12)]
    pairs = {frozenset((ac.comparison.a, ac.comparison.b)): ac for ac in adjusted}
    unpaired = [o for t in top for o in ranked if o != t and frozenset((t, o)) not in pairs]
    if unpaired:
        anchor = f" #{rank[baseline]}" if baseline in rank else ""
        return Verdict(
            None,
            (),
            (),
            f"no verdict on {metric}: {head} was compared with the baseline{anchor} only; "
            "compare all pairs to name a winner",
        )
    beaten = {
        o for t in top for o in ranked if o not in top and _beats(pairs, t, o, higher_is_better)
    }
    tied = tuple(c for c in ranked if c not in beaten)
    worse = tuple(c for c in ranked if c in beaten)
    if len(tied) == 1:
        text = (
            f"{head} wins on {metric}: significantly better than the other "
            f"{len(ranked) - 1} ({how})"
        )
        return Verdict(first, tied, worse, text)
    shared = f"; {rank_list([rank[c] for c in top])} share the best mean" if len(top) > 1 else ""
    worse_text = rank_list([rank[c] for c in worse]) if worse else "none"
    text = (
        f"no clear winner on {metric}: {len(tied)} of {len(ranked)} within noise of {head}"
        f"{shared}; significantly worse: {worse_text} ({how})"
    )
    return Verdict(None, tied, worse, text)


def _beats(pairs: dict, top: str, other: str, higher_is_better: bool) -> bool:
    ac = pairs[frozenset((top, other))]
    c = ac.comparison
    if not ac.significant or c.diff is None or c.diff == 0:
        return False
    top_minus_other = c.diff if c.a == top else -c.diff
    return (top_minus_other > 0) == higher_is_better
