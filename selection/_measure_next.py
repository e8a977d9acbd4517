"""What to measure next when the answer is uncertain: the candidates that may beat the
pick (the `next:` lines), the pick itself on suites its rivals ran and it did not, and
where more of the same cases cannot separate them, that the task type needs more cases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from selection._candidates import params_label
from selection.model import SelectorModel
from selection.quality_text import quality_interval
from selection.suite_mix import suite_mix, suites_label

MAX_TO_MEASURE = 3


MEASURE_CASES = 30
"""A candidate measured on fewer cases than this on the task type may be worth measuring
(more)."""


def _may_beat(feasible: pd.DataFrame, chosen: Any, *, quality_decides: bool) -> pd.DataFrame:
    """The feasible candidates, not the pick, measured on fewer than ``MEASURE_CASES``
    cases (none where quality cannot decide) whose 90% interval reaches above the pick's
    estimate, the highest upper end first."""
    pick = float(feasible.loc[chosen, "quality"])
    cases = _cases_so_far(feasible)
    return feasible[
        (feasible.index != chosen)
        & (feasible["quality_high"] > pick)
        & (cases < (MEASURE_CASES if quality_decides else 1))
    ].sort_values("quality_high", ascending=False)


def _cases_so_far(feasible: pd.DataFrame) -> pd.Series:
    return feasible.get("measured_n_cases", pd.Series(0.0, index=feasible.index)).fillna(0)


def measure_next(
    feasible: pd.DataFrame,
    chosen: Any,
    missing: Mapping[str, tuple[str, ...]] | None = None,
    *,
    unrun: Mapping[str, Mapping[str, int]] | None = None,
    quality_decides: bool = True,
) -> list[tuple[Any, tuple[str, ...], str]]:
    """What to measure next when the answer is uncertain: up to ``MAX_TO_MEASURE``
    candidates that may beat the pick (:func:`_may_beat`), the most promising first.
    Measuring them settles whether the pick stands; none: the answer is settled as far
    as the candidates go. ``missing``: per config hash the task type's suites it was not
    run on (:mod:`selection.suite_mix`); the pick is to be measured there when it was not
    run on a suite its rivals were (a newcomer's pick measured on an easy suite alone had
    no `next:` line although its twin, level with it there, had run on a harder one too).
    ``unrun``: per measured config hash, the task type's cases it has not run, by suite
    (:func:`unrun_cases`). A measured candidate is named only where it has such cases, to
    be measured on their suites: a rerun of its cases counts once, so more of a config run
    on every case of the task type changes nothing (a newcomer was told to measure more of
    one run on all 12 cases there were, `--write-spec` wrote that rerun, and after it and
    a retrain the same line came back: :func:`needs_cases_note` says so instead). Nor
    where quality cannot decide (``quality_decides`` False: every measured config scored
    the same, so more cases of the same metric tell none apart).
    Each: the row's index, the suites to measure it on (empty: any of the task type's),
    and the `next:` line."""
    missing, unrun = missing or {}, unrun or {}
    cases = _cases_so_far(feasible)
    open_ = _may_beat(feasible, chosen, quality_decides=quality_decides)
    open_ = open_[(cases[open_.index] == 0) | open_.index.map(lambda i: bool(unrun.get(str(i))))]
    found = []
    if quality_decides and missing.get(str(chosen)) and len(feasible) > 1:
        row, suites = feasible.loc[chosen], missing[str(chosen)]
        found.append(
            (
                chosen,
                suites,
                f"measure the pick, {params_label(row)} (hash {chosen}), on "
                f"{suites_label(suites)}: it was not run there, so its estimate there is "
                "read from other configs; that settles whether it stands",
            )
        )
    for index, row in open_.head(MAX_TO_MEASURE - len(found)).iterrows():
        done = int(cases[index])
        estimate = "estimated " + quality_interval(
            row["quality"], row["quality_low"], row["quality_high"]
        )
        if done:
            left = unrun[str(index)]
            suites = tuple(left)
            none_on = tuple(s for s in suites if s in missing.get(str(index), ()))
            partly = [f"{left[s]} more on {s}" for s in suites if s not in none_on]
            said = [f"{done} cases so far"] + (
                [f"none on {suites_label(none_on)}"] if none_on else []
            )
            text = (
                f"measure more of {params_label(row)} ({', '.join(said + partly)}) "
                f"(hash {index}) on {suites_label(suites)}: {estimate}; it may beat the pick"
            )
        else:
            suites = ()
            text = (
                f"measure {params_label(row)} (hash {index}): {estimate}, never run on this "
                "task type; it may beat the pick"
            )
        found.append((index, suites, text))
    return found


def needs_cases_note(
    feasible: pd.DataFrame,
    chosen: Any,
    task_type: str,
    unrun: Mapping[str, Mapping[str, int]],
    *,
    quality_decides: bool = True,
    retrain: str = "evalflow retrain",
) -> tuple[str, str] | None:
    """For measured candidates that may beat the pick but were run on every case of the
    task type's suites (:func:`measure_next` names none of them): that only more cases
    can separate them from the pick, once, and that in one line (what `recommend -q`
    keeps); None where there are none. A suite's cases no config was run on are cases
    they lack (:func:`unrun_cases`), named on `next:` lines. ``retrain``: the command
    that trains on what the answering version learned from
    (:func:`selection._staleness.retrain_command`)."""
    cases = _cases_so_far(feasible)
    open_ = _may_beat(feasible, chosen, quality_decides=quality_decides)
    done = [i for i in open_.index if cases[i] > 0 and not unrun.get(str(i))]
    if not done:
        return None
    first = params_label(feasible.loc[done[0]])
    more = len(done) - 1
    them, each, it = (
        (f"{first} and {more} more", "each was", "them") if more else (first, "it was", "it")
    )
    note = (
        f"{them} may beat the pick, but {each} run on all {int(cases[done[0]])} {task_type} "
        f"cases the selector learned from (a rerun of a case counts once), so measuring {it} "
        f"on them again changes nothing: to separate {it} from the pick, the task type needs "
        f"more cases: add cases to a {task_type} suite, or a new {task_type} suite, run {it} "
        f"on those, then `{retrain}` (docs/selector.md, What to measure next)"
    )
    brief = (
        f"{them} may beat the pick: only more {task_type} cases can tell (the answer "
        "without -q says how)"
    )
    return note, brief


def rest_of_suites_note(
    named: Sequence[tuple[Any, tuple[str, ...], str]],
    never_run: Mapping[str, int],
    retrain: str = "evalflow retrain",
) -> str | None:
    """Where `next:` lines name suites with cases no config was run on (a run stores its
    whole suite, whatever part it runs): how to run them, then ``retrain`` (as for
    :func:`needs_cases_note`); None where none do."""
    suites = [s for s in dict.fromkeys(s for _, on, _ in named for s in on) if never_run.get(s)]
    if not suites:
        return None
    where = " and ".join(f"{never_run[s]} of {s}'s cases" for s in suites)
    return (
        f"no config was run on {where}: a run with `--limit` runs the rest when rerun "
        "without it (the same command and `--experiment`, what it stored is kept), then "
        f"`{retrain}` (docs/selector.md, What to measure next)"
    )


def never_run(
    model: SelectorModel, task_type: str, suite_sizes: Mapping[str, int]
) -> dict[str, int]:
    """Per suite of ``task_type`` the model learned from, how many of its cases
    (``suite_sizes``) no config it learned from was run on (only suites with some)."""
    scores = model.case_scores[model.case_scores["task_type"] == task_type]
    known = scores.groupby(scores["case"].str.split("/", n=1).str[0])["case"].nunique()
    return {
        str(suite): int(suite_sizes[suite] - n)
        for suite, n in known.items()
        if suite in suite_sizes and suite_sizes[suite] > n
    }


def unrun_cases(
    model: SelectorModel, task_type: str, never_run: Mapping[str, int] | None = None
) -> dict[str, dict[str, int]]:
    """Per measured config of ``task_type``, how many of the task type's cases it was not
    run on, by suite (only configs and suites with some): those any config the model
    learned from was run on; for a config run on all of those, the cases no config was
    run on (``never_run``, :func:`never_run`): the more cases to run it on (a newcomer's
    configs, run with ``--limit 12`` on qa-short's 36, were told to run the other 24 in
    a note that `--write-spec` and `-q` knew nothing of)."""
    scores = model.case_scores[model.case_scores["task_type"] == task_type]
    suite = scores["case"].str.split("/", n=1).str[0]
    known = scores.groupby(suite)["case"].nunique()
    ran = scores.groupby([scores["config_hash"], suite])["case"].nunique().unstack()
    left = (known - ran.reindex(columns=known.index).fillna(0)).astype(int)
    rest = {str(s): int(n) for s, n in (never_run or {}).items() if n > 0}
    return {
        str(config): {str(s): int(n) for s, n in row.items() if n > 0} or rest
        for config, row in left.iterrows()
        if (row > 0).any() or rest
    }


def missing_suites(model: SelectorModel, task_type: str) -> dict[str, tuple[str, ...]]:
    """Per measured config of ``task_type``, the task type's suites it was not run on
    (only those that miss some)."""
    missing = suite_mix(model, task_type)["missing"]
    return {str(h): tuple(m) for h, m in missing.items() if m}
