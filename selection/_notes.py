"""The answer's notes: the lines under a recommendation that say how its figures were
read (which metric quality is, what the estimate rests on, corrections, simulated data,
prompts the server cuts) and why the pick stands where a reader might expect another
(a speed tie, thin data, the model's guess). Each takes what the choice computed and
returns its words (None where there is nothing to say); none changes the pick."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from evaluation.statistics.precision import significant, told_apart
from selection._candidates import params_label
from selection._choice import TIE_Z, speed_ties
from selection._corpus_board import per_case_note
from selection._measure_next import missing_suites
from selection._selection_bias import MIN_CANDIDATES
from selection._staleness import retrain_command
from selection.model import SelectorModel
from selection.quality import configs_under_several
from selection.quality_text import quality, quality_interval
from selection.recommendation import MAX_LISTED, WIDE, Option, wide_interval
from selection.shrinkage import CHECK_CONFIDENCE
from selection.suite_mix import NO_RELATIVE, shared_case_mean, suite_mix, suites_label


def speed_tie(feasible: pd.DataFrame, chosen: Any) -> str | None:
    """For a pick for speed that is not the fastest candidate: that it ties with the
    fastest within their estimates' noise (:func:`selection._choice.speed_ties`) and wins
    the tie on quality, with the figures; None for the fastest."""
    tied = speed_ties(feasible)
    if chosen == tied[0]:
        return None
    pick, fastest = feasible.loc[chosen], feasible.loc[tied[0]]
    mine, theirs = told_apart(
        float(pick["latency_p50"]), float(fastest["latency_p50"]), figures=True
    )
    others = len(tied) - 1
    return (
        f"its median latency ties with the fastest's, {params_label(fastest)} (p50 {mine} s "
        f"vs {theirs} s: within {TIE_Z:g} standard deviations of their difference, the "
        f"estimates' noise); of the {others + 1} candidates so tied it has the best estimated "
        f"quality ({quality(pick['quality'])} vs the fastest's "
        f"{quality(fastest['quality'])})"
    )


def prompt_note(row: pd.Series, chars: float) -> str | None:
    """For a pick whose prompt does not fit its ``num_ctx`` for inputs of ``chars``
    characters (:mod:`selection.prompt_fit`): that the server will cut it, and whether
    its quality estimate knows what the cut costs."""
    tokens = row.get("prompt_overflow", math.nan)
    if not pd.notna(tokens):
        return None
    basis = (
        "its measured quality includes the cases the server cut"
        if bool(row.get("measured", False))
        else "its quality was never measured with that cut, only predicted: measure it, "
        "or choose a config with a larger num_ctx"
    )
    return (
        f"its prompt does not fit num_ctx {float(row['num_ctx']):g} for inputs of {chars:g} "
        f"characters: a stored case no longer than that took {float(tokens):g} prompt tokens "
        f"with {row['model']} and template {row['template']}, and the server cuts such a "
        f"prompt without a word; {basis}"
    )


def shared_note(
    half_width: float, model: SelectorModel, table: pd.DataFrame, task_type: str
) -> str:
    """The error the candidates share from the cases they were measured on (``half_width``
    of the quality interval, on the 0–1 scale): it cancels
    between configs measured on the same cases, which a newcomer's note claimed of
    configs run on different suites."""
    measured = list(table.index[table["measured"].astype(bool)])
    missing = missing_suites(model, task_type)
    apart = [h for h in measured if missing.get(str(h))]
    if not apart:
        return (
            f"the quality interval includes ±{quality(half_width)} every candidate shares: "
            "they were measured on the same cases, and other cases could score them all "
            "higher or lower; comparing them, this error cancels"
        )
    named = "; ".join(
        f"{params_label(table.loc[h])} not on {suites_label(missing[str(h)])}"
        for h in apart[:MAX_LISTED]
    ) + (f"; and {len(apart) - MAX_LISTED} more" if len(apart) > MAX_LISTED else "")
    return (
        f"the quality interval includes ±{quality(half_width)} for the cases measured: other "
        "cases could score every config higher or lower; that cancels between candidates "
        f"measured on the same cases, and these were not all: {named} (compared at the task "
        "type's suite mix, each suite it was not run on read from other configs)"
    )


def mix_note(model: SelectorModel, row: pd.Series, task_type: str) -> str | None:
    """For a pick whose own cases were the measurement and that was not run on every
    suite of the task type: how its measurement was read at the task type's suite mix."""
    if not bool(row.get("quality_measurement_own", False)):
        return None
    found = suite_mix(model, task_type)
    if row.name not in found.index or not found.loc[row.name, "missing"]:
        return None
    at = found.loc[row.name]
    mix = ", ".join(f"{suite} {100 * share:.0f}%" for suite, share in at["mix"].items())
    missing = suites_label(at["missing"])
    if at["read_from"] == NO_RELATIVE:
        return (
            f"its measurement is its own cases alone: it was not run on {missing}, and no "
            "config run on its suites was run there either, so it is not compared with the "
            "others on the same cases"
        )
    return (
        f"its measurement is read at the task type's suite mix ({mix}): it was not run on "
        f"{missing}, so its mean there is its mean on its own suites plus how much lower or "
        f"higher {at['read_from']}'s configs scored there than on those suites "
        f"({quality(float(row['measured_quality_mean']))} on its own cases → "
        f"{quality(float(at['mean']))})"
    )


