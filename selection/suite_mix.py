"""A measured config's own cases read at the task type's suite mix.

The multilevel fit (:mod:`selection.multilevel`) estimates every config at the task
type's average suite mix, its suite effects making the comparisons paired. Where it
reads a config far less surely than the config's own cases, those are the measurement
(:func:`selection.shrinkage.quality_measurement`): a mean over whatever suites the
config was run on. Two configs run on different suites are then compared on different
cases, and the easier suite wins: a newcomer's config run on an easy suite alone (9 of
10) beat its twin run on that suite and a harder one (9 of 10 on the easy one too, 58.7%
over both) by 24 points. The fit could not help there: the only configs with another
suite mix were the two at the new temperature, so the suites and that setting told the
same story.

So the own cases are read at the same mix (the weights ``w_s`` of the fit: each suite's
share of the cases averaged over the measured configs). A config's mean on a suite it
was run on is its own; on a suite it was not run on, its mean on its own suites plus how
much lower or higher its relatives did there than on those same suites (paired: each
relative's mean on the missing suite less its mean on the config's suites at the
config's own shares), relatives being the configs of the same model run on both, else
every config run on both:

    ŷ_c = Σ_{s run} w_s·m_cs + Σ_{s not run} w_s·(m̄_c + d̂_s),   d̂_s = mean_r d_rs

Its variance adds, for each suite not run, the spread of the relatives' differences
(another config's difference is one more draw from it) times (1 + 1/|R|), the spread
moderated toward that of every config run on both (``PRIOR_DF`` degrees of freedom: a
few relatives' sample variance is itself a guess), and never below the relatives'
differences' own sampling variance (``FILL_NOISE_FLOOR``: each is a difference of two
means over a few cases). Where no
relative was run on a missing suite the own cases stay as they were (``missing`` names
the suite, ``read_from`` is empty).

The multilevel fit reads these readings (:func:`selection.shrinkage.quality_fit`), not
each config's mean over its own suites: its suite effects, shared by every model and
learnt from means over different mixes, read a second user's smollm configs run on the
easy suite alone above their relatives' reading (gemma did better on the harder suite,
smollm 20–56 points worse there), and picked one after another (t=0.6, 6 of 10 there,
the worst smollm, at 77%). A config run on fewer suites has the larger standard error
here, so the fit shrinks it the more toward what its settings did elsewhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from selection.model import SelectorModel
from selection.own_means import PRIOR_DF, own_quality

FILL_NOISE_FLOOR = 1.0
"""The spread of a fill's differences is at least this many times their mean sampling
variance (0: no floor). Where one config alone was run on both suites, its difference
is the only one, its spread across configs unknown (every config's is that one), and
it was taken as 0: a fill as sure as the config's own cases, from one difference of two
10-case means. Under the selector benchmark's uneven world (tune seed 2, code: one
config of 15 run on both suites) the fit then read the suites' difference from that one
config as known, dropped its own suite effect, and lost 8 of 30 queries to
never-measured configs (issue50.md, 2026-11-27 09:10 UTC); with the floor the fit's
readings follow the truth more closely there (correlation 0.79 to 0.83 measured, 0.74
to 0.80 never measured) and the 8 return."""
NO_RELATIVE = ""
"""``read_from`` where no relative was run on a suite the config was not."""


def suite_mix(model: SelectorModel, task_type: str) -> pd.DataFrame:
    """Per config measured on ``task_type`` (index: config hash), ``mean`` and ``se``: its
    own cases at the task type's suite mix (module docstring; its plain mean and standard
    error where it was run on every suite or all configs share one mix), ``missing``: the
    suites it was not run on (tuple), ``read_from``: whose differences filled them in
    (the model's name, "every config", or ``NO_RELATIVE``), and ``mix``: the suite weights
    (a dict, the same on every row). Cached on the model."""
    key = ("suite mix", task_type)
    if key not in model._multilevel:
        model._multilevel[key] = _suite_mix(model, task_type)
    return model._multilevel[key]


def _suite_mix(model: SelectorModel, task_type: str) -> pd.DataFrame:
    own_y, own_se = own_quality(model, task_type)
    evidence = model.evidence[model.evidence["task_type"] == task_type].set_index("config_hash")
    found = pd.DataFrame(
        {"mean": own_y, "se": own_se, "missing": [()] * len(own_y), "read_from": ""},
        index=own_y.index,
    )
    scores = model.case_scores[model.case_scores["task_type"] == task_type]
    suite = scores["case"].str.split("/", n=1).str[0]
    cells = scores.groupby([scores["config_hash"], suite])["quality"].agg(["mean", "count"])
    means = cells["mean"].unstack()
    counts = cells["count"].unstack().fillna(0.0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    mix = shares.mean(axis=0)
    found["mix"] = [mix.to_dict()] * len(found)
    if len(mix) < 2 or float((shares - shares.iloc[0]).abs().to_numpy().max()) < 1e-9:
        return found
    names = model.configs["model"].reindex(means.index).astype(str)
    case_variance = (own_se**2 * evidence["n_cases"].reindex(own_se.index)).reindex(means.index)
    for config in found.index.intersection(means.index):
        run = counts.loc[config] > 0
        if run.all() or not run.any():
            if run.all():
                found.loc[config, "mean"] = float((mix * means.loc[config]).sum())
                per_case = float(own_se[config]) ** 2 * float(evidence.loc[config, "n_cases"])
                found.loc[config, "se"] = float(
                    np.sqrt((mix**2 * per_case / counts.loc[config]).sum())
                )
            continue
        found.at[config, "missing"] = tuple(str(s) for s in mix.index[~run])
        own_share = shares.loc[config, run]
        # relatives run on every suite this config was run on
        both = counts.loc[:, run].gt(0).all(axis=1) & (counts.index != config)
        own_mean = float((own_share * means.loc[config, run]).sum())
        per_case = float(case_variance[config])
        variance = float(
            (
                (mix[run] + mix[~run].sum() * own_share) ** 2 * per_case / counts.loc[config, run]
            ).sum()
        )
        total = float((mix[run] * means.loc[config, run]).sum())
        read_from = NO_RELATIVE
        for missing in mix.index[~run]:
            on_it = both & (counts[missing] > 0)
            same = on_it & (names == names[config])
            relatives = same if same.any() else on_it
            if not relatives.any():
                read_from = NO_RELATIVE
                break
            read_from = names[config] if same.any() else "every config"
            at_own = (means.loc[relatives, run] * own_share).sum(axis=1)
            differences = means.loc[relatives, missing] - at_own
            noise = case_variance[relatives] * (
                1 / counts.loc[relatives, missing]
                + (own_share**2 / counts.loc[relatives, run]).sum(axis=1)
            )
            spread = max(
                _spread(differences, means, on_it, run, own_share, missing),
                FILL_NOISE_FLOOR * float(noise.mean()),
            )
            total += float(mix[missing]) * (own_mean + float(differences.mean()))
            variance += float(mix[missing]) ** 2 * spread * (1 + 1 / int(relatives.sum()))
        if read_from == NO_RELATIVE:
            continue
        found.loc[config, ["mean", "se"]] = [float(np.clip(total, 0, 1)), float(np.sqrt(variance))]
        found.loc[config, "read_from"] = read_from
    return found


def _spread(
    differences: pd.Series,
    means: pd.DataFrame,
    on_it: pd.Series,
    run: pd.Series,
    own_share: pd.Series,
    missing: str,
) -> float:
    """The variance of one config's difference between ``missing`` and its own suites:
    the relatives' sample variance moderated toward that of every config run on both,
    with ``PRIOR_DF`` degrees of freedom for the latter (as a config's case variance is,
    :func:`selection.own_means.moderated_se`): two or three relatives that happen to agree
    do not make the fill certain (one alone cannot show its spread: every config's is
    taken); the relatives' alone where no other config was run on both, else 0."""
    every = means.loc[on_it, missing] - (means.loc[on_it, run] * own_share).sum(axis=1)
    df = len(differences) - 1
    own = float(differences.var(ddof=1)) if df >= 1 else 0.0
    if len(every) < 2:
        return own
    return (df * own + PRIOR_DF * float(every.var(ddof=1))) / (df + PRIOR_DF)


def shared_case_mean(
    model: SelectorModel, task_type: str, config: str, on: str
) -> tuple[float, int]:
    """``config``'s mean quality on the cases of ``task_type`` that config ``on`` was run
    on too, and how many those are ((NaN, 0) where none)."""
    scores = model.case_scores[model.case_scores["task_type"] == task_type]
    mine = scores[scores["config_hash"] == config].set_index("case")["quality"]
    theirs = scores.loc[scores["config_hash"] == on, "case"]
    shared = mine[mine.index.isin(theirs)]
    return (float(shared.mean()), len(shared)) if len(shared) else (float("nan"), 0)


def suites_label(suites: tuple[str, ...]) -> str:
    """ "capitals" / "capitals and qa-short" / "a, b and c"."""
    return suites[0] if len(suites) == 1 else ", ".join(suites[:-1]) + f" and {suites[-1]}"
