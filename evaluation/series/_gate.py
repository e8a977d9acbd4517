"""The CI gate: a candidate run against a baseline, one verdict per config × metric,
Holm over all of them at ``alpha`` (so a null comparison fails at most ``alpha`` of the
time, whatever the number of configs and metrics).

Quality metrics: the paired test evalflow uses everywhere (``compare_pair``: clustered
paired t where cases share groups, else exact McNemar for binary scores, paired t or
Wilcoxon otherwise), two-sided, failing only in
the metric's worse direction. Operational streams, paired on shared cases where they
can be: ``failure_rate`` (per case failed share, an exact one-sided sign test on the
cases whose share differs), ``tokens_per_s`` (per
case log tokens/s, paired mean) and ``latency_p95`` (log ratio of the p95s with the
order-statistic errors of both), one-sided; both speed checks allow each run's host a
day-to-day spread of 5% (``LATENCY_FLOOR``) and need ``LATENCY_MIN_N`` figures (latencies
in each run, paired cases), alike: with fewer they are not tested. ``skip`` leaves named
checks out (e.g. the speed checks on a shared CI runner, whose load is not the
candidate's doing).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from math import comb, erfc, exp, sqrt

import numpy as np
import pandas as pd
from sqlmodel import Session

from evaluation.errors import EvalError, MetricError
from evaluation.labels import distinguishing_labels, settings_parts
from evaluation.metrics import NOT_QUALITY, get_metric
from evaluation.series._by_model import pair_by_model, why_not_by_model
from evaluation.series._events import events_between
from evaluation.series._series import point_of
from evaluation.series._skip import check_skip
from evaluation.series._watch import LATENCY_FLOOR, LATENCY_MIN_N, log_quantile, paired_change
from evaluation.spec import DEFAULT_NUM_PREDICT
from evaluation.statistics import adjust_p_values, compare_pair
from evaluation.storage.models import Experiment
from evaluation.storage.repository import (
    experiment_configs,
    generations_frame,
    get_experiment,
    scores_frame,
)
from evaluation.storage.runs import experiment_status, finish_first
from evaluation.wording import counted


class GateInputError(EvalError):
    """The gate cannot compare what it was given (exit 2, nothing written)."""


@dataclass(frozen=True)
class GateCase:
    """One config × metric: baseline and candidate values, the change (candidate −
    baseline; a ratio − 1 for latency and tokens/s), the test, its Holm-adjusted p."""

    config: str
    label: str
    metric: str
    n: int
    baseline: float | None
    candidate: float | None
    change: float | None
    test: str
    p: float | None
    p_adjusted: float | None
    worse: bool
    regressed: bool
    detectable: float | None = None
    """For a quality metric on [0, 1]: the smallest drop this gate catches 4 times in 5
    (answers drawn afresh, Holm's first step over the tested checks); None elsewhere,
    and where the baseline is at the metric's worst end (``at_floor``)."""
    at_floor: bool = False
    """The baseline's value is the worst its metric's scale has (exact_match 0 on every
    case): the candidate cannot be worse, so this check says nothing. It stays in Holm's
    count (its p moves no other check's down)."""
    baseline_cases: int = 0
    """The cases the baseline scored on this check (``n``: those both runs share): fewer
    shared ones (a smoke candidate's 3 of 36), and ``baseline`` is its figure on those."""


BASELINE_UNSCORED = "not scored in the baseline"
"""The test of a quality check whose baseline has no score for its metric and config
(its other checks scored): not tested, and the verdict says so."""
NOT_IN_BASELINE = "not in the baseline"
"""The test of a quality check on a metric the candidate scored and the baseline's run
never did (not one of its metrics: added to the spec since): not tested, and said so."""
NOT_IN_CANDIDATE = "not in the candidate"
"""The test of a quality check on a metric the baseline scored and the candidate's run
never did (dropped from the spec since): not tested, and said so."""
STATED_DROP = 0.10  # the gate says when its cases cannot catch a drop this large
UNDERPOWERED_EXIT = 3  # --require-power: passed, but a quality check cannot catch the drop


@dataclass(frozen=True)
class FailedRequests:
    """A config whose candidate had failed requests (timeouts, errors): how many of the
    cases each run ran had a failed generation. Quality checks compare scored cases
    only, so these cases are out of them; said with the verdict, passed or failed."""

    label: str
    failed: int
    cases: int
    base_failed: int
    base_cases: int


@dataclass(frozen=True)
class GateResult:
    """The verdicts, and ``changes``: what the two runs did not run alike (a model
    digest, a server version, the suite; ``_events``), said with the verdicts, never
    compared silently."""

    candidate: str
    baseline: str
    alpha: float
    cases: tuple[GateCase, ...]
    changes: tuple[str, ...] = ()
    unmatched: tuple[tuple[str, str], ...] = ()
    """The configs only one of the runs has, as (label, which run has it): not compared,
    and said so."""
    skipped: tuple[str, ...] = ()
    """The checks left out on request (``--skip``): not run, and said so."""
    by_label: tuple[tuple[str, str], ...] = ()
    """The configs compared by their label because their hashes differ, as (label, what
    differs: e.g. "template text"): a pull request's prompt edit, compared and said so."""
    shared: str = ""
    """What every config of both runs shares, left out of their labels (as under `show`'s
    leaderboard): "t=0" alone says nothing of the model."""
    failed: tuple[FailedRequests, ...] = ()
    """The compared configs whose candidate had failed requests."""
    require_drop: float | None = None
    """``--require-power DROP``: a pass whose quality checks cannot catch a drop of DROP
    4 times in 5 exits ``UNDERPOWERED_EXIT``, not 0."""
    max_failures: float | None = None
    """``--max-failures RATE``: the gate fails (exit 1) where a compared config's
    candidate had failed requests on more than RATE of its cases, whatever the tests say
    (at a few cases ``failure_rate`` cannot tell 2 failed of 6 from noise)."""
    simulated: tuple[str, ...] = ()
    """The runs (candidate, baseline) whose results come from the simulated backend: the
    verdict, its JUnit and its summary say so (a green gate of simulated runs read as a
    real one in CI)."""
    n_key: str = ""
    """What "n=" in the labels is, where they show it (``settings_parts``): one config's
    label, shown whole, shares nothing with another but shows its num_predict."""
    by_model: tuple[str, ...] = ()
    """The configs matched neither by hash nor by label that are the one config of their
    model in each run, compared all the same, as "baseline's label -> candidate's" (a
    value its label shows edited: ``n=32 -> n=3``), whatever the other models' configs."""

    @property
    def stated_drop(self) -> float:
        """The drop the power note speaks of: ``require_drop``, else STATED_DROP."""
        return STATED_DROP if self.require_drop is None else self.require_drop

    @property
    def regressed(self) -> tuple[GateCase, ...]:
        return tuple(c for c in self.cases if c.regressed)

    @property
    def untested(self) -> tuple[GateCase, ...]:
        """The checks without a p (no data or too little): not passes, and said so."""
        return tuple(c for c in self.cases if c.p_adjusted is None)

    @property
    def unscored(self) -> tuple[GateCase, ...]:
        """The quality checks not tested because the baseline has no score for their
        metric and config (its other checks scored: ``_require_baseline_scores``), or
        never scored their metric (``NOT_IN_BASELINE``), or the candidate never did
        (``NOT_IN_CANDIDATE``)."""
        unscored = (BASELINE_UNSCORED, NOT_IN_BASELINE, NOT_IN_CANDIDATE)
        return tuple(c for c in self.cases if c.test in unscored)

    @property
    def not_in_baseline(self) -> tuple[GateCase, ...]:
        """The quality checks of a metric the baseline's run never scored."""
        return tuple(c for c in self.cases if c.test == NOT_IN_BASELINE)

    @property
    def not_in_candidate(self) -> tuple[GateCase, ...]:
        """The quality checks of a metric the candidate's run never scored."""
        return tuple(c for c in self.cases if c.test == NOT_IN_CANDIDATE)

    @property
    def underpowered(self) -> GateCase | None:
        """The quality check least able to catch a drop of ``stated_drop``, when one cannot."""
        drop = self.stated_drop
        weak = [c for c in self.cases if c.detectable is not None and c.detectable > drop]
        return max(weak, key=lambda c: c.detectable or 0.0) if weak else None

    @property
    def too_many_failed(self) -> tuple[FailedRequests, ...]:
        """The configs whose candidate's failed share exceeds ``max_failures``."""
        if self.max_failures is None:
            return ()
        return tuple(f for f in self.failed if f.failed > self.max_failures * f.cases)

    @property
    def blind(self) -> tuple[GateCase, ...]:
        """With ``--require-power``: the quality checks, where none of them can be judged
        for power (each baseline at its metric's worst value, or not tested, or not on a
        0–1 scale): a pass that says nothing of the drop asked. Empty otherwise."""
        if self.require_drop is None:
            return ()
        quality = [c for c in self.cases if c.metric not in OPERATIONAL]
        if any(c.detectable is not None for c in quality):
            return ()
        return tuple(quality)

    @property
    def too_weak(self) -> bool:
        """Nothing regressed, but ``--require-power`` was asked and a quality check cannot
        catch its drop 4 times in 5, or none can be judged for it (``blind``)."""
        asked = self.require_drop is not None
        return asked and not self.failing and (self.underpowered is not None or bool(self.blind))

    @property
    def failing(self) -> bool:
        """A check regressed, or requests failed beyond ``max_failures``: exit 1."""
        return bool(self.regressed or self.too_many_failed)

    @property
    def exit_code(self) -> int:
        return 1 if self.failing else UNDERPOWERED_EXIT if self.too_weak else 0


OPERATIONAL = ("failure_rate", "tokens_per_s", "latency_p95")


def gate(
    session: Session,
    candidate: str,
    baseline: str,
    alpha: float = 0.05,
    skip: Collection[str] = (),
    require_drop: float | None = None,
    max_failures: float | None = None,
) -> GateResult:
    """Compare ``candidate`` with ``baseline`` (GateInputError when they cannot be),
    leaving out the checks named in ``skip`` (quality metrics or OPERATIONAL ones);
    ``require_drop``, ``max_failures``: see ``GateResult``."""
    if candidate == baseline:
        raise GateInputError(
            f"the candidate and the baseline are the same experiment ({candidate!r}): "
            "a run cannot regress against itself; name another --baseline"
        )
    if not 0 < alpha < 1:
        raise GateInputError(f"--alpha must lie in (0, 1), got {alpha}")
    runs = {name: get_experiment(session, name) for name in (candidate, baseline)}
    _require_completed(session, "candidate", runs[candidate])
    _require_completed(session, "baseline", runs[baseline])
    frames = {
        name: (scores_frame(session, e.id), generations_frame(session, e.id))
        for name, e in runs.items()
    }
    for name, (_, generations) in frames.items():
        if generations.empty:
            raise GateInputError(f"experiment {name!r} has no generations: nothing to compare")
    cand_scores, cand_gens = frames[candidate]
    base_scores, base_gens = frames[baseline]
    if not set(cand_gens["case_uid"]) & set(base_gens["case_uid"]):
        raise GateInputError(
            f"{candidate!r} and {baseline!r} share no cases (suites "
            f"{runs[candidate].suite!r} and {runs[baseline].suite!r}): a paired comparison "
            "needs the same cases"
        )
    configs = experiment_configs(session, runs[candidate].id)
    labels = dict(zip(configs["hash"], configs["label"], strict=True))
    base_configs = experiment_configs(session, runs[baseline].id)
    base_labels = dict(zip(base_configs["hash"], base_configs["label"], strict=True))
    cand_ran, base_ran = set(cand_gens["config_hash"]), set(base_gens["config_hash"])
    pairs = _pair_by_label(configs, base_configs, cand_ran, base_ran)
    points = {name: point_of(session, run) for name, run in runs.items()}
    lone = pair_by_model(points[baseline], points[candidate], cand_ran, base_ran, pairs)
    to_candidate = {b: c for c, (b, _) in pairs.items()} | {b: c for c, b in lone.items()}
    shown, base_shown, every = _short_labels(labels, base_labels)  # refusals: full labels
    if to_candidate:  # the baseline's config is read under the candidate's hash it pairs with
        base_scores = base_scores.assign(config=base_scores["config"].replace(to_candidate))
        base_gens = base_gens.assign(config_hash=base_gens["config_hash"].replace(to_candidate))
        base_ran = set(base_gens["config_hash"])
    shared = [c for c in labels if c in base_ran]
    unmatched = [
        (shown[c], f"only in the candidate {candidate!r}") for c in labels if c not in base_ran
    ] + [
        (base_shown[c], f"only in the baseline {baseline!r}")
        for c in base_labels
        if c not in cand_ran and c not in labels and c not in to_candidate
    ]
    if not shared:
        why = why_not_by_model(points[baseline], points[candidate], base_configs, configs)
        raise GateInputError(
            f"{candidate!r} and {baseline!r} have no config in common: "
            + _no_common(candidate, cand_ran, labels, baseline, base_ran, base_labels)
            + (f"; not paired by model: {why}" if why else "")
        )
    rows: list[
        tuple[str, str, int, float | None, float | None, float | None, str, float | None, bool]
    ] = []
    cand_metrics = runs[candidate].metrics
    scored = _quality(cand_metrics)
    metrics = [m for m in scored if m.name in runs[baseline].metrics]
    absent = [m.name for m in scored if m.name not in runs[baseline].metrics]
    dropped = [m.name for m in _quality(runs[baseline].metrics) if m.name not in cand_metrics]
    checks = [*[m.name for m in scored], *dropped, *OPERATIONAL]
    check_skip(skip, checks, GateInputError, noun="check", of="this gate", nothing="gated")
    _check_power_skip(require_drop, skip, [m.name for m in metrics])
    metrics = [m for m in metrics if m.name not in skip]
    absent = [name for name in absent if name not in skip]
    dropped = [name for name in dropped if name not in skip]
    _check_power_scale(require_drop, metrics)
    operational = [
        check
        for name, check in zip(
            OPERATIONAL, (_failure_case, _throughput_case, _latency_case), strict=True
        )
        if name not in skip
    ]
    base_cases = {  # each quality check's cases in the baseline, shared or not
        (config, metric): n
        for (config, metric), n in base_scores.groupby(["config", "metric"])["case_id"]
        .nunique()
        .items()
    }
    for config in shared:
        for metric in metrics:
            _require_scores(cand_scores, candidate, config, labels[config], metric.name)
    _require_baseline_scores(base_scores, baseline, shared, [m.name for m in metrics])
    for config in shared:
        rows.extend(_quality_case(cand_scores, base_scores, config, metric) for metric in metrics)
        rows.extend(
            _untested_quality(cand_scores, config, name, NOT_IN_BASELINE) for name in absent
        )
        rows.extend(
            _untested_quality(base_scores, config, name, NOT_IN_CANDIDATE) for name in dropped
        )
        rows.extend(check(cand_gens, base_gens, config) for check in operational)
    ran = (set(cand_gens["case_uid"]), set(base_gens["case_uid"]))
    quality_names = [*[m.name for m in metrics], *absent]
    _require_a_tested_quality_check(rows, quality_names, (candidate, baseline), ran)
    tested = [r for r in rows if r[7] is not None]
    adjusted_list, _ = (
        adjust_p_values([r[7] for r in tested], alpha, "holm") if tested else ([], [])
    )
    adjusted = dict(zip([id(r) for r in tested], adjusted_list, strict=True))
    cases = []
    quality = {m.name: m for m in metrics}
    for r in rows:
        config, metric, n, base, cand, change, test, p, worse = r
        p_adj = adjusted.get(id(r))
        floor = metric in quality and _at_floor(base, quality[metric])
        in_baseline = base_cases.get((config, metric), n)
        detectable = (
            _detectable(base, n, alpha / max(len(tested), 1))
            if metric in quality and not floor and _on_a_share_scale(quality[metric])
            else None
        )
        cases.append(
            GateCase(
                config=config,
                label=shown.get(config, config),
                metric=metric,
                n=n,
                baseline=base,
                candidate=cand,
                change=change,
                test=test,
                p=p,
                p_adjusted=p_adj,
                worse=worse,
                regressed=bool(worse and p_adj is not None and p_adj < alpha),
                detectable=detectable,
                at_floor=floor,
                baseline_cases=in_baseline,
            )
        )
    changes = events_between(points[baseline], points[candidate])
    return GateResult(
        candidate,
        baseline,
        alpha,
        tuple(cases),
        tuple(e.change for e in changes),
        tuple(unmatched),
        tuple(name for name in checks if name in skip),
        tuple((shown[c], differs) for c, (_, differs) in pairs.items()),
        every[0],
        _failed_requests(cand_gens, base_gens, shared, shown),
        require_drop,
        max_failures,
        tuple(name for name, run in runs.items() if run.simulated),
        n_key=every[1],
        by_model=tuple(f"{base_shown[b]} -> {shown[c]}" for c, b in lone.items()),
    )


def _failed_requests(
    cand: pd.DataFrame, base: pd.DataFrame, shared: list[str], shown: dict[str, str]
) -> tuple[FailedRequests, ...]:
    """Per compared config whose candidate had a failed generation: the cases with one,
    of the cases run, in both runs."""

    def counts(gens: pd.DataFrame, config: str) -> tuple[int, int]:
        g = gens[gens["config_hash"] == config]
        failed = (g["status"] != "ok").groupby(g["case_id"]).any()
        return int(failed.sum()), len(failed)

    out = []
    for config in shared:
        failed, cases = counts(cand, config)
        if failed:
            out.append(FailedRequests(shown[config], failed, cases, *counts(base, config)))
    return tuple(out)


def _short_labels(
    labels: dict[str, str], base_labels: dict[str, str]
) -> tuple[dict, dict, tuple[str, str]]:
    """Both runs' hash -> label as `show` names the configs (``distinguishing_labels``
    over both runs' labels), and what they leave out and what "n=" is, as under `show`'s
    leaderboard (``settings_parts``): the gate's lines and JUnit classnames read as
    `show`'s; a refusal, a line alone, names them in full."""
    every = list(dict.fromkeys([*labels.values(), *base_labels.values()]))
    short = distinguishing_labels(every)
    return (
        {h: short[x] for h, x in labels.items()},
        {h: short[x] for h, x in base_labels.items()},
        settings_parts(every, DEFAULT_NUM_PREDICT),
    )


def _require_completed(session: Session, role: str, run: Experiment) -> None:
    """Refuse a candidate or baseline that is not completed (running, interrupted,
    crashed...): an unscored baseline left every quality check untested, and the gate
    passed (recheck2-4: a cancelled baseline job turned CI green)."""
    state = experiment_status(session, run)
    if state.status == "completed":
        return
    why = f" ({state.reason})" if state.reason else ""
    other = ", or name another --baseline" if role == "baseline" else ""
    can = "pass the gate" if role == "candidate" else "be a baseline"
    raise GateInputError(
        f"{role} {run.name!r} is {state.status}{why}: {finish_first(state)}{other}; only a "
        f"completed, scored run can {can}"
    )


def _pair_by_label(
    configs: pd.DataFrame, base_configs: pd.DataFrame, cand_ran: set[str], base_ran: set[str]
) -> dict[str, tuple[str, str]]:
    """The candidate's configs that no baseline config shares a hash with, paired with the
    baseline's config of the same label (one on each side, itself unmatched): candidate
    hash → (baseline hash, what differs). A prompt edit changes every hash it touches and
    no label: what the pull request tests, so compared, and said so."""
    cand = configs[configs["hash"].isin(cand_ran - base_ran)]
    base = base_configs[base_configs["hash"].isin(base_ran - cand_ran)]
    once = set(cand["label"].drop_duplicates(keep=False)) & set(
        base["label"].drop_duplicates(keep=False)
    )
    by_label = {row["label"]: row for _, row in base.iterrows() if row["label"] in once}
    pairs = {}
    for _, row in cand[cand["label"].isin(once)].iterrows():
        other = by_label[row["label"]]
        columns = [k for k in row.index if k not in ("hash", "label") and _differ(row[k], other[k])]
        differs = ", ".join(k.replace("_", " ") for k in columns) or "a setting not stored"
        pairs[row["hash"]] = (other["hash"], differs)
    return pairs


def _differ(a: object, b: object) -> bool:
    return not (pd.isna(a) and pd.isna(b)) and a != b


def _check_power_skip(
    require_drop: float | None, skip: Collection[str], quality: list[str]
) -> None:
    """``--require-power`` asks whether a quality check can catch a drop: with every
    quality check left out none can, on any suite, so the two options contradict each
    other (as leaving every check out does) and the gate would pass what it never saw."""
    if require_drop is None or not quality or not set(quality) <= set(skip):
        return
    raise GateInputError(
        f"--require-power {require_drop:g} with --skip {','.join(skip)}: no quality check is "
        f"left to see a drop of {require_drop:g} (the quality checks of this gate: "
        f"{', '.join(quality)}); keep one, or leave --require-power out"
    )


def _on_a_share_scale(metric) -> bool:
    """Whether a drop of a 0–1 metric (the power note's, ``--require-power``'s) means
    anything on ``metric``: its declared scale lies within [0, 1], or it declares none
    (its baseline's value then decides, ``_detectable``). chrF's 0.8 is no share."""
    return metric.bounds is None or (metric.bounds[0] >= 0 and metric.bounds[1] <= 1)


def _check_power_scale(require_drop: float | None, quality: list) -> None:
    """``--require-power DROP`` asks of a 0–1 metric whether a drop of DROP is caught:
    where the gate has no quality check (no quality metric both runs scored), or none on
    that scale (chrF, BLEU: 0–100), no suite could satisfy it, as where every quality
    check is left out (``_check_power_skip``, which names ``--skip``: checked first)."""
    if require_drop is None or any(_on_a_share_scale(m) for m in quality):
        return
    if not quality:
        raise GateInputError(
            f"--require-power {require_drop:g}: this gate has no quality check to see a drop "
            f"of {require_drop:g} (no quality metric scored in both runs); leave "
            "--require-power out"
        )
    scales = ", ".join(f"{m.name} {m.bounds[0]:g}–{m.bounds[1]:g}" for m in quality)
    raise GateInputError(
        f"--require-power {require_drop:g} asks whether a drop of {require_drop:g} of a 0–1 "
        f"metric is caught, and no quality check of this gate is on a 0–1 scale ({scales}); "
        "leave --require-power out"
    )


def _quality(names: list[str]) -> list:
    """The quality metrics among ``names`` (the candidate's: a check each, where the
    baseline scored it too; ``NOT_IN_BASELINE`` where it did not)."""
    out = []
    for name in names:
        if name in NOT_QUALITY:
            continue
        try:
            out.append(get_metric(name))
        except MetricError:
            continue
    return out


def _require_scores(
    scores: pd.DataFrame, candidate: str, config: str, label: str, metric: str
) -> None:
    """A candidate without a score for a metric would pass that check untested."""
    part = scores[(scores["config"] == config) & (scores["metric"] == metric)]
    if not part["value"].notna().any():
        raise GateInputError(
            f"candidate {candidate!r} has no {metric} scores for {label}: score it first "
            f"(`evalflow rescore {candidate} --metrics {metric}`)"
        )


def _require_baseline_scores(
    scores: pd.DataFrame, baseline: str, shared: list[str], metrics: list[str]
) -> None:
    """A completed baseline without a score for any quality check of this gate (every
    one "not tested") passed the gate on no evidence (its operational checks alone):
    refused, as an unfinished baseline is. One scored metric is evidence: the others are
    not tested and said so (``BASELINE_UNSCORED``)."""
    part = scores[scores["config"].isin(shared) & scores["metric"].isin(metrics)]
    if not metrics or part["value"].notna().any():
        return
    named = ", ".join(metrics)
    raise GateInputError(
        f"baseline {baseline!r} is completed but has no scores for this gate's quality "
        f"checks ({named}): each would go untested, and no gate passes on no evidence; "
        "score it first "
        f"(`evalflow rescore {baseline} --metrics {','.join(metrics)}`), or name another "
        "--baseline"
    )


def _require_a_tested_quality_check(
    rows: list[tuple], metrics: list[str], names: tuple[str, str], ran: tuple[set, set]
) -> None:
    """A baseline scored, but not on the cases the candidate shares with it (or on one of
    them: a paired test needs 2), leaves every quality check untested, and the gate passed
    on its operational checks alone: refused, as a baseline with no score at all is
    (``_require_baseline_scores``). One tested quality check is evidence. Where every case
    the two runs share is scored in both, a rescore cannot help: too few are shared, and
    the advice is a baseline run on the candidate's cases (recheck-3: "both ran 1 cases",
    the runs' 18 and 19, and a rescore to do)."""
    quality = [r for r in rows if r[1] in metrics]
    if not quality or any(r[7] is not None for r in quality):
        return
    paired = {m: max(r[2] for r in quality if r[1] == m) for m in metrics}
    absent = {r[1] for r in quality if r[6] == NOT_IN_BASELINE}
    counts = ", ".join(
        f"{m} {n}" + (f" ({NOT_IN_BASELINE})" if m in absent else "") for m, n in paired.items()
    )
    (candidate, baseline), shared = names, len(ran[0] & ran[1])
    advice = (
        "run the baseline on the candidate's cases"
        if not absent and all(n >= shared for n in paired.values())
        else f"score the cases they share (`evalflow rescore {baseline} --metrics "
        f"{','.join(metrics)}`)"
    )
    raise GateInputError(
        f"{candidate!r} and {baseline!r} share {counted(shared, 'case')} (of the "
        f"{len(ran[0])} and {len(ran[1])} they ran), and too few of them are scored in both "
        f"for any quality check of this gate (cases scored in both: {counts}; a paired test "
        f"needs 2 of a config): each would go untested, and no gate passes on no evidence; "
        f"{advice}, or name another --baseline"
    )


def _untested_quality(scores: pd.DataFrame, config: str, metric: str, why: str) -> tuple:
    """A quality check one run has nothing for (``BASELINE_UNSCORED``,
    ``NOT_IN_BASELINE``, ``NOT_IN_CANDIDATE``): not tested, beside the other run's mean
    (``scores``)."""
    mine = _tagged(scores, config, metric, "run")["value"]
    value = float(mine.mean()) if mine.notna().any() else None
    if why == NOT_IN_CANDIDATE:
        return (config, metric, 0, value, None, None, why, None, False)
    return (config, metric, 0, None, value, None, why, None, False)


def _quality_case(cand: pd.DataFrame, base: pd.DataFrame, config: str, metric) -> tuple:
    baseline = _tagged(base, config, metric.name, "baseline")
    if not baseline["value"].notna().any():
        return _untested_quality(cand, config, metric.name, BASELINE_UNSCORED)
    frame = pd.concat(
        [
            _tagged(cand, config, metric.name, "candidate"),
            baseline,
        ],
        ignore_index=True,
    )
    result = compare_pair(frame, "candidate", "baseline", metric.name, score_type=metric.score_type)
    worse = result.diff is not None and (
        result.diff < 0 if metric.higher_is_better else result.diff > 0
    )
    p = None if result.p_value is None or np.isnan(result.p_value) else float(result.p_value)
    return (
        config,
        metric.name,
        result.n_used,
        result.mean_b,
        result.mean_a,
        result.diff,
        result.test,
        p,
        worse,
    )


def _tagged(scores: pd.DataFrame, config: str, metric: str, tag: str) -> pd.DataFrame:
    part = scores[(scores["config"] == config) & (scores["metric"] == metric)].copy()
    part["config"] = tag
    return part


def _per_case(gens: pd.DataFrame, config: str, column: str) -> pd.Series:
    g = gens[gens["config_hash"] == config]
    if column == "failed":
        return (g["status"] != "ok").groupby(g["case_id"]).mean().astype(float)
    ok = g[g["status"] == "ok"]
    values = pd.to_numeric(ok[column], errors="coerce")
    return np.log(values.where(values > 0)).groupby(ok["case_id"]).mean()


def _paired(cand: pd.Series, base: pd.Series) -> tuple[int, float, float]:
    cases = sorted(set(cand.index) & set(base.index))
    a = cand.reindex(cases).to_numpy(dtype=float)
    b = base.reindex(cases).to_numpy(dtype=float)
    mean, se2 = paired_change(a, b)
    return int(np.sum(np.isfinite(a - b))), float(mean), float(se2)


def _one_sided(theta: float, var: float) -> float | None:
    if not np.isfinite(theta) or not np.isfinite(var):
        return None
    if var <= 0:
        return 0.0 if theta > 0 else 1.0
    return 0.5 * erfc(theta / sqrt(var) / sqrt(2))


def _failure_case(cand: pd.DataFrame, base: pd.DataFrame, config: str) -> tuple:
    """An exact one-sided sign test on the paired cases whose failed share differs (exact
    McNemar for one sample a case): the paired z it replaces failed up to 8% of null runs
    at α = 0.05 (3 cases, failure rate 0.3 in both runs) and 6-7% at 10-40 cases."""
    c, b = _per_case(cand, config, "failed"), _per_case(base, config, "failed")
    n, change, _ = _paired(c, b)
    d = (c - b).dropna()
    more, fewer = int((d > 0).sum()), int((d < 0).sum())
    return (
        config,
        "failure_rate",
        n,
        float(b.mean()) if len(b) else None,
        float(c.mean()) if len(c) else None,
        change if np.isfinite(change) else None,
        f"exact sign test ({more} worse, {fewer} better)",
        _sign_test(more, fewer) if n >= 1 else None,
        bool(np.isfinite(change) and change > 0),
    )


def _sign_test(more: int, fewer: int) -> float:
    """P(at least ``more`` of ``more + fewer`` fair coin flips come up heads): the
    one-sided exact p that the candidate fails more often than the baseline."""
    m = more + fewer
    return sum(comb(m, k) for k in range(more, m + 1)) / 2**m if m else 1.0


def _throughput_case(cand: pd.DataFrame, base: pd.DataFrame, config: str) -> tuple:
    """Not tested on fewer than ``LATENCY_MIN_N`` paired cases, as the p95 on fewer
    latencies: the z on a variance estimated from 2 cases failed 9-16% of null runs at
    α = 0.05 (per-case spread 10-40%; 5-6% from 10 cases), and a gate with 2 paired
    cases failed on tokens/s alone."""
    c, b = _per_case(cand, config, "tokens_per_s"), _per_case(base, config, "tokens_per_s")
    n, change, se2 = _paired(c, b)
    finite = np.isfinite(change)
    test = "paired z (log)"
    if 0 < n < LATENCY_MIN_N:
        test += f"; not enough paired cases ({n} < {LATENCY_MIN_N})"
    elif n == 0:
        test += "; no case has a tokens/s figure in both runs (a server that reports none)"
    tested = finite and n >= LATENCY_MIN_N
    return (
        config,
        "tokens_per_s",
        n,
        float(np.exp(b.mean())) if b.notna().any() else None,
        float(np.exp(c.mean())) if c.notna().any() else None,
        exp(change) - 1 if finite else None,
        test,
        _one_sided(-change, se2 + 2 * LATENCY_FLOOR**2) if tested else None,
        bool(finite and change < 0),
    )


def _latency_case(cand: pd.DataFrame, base: pd.DataFrame, config: str) -> tuple:
    def latencies(gens: pd.DataFrame) -> np.ndarray:
        g = gens[(gens["config_hash"] == config) & (gens["status"] == "ok")]
        values = pd.to_numeric(g["latency_s"], errors="coerce").to_numpy(dtype=float)
        return values[np.isfinite(values) & (values > 0)]

    c, b = latencies(cand), latencies(base)
    (lc, vc), (lb, vb) = (log_quantile(x) if x.size else (np.nan, np.nan) for x in (c, b))
    theta = float(lc - lb)
    var = float(vc + vb + 2 * LATENCY_FLOOR**2)
    finite = np.isfinite(theta) and np.isfinite(var)
    fewest = int(min(c.size, b.size))
    test = "log p95 ratio z"
    if not finite and fewest < LATENCY_MIN_N:
        test += f"; a p95 needs {LATENCY_MIN_N} latencies in each run, got {fewest}"
    return (
        config,
        "latency_p95",
        fewest,
        float(np.quantile(b, 0.95)) if b.size else None,
        float(np.quantile(c, 0.95)) if c.size else None,
        exp(theta) - 1 if finite else None,
        test,
        _one_sided(theta, var) if finite else None,
        bool(finite and theta > 0),
    )


def _no_common(
    candidate: str,
    cand_ran: set[str],
    labels: dict[str, str],
    baseline: str,
    base_ran: set[str],
    base_labels: dict[str, str],
    shown: int = 5,
) -> str:
    """Which configs each run has; a label on both sides is told apart by its hash (a
    template's text or a setting changed under the same name)."""
    both = {labels.get(c, c) for c in cand_ran} & {base_labels.get(c, c) for c in base_ran}

    def named(hashes: set[str], names: dict[str, str]) -> str:
        items = sorted(
            f"{names.get(c, c)} ({c[:8]})" if names.get(c, c) in both else names.get(c, c)
            for c in hashes
        )
        more = f" and {len(items) - shown} more" if len(items) > shown else ""
        return ", ".join(items[:shown]) + more

    hint = "; the same label with another hash is another template text or setting" if both else ""
    return (
        f"{candidate!r} ran {named(cand_ran, labels)}; {baseline!r} ran "
        f"{named(base_ran, base_labels)}{hint}"
    )


def _at_floor(base: float | None, metric) -> bool:
    """Whether ``base`` is the worst value ``metric``'s scale has (its lower bound where
    higher is better, its upper bound where lower is): no change can be worse."""
    if base is None or metric.bounds is None:
        return False
    return base == (metric.bounds[0] if metric.higher_is_better else metric.bounds[1])


def _detectable(base: float | None, n: int, level: float, power: float = 0.8) -> float | None:
    """The drop a one-sided paired test at ``level`` catches with ``power`` on ``n``
    cases of a metric on [0, 1] whose baseline mean is ``base``, the answers drawn afresh
    (sd of a case's difference √(2p(1−p)), p kept in [0.05, 0.95]): a planning figure."""
    if base is None or not 0.0 <= base <= 1.0 or n < 1:
        return None
    from scipy.special import ndtri

    p = min(max(base, 0.05), 0.95)
    return float((ndtri(1 - level) + ndtri(power)) * sqrt(2 * p * (1 - p) / n))