def on_its_cases(model: SelectorModel, task_type: str, hand: Any, chosen: Any) -> str:
    """What the pick scored on the by-hand choice's cases, where the two were run on
    different suites (their means are over different cases); else ""."""
    missing = missing_suites(model, task_type)
    if missing.get(str(hand), ()) == missing.get(str(chosen), ()):
        return ""
    mean, n = shared_case_mean(model, task_type, str(chosen), str(hand))
    if not n:
        return ""
    return (
        f", over other suites than the pick's: on those {n} cases the pick scored {quality(mean)}"
    )


def assumptions_note(checks: list[Any], task_type: str) -> str | None:
    """Which pooling assumptions the estimates used, tested on ``task_type``'s measured
    configs, and which were dropped because the data disagree."""
    if not checks:
        return None
    used = [c for c in checks if c.holds]
    dropped = [c for c in checks if not c.holds]
    kinds: dict[str, int] = {}
    for c in used:
        kind = {"temperature": "temperature", "template": "templates", "num_ctx": "num_ctx"}
        name = "latency over sampling" if c.b == "sampling" else f"{kind.get(c.b, c.b)} pooled"
        kinds[name] = kinds.get(name, 0) + 1
    text = (
        f"assumptions tested on the configs measured on {task_type}: used where the data "
        "agree (" + ", ".join(f"{k} ×{n}" for k, n in kinds.items()) + ")"
    )
    if dropped:
        text += "; dropped where they disagree: " + "; ".join(c.describe() for c in dropped)
    return text + "; latency tails: each model's measured p95 / median (not assumed log-normal)"


def only_elsewhere(model: SelectorModel, choice: Option, task_type: str) -> str | None:
    """For a pick never run on ``task_type`` but run on others: that its figures are the
    model's, learnt in part from those other task types' runs."""
    if choice.basis != "predicted":
        return None
    runs = model.evidence.loc[model.evidence["config_hash"] == choice.config_hash, "task_type"]
    others = sorted(set(runs) - {task_type})
    if not others:
        return None
    return (
        f"{choice.label} was never run on {task_type}, only on {', '.join(others)}: its "
        f"{task_type} figures are the model's prediction, learnt in part from those runs "
        "on other task types"
    )


def unplaced_latency_note(model: SelectorModel, row: pd.Series, choice: Option) -> str | None:
    """For a pick whose p95 interval passes ``WIDE`` times its estimate
    (:func:`selection.recommendation.latency_interval` shows it as unknown beyond): the
    interval's figures and why it is so wide. Such an interval is the model's calibrated
    error: its trees' spread plus a floor, times the factor that fitted the errors of
    cross-validation by suite, which a model run on one suite alone (its configs
    predicted from other models' when that suite is held out) can make tens of times
    the spread. A limit's margin for a config never run on the task type is its trees'
    spread alone (the calibrated error as a margin cost 5–8 points of hits in the
    selector benchmark: docs/selector.md), so the limit's figure says how much the trees
    disagree on it, not how far they may all be off."""
    estimate = choice.latency_p95_s
    if estimate is None or not wide_interval(estimate) or "latency_p95" not in model.targets:
        return None
    scale = model.targets["latency_p95"].scale
    text = (
        f"its p95 latency is unknown beyond {WIDE:g}× its estimate: the model's 90% interval "
        f"for it is {significant(estimate.low)}–{significant(estimate.high)} s, its trees' "
        f"spread (plus a floor) times {scale:.3g}, the factor that fitted their errors on "
        "suites held out in training (a model run on one suite alone is then predicted "
        "from other models)"
    )
    if bool(row.get("measured", False)) or choice.latency_p95_checked_s is None:
        return text
    return (
        f"{text}; the latency limit's figure, p95 {significant(choice.latency_p95_checked_s)} s, "
        "rests on how much its trees agree, not on that interval: measure it to know its "
        "latency"
    )


def simulated_training_note(model: SelectorModel, row: pd.Series, task_type: str) -> str | None:
    """For a real pick: how much of the selector's training was SIMULATED, when any
    was. Its own measurements are real, but the prediction part of its estimate was
    learnt in part from simulated results (a newcomer's real model got 83% of its
    estimate from a selector trained mostly on the simulated demo, unsaid). A pick never
    measured on ``task_type`` is all prediction: its measurement weight is that of the
    multilevel fit's reading of it, itself a prediction (a newcomer read "the 0% of its
    quality estimate that is prediction" of such a pick)."""
    evidence = model.evidence
    total = float(evidence["n"].sum()) if "n" in evidence else 0.0
    simulated = float(evidence["n_simulated"].sum()) if "n_simulated" in evidence else 0.0
    if total <= 0 or simulated <= 0:
        return None
    weight = float(row.get("quality_weight", np.nan))
    if not bool(row.get("measured", False)):
        part = f"its figures, all prediction (never run on {task_type}), come"
    elif not np.isfinite(weight):
        part = "its predicted figures come"
    elif (share := 100 * (1 - weight)) < 0.5:
        part = "its quality estimate is its measurement, but its predicted figures come"
    else:
        part = f"the {share:.0f}% of its quality estimate that is prediction comes"
    return (
        f"{part} from a selector trained on {100 * simulated / total:.0f}% SIMULATED "
        "generations (`evalflow retrain` without --include-simulated learns from real runs "
        "only)"
    )


def simulated_left_out_note(labels: list[str], task_type: str) -> str:
    """Which simulated configs :func:`selection._candidates.real_only` left out."""
    shown = ", ".join(labels[:MAX_LISTED]) + (
        f" and {len(labels) - MAX_LISTED} more" if len(labels) > MAX_LISTED else ""
    )
    return (
        f"{len(labels)} SIMULATED configuration(s) left out ({shown}): {task_type} has "
        "configurations measured on real runs, and no host serves the simulated backend's models; "
        "the selector still learnt from them. The CLI has no option to rank them too; "
        f'Python can: selection.recommend("{task_type}", candidates=[their labels or hashes])'
    )


def set_aside_note(model: SelectorModel, twins: dict[str, str], task_type: str) -> str:
    """Which measured configs :func:`selection._choice.set_aside` left out, each with the
    twin kept in its place (a template edited under its name keeps the label: the hash
    and the words "another text" tell them apart)."""
    configs = model.configs
    named = []
    for left, kept in list(twins.items())[:MAX_LISTED]:
        row, twin = configs.loc[left], configs.loc[kept]
        text = row["template_text"] != twin["template_text"]
        other = f", another text of template {row['template']!r}" if text else ""
        named.append(f"{params_label(row)} ({left}{other}) for {kept}")
    more = f"; and {len(twins) - MAX_LISTED} more" if len(twins) > MAX_LISTED else ""
    return (
        f"{len(twins)} measured configuration(s) set aside for the twin with the most "
        f"{task_type} generations measured: {'; '.join(named)}{more}. The selector cannot "
        "tell them apart (they differ only in template text or seed: one prediction), so "
        "only the twin is ranked; Python ranks them too: "
        f'selection.recommend("{task_type}", candidates=[their hashes])'
    )


def metric_note(
    model: SelectorModel, seen: pd.DataFrame, base: dict[str, Any], task_type: str
) -> str | None:
    """:func:`quality_metric_note` of an answer, feasible or not."""
    return quality_metric_note(
        base["quality_metrics"],
        task_type,
        retrain_command(model),
        configs_under_several(seen, task_type),
    )


def quality_metric_note(
    configs: dict[str, int],
    task_type: str,
    retrain: str = "evalflow retrain",
    counted_twice: tuple[int, int] = (0, 0),
) -> str | None:
    """Which metric "quality" is on ``task_type``: each experiment's first metric that
    can stand for quality (:mod:`selection.quality`), so two experiments may put
    different metrics on one scale; said, and warned of where they did, for the configs
    the answer considers (``configs``: :attr:`Recommendation.quality_metrics`), with the
    ``retrain`` command that learns from the data again; ``counted_twice``: the configs
    in all and those counted under several metrics (``configs_under_several``), said
    where counts add up past the configs. None where the training data did not say
    (selectors trained before the metric was kept)."""
    if not configs:
        return None
    if len(configs) == 1:
        metric = next(iter(configs))
        return f"quality is {metric}, the first metric of the {task_type} runs" + per_case_note(
            metric
        )
    counted = ", ".join(f"{name} ({n} config{'s' * (n != 1)})" for name, n in configs.items())
    total, several = counted_twice
    if several:
        under = "both" if len(configs) == 2 else "more than one"
        counted += f", of {total} configs in all ({several} measured under {under})"
    return (
        f"quality on {task_type} mixes metrics, each run's first: {counted}; their figures "
        "are ranked as if on one scale, which they are not: put one first in every "
        f"{task_type} experiment, `evalflow rescore EXPERIMENT --first {next(iter(configs))}` "
        f"for each (`evalflow experiments` lists them), then `{retrain}`"
    )


def selection_note(row: pd.Series, candidates: int) -> str:
    """Which estimate the pick is judged by: corrected for selection among the task
    type's candidates, or, with too few of them, the combined estimate as it is."""
    if not bool(row.get("selection_corrected", False)):
        return (
            f"estimates not corrected for selection: {candidates} "
            f"candidate{' is' if candidates == 1 else 's are'} too few "
            f"(at least {MIN_CANDIDATES}) to estimate how their true qualities spread; the "
            "pick is judged by its measurement combined with the prediction"
        )
    before, after = float(row["quality_uncorrected"]), float(row["quality"])
    why = (
        "so the best of many is not credited its luck"
        if after <= before
        else "its own figure is noisy, and candidates estimated like it are, taken together, "
        "better than it measured"
    )
    return (
        f"quality estimate corrected for selection among {candidates} candidates "
        f"({quality(before)} → {quality(after)}): read against how the candidates' "
        f"estimates spread (empirical Bayes); {why}"
    )


def weight_note(row: pd.Series) -> str | None:
    """Which error of the model set the measurement's share of the quality estimate:
    its error for this config (:func:`_model_error`), or its check against the measured
    candidates (:func:`selection.shrinkage.checked_error`; a thin model's own:
    :func:`selection.shrinkage.thin_model_check`) where that is larger; None for a pick
    without measurements."""
    if not bool(row.get("measured", False)) or "quality_check_sd" not in row:
        return None
    model_sd, check_sd = float(row["quality_model_sd"]), float(row["quality_check_sd"])
    k, share = int(row["quality_check_n"]), 100 * row["quality_weight"]
    se = quality(float(row.get("quality_measurement_sd", math.nan)))
    of_model = " of its model" if bool(row.get("quality_check_of_model", False)) else ""
    if check_sd > model_sd:
        return (
            f"the measurement (standard error {se}) has {share:.0f}% of the quality "
            f"estimate: the model's weight follows its check against the {k} measured "
            f"candidates{of_model}, whose predictions without their own rows miss them by up to "
            f"{quality(check_sd)} ({100 * CHECK_CONFIDENCE:.0f}% bound), not "
            f"{_model_error(model_sd)}"
        )
    check = (
        f"up to {quality(check_sd)}"
        if check_sd > 0
        else "their predictions without their own rows miss them by no more than their "
        "measurements' noise"
    )
    return (
        f"the measurement (standard error {se}) has {share:.0f}% of the quality "
        f"estimate: the model's weight follows {_model_error(model_sd)}, which its check "
        f"against the {k} measured candidates{of_model} does not exceed ({check})"
    )


def _model_error(sd: float) -> str:
    """The model's error for one config as the weight note names it: the spread of its
    trees' predictions for the config times the factor cross-validation calibrated that
    spread by, a standard deviation (0–1 scale), not `evalflow retrain`'s quality MAE
    (the mean miss over held-out configs). Where the full ensemble disagrees on a config
    far more than the cross-validation folds' did, it passes the whole scale: a newcomer
    read "its cross-validated error (151.0 points)" beside retrain's "quality MAE 48.36
    points"."""
    said = (
        f"its error for this config (standard deviation {quality(sd)}: the spread of "
        "its trees' predictions for it, scaled as cross-validation calibrated them; not "
        "`evalflow retrain`'s quality MAE, the mean miss over held-out configs"
    )
    if sd > 1:
        said += "; wider than the whole 0–1 scale, the model says nothing of this config's quality"
    return said + ")"


def thin_data_note(hand: pd.Series, row: pd.Series, thin: str, shared: str = "") -> str:
    """Why the pick stands although the by-hand choice ``hand`` was measured above it;
    ``shared``: what the pick scored on its cases where they were run on other suites."""
    se = hand.get("measured_quality_se")
    shown = f" ± {quality(se)}" if se is not None and np.isfinite(se) else ""
    return (
        f"{params_label(hand)} was measured higher ({quality(hand['measured_quality_mean'])}"
        f"{shown} on {int(hand['measured_n_cases'])} cases) than this pick is estimated "
        f"({quality(row['quality'])}){shared}; {thin}, so the pick is the model's: the best "
        "of many means over so few cases is mostly the luckiest"
    )


def guess_note(table: pd.DataFrame, guess: pd.Series, pick: pd.Series, task_type: str) -> str:
    """That the model's pick ``guess`` is a guess (:func:`uninformed`), its siblings
    measured on ``task_type`` (same model and template: they differ in settings only) with
    what they scored, and whether the measured ``pick`` replaced it."""
    same = (table["model"] == guess["model"]) & (table["template"] == guess["template"])
    siblings = table[same & table["measured"].astype(bool) & (table.index != guess.name)]
    scored = [
        f"{params_label(row)} scored {quality(row['measured_quality_mean'])} on "
        f"{int(row['measured_n_cases'])} cases"
        for _, row in siblings.iterrows()
    ]
    named = f"; its measured siblings (same model and template): {', '.join(scored)}"
    cases = f"never measured on {task_type}"
    if guess["measured"]:
        cases = f"measured on {int(guess['measured_n_cases'])} cases only"
    text = (
        f"{params_label(guess)} is the model's guess: predicted "
        f"{quality_interval(guess['quality'], 0.0, 1.0)}, {cases}, an "
        f"interval that covers the whole scale{named if scored else ''}"
    )
    if pick.name == guess.name:
        return text + "; no measured configuration meets the limits, so the pick is that guess"
    return (
        text + f"; a model that cannot place it does not outrank a measurement, so the pick "
        f"is the best-estimated measured config, {params_label(pick)} "
        f"({quality(pick['quality'])}, measured on {int(pick['measured_n_cases'])} cases); "
        "measure the guess to learn more"
    )
