"""What a comparison is computed from: the experiments, the selected configs and the
baseline, the metrics compared, the long score rows and one row of facts per config, and
the digest of all of it. Plain pandas and SQL (no scipy.stats, no statsmodels): reading
the inputs and their digest is cheap, so a comparison whose stored digest still matches
is read back instead of computed again (``_stored``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from sqlmodel import Session

from evaluation.compare._code import statistics_code
from evaluation.compare._config_refs import (
    SelectedConfig,
    check_shared_cases,
    compared_configs,
    find_experiment,
    find_experiments,
    resolve_baseline,
)
from evaluation.errors import EvalError
from evaluation.labels import quoted
from evaluation.metrics import get_metric
from evaluation.run._scoring import TIMING_METRICS
from evaluation.spec._params import STUDIED_PARAMETERS
from evaluation.statistics._adjust import Adjustment
from evaluation.storage.comparisons import energy_per_generation, latency_scores
from evaluation.storage.coverage import experiment_coverage, named_cases, run_cases
from evaluation.storage.models import Experiment
from evaluation.storage.repository import aggregates_frame, experiment_configs, scores_frame

LATENCY = "latency_s"
SCORE_COLUMNS = ["config", "case_id", "sample_index", "group", "metric", "value"]


@dataclass(frozen=True)
class ComparisonInputs:
    """One comparison's inputs. ``metrics``: those with a scored generation, in order;
    ``notes``: what selecting them left out; ``baseline``: the selected config's name."""

    experiments: tuple[Experiment, ...]
    configs: tuple[SelectedConfig, ...]
    run_label: str
    title: str
    baseline: str | None
    metrics: tuple[str, ...]
    quality: str | None
    scores: pd.DataFrame
    facts: pd.DataFrame
    notes: tuple[str, ...]
    suite_cases: int = 0  # the suite's size: verdicts on means of part of it say so
    suite_part: str = "subset"  # and which part (Coverage.how): "first 10 of 36 cases"
    suite_named: int = 0  # the spec's `cases:` count (0: none), as the run's words say it
    # per config name, its cases run and those of them whose every generation failed, as
    # the run's heading counts them: "first 6 of 36 cases; 2 failed: figures over the 4
    # scored" (a verdict says a case run but not scored on its metric beside them)
    suite_run: dict[str, tuple[int, int]] = field(default_factory=dict)
    # per corpus metric, each config's corpus value: the figure the leaderboard ranks by,
    # which the comparison ranks and names them by too (``stored_figures``)
    headline: dict[str, dict[str, float]] = field(default_factory=dict)

    def digest(self, *, adjust: str, alpha: float, delta: float | None) -> str:
        """A hash of everything the comparison's result depends on, the code that
        computes it included: equal digests give the same comparison."""
        head = {
            "code": statistics_code(),
            "experiments": [(e.id, e.name, e.suite, e.simulated) for e in self.experiments],
            "configs": [asdict(c) for c in self.configs],
            "run_label": self.run_label,
            "title": self.title,
            "baseline": self.baseline,
            "metrics": [_metric_facts(m) for m in self.metrics],
            "notes": self.notes,
            "suite_cases": self.suite_cases,
            "suite_part": self.suite_part,
            "suite_named": self.suite_named,
            "suite_run": self.suite_run,
            "headline": self.headline,
            "test": {"adjust": adjust, "alpha": alpha, "delta": delta},
        }
        h = hashlib.sha256(json.dumps(head, default=str).encode())
        for frame in (self.scores, self.facts):  # row order included: it is an input too
            h.update(json.dumps([*frame.columns, *map(str, frame.dtypes)]).encode())
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return h.hexdigest()


def experiment_inputs(
    session: Session,
    experiment: str | int,
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    metrics: Sequence[str] | None = None,
) -> ComparisonInputs:
    """Every config of ``experiment`` (name or id) on its metrics and latency;
    ``baseline`` (a config hash or label) defaults to the spec's baseline. Another
    baseline or adjustment is named in the run label (:func:`_variant`): that comparison
    is stored beside the experiment's own, which export and the report read, not over
    it (a newcomer's `compare EXP --baseline X` cut `export --level comparisons` from
    264 rows to 44)."""
    row = find_experiment(session, experiment)
    baselines = [] if baseline is None else [baseline]
    compared = compared_configs(session, {row.name: row}, [(row.name, None)], baselines)
    configs = compared.configs
    default = resolve_baseline(row.baseline, configs)
    chosen = default if compared.baseline is None else compared.baseline.name
    label = _variant(row.name, None if chosen == default else chosen, adjust)
    return _inputs(
        session,
        [row],
        configs,
        run_label=label,
        title=f"Comparison: {label}",
        baseline=chosen,
        metrics=metrics,
    )


def stored_inputs(
    session: Session,
    selections: Sequence[tuple[str, str | None]],
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    metrics: Sequence[str] | None = None,
) -> ComparisonInputs:
    """Configs of stored experiments of one suite, on the cases they share: each selection
    is (experiment name, config hash or label), or (experiment, None) for all its
    configs; configs are called "<experiment>:<label>" ("<label>" from one experiment).
    ``baseline`` may name any config of the experiments: one the selections left out is
    compared too (:func:`compared_configs`). Refuses (EvalError) experiments of different
    suites or without a shared case, a config named twice, and a selection of fewer than
    two configs."""
    if not selections:
        raise EvalError("nothing to compare: name at least one experiment")
    experiments: dict[str, Experiment] = find_experiments(session, [n for n, _ in selections])
    suites = {e.suite for e in experiments.values()}
    if len(suites) > 1:
        listing = ", ".join(f"{e.name} ({e.suite})" for e in experiments.values())
        raise EvalError(f"cannot compare experiments of different suites: {listing}")
    compared = compared_configs(
        session, experiments, selections, [] if baseline is None else [baseline]
    )
    configs = compared.configs
    if len(configs) < 2:
        listing = ", ".join(quoted(c.name) for c in configs) or "none"
        raise EvalError(f"nothing to compare: the selection has one config ({listing})")
    rows = list(experiments.values())
    if len(rows) > 1:
        check_shared_cases(session, rows, configs)
    chosen = None if compared.baseline is None else compared.baseline.name
    label = _variant("-vs-".join(dict.fromkeys(compared.parts)), chosen, adjust)
    return _inputs(
        session,
        rows,
        configs,
        run_label=label,
        title="Comparison: " + " vs ".join(dict.fromkeys(n for n, _ in selections)),
        baseline=chosen,
        metrics=metrics,
    )


def _variant(label: str, baseline: str | None, adjust: Adjustment) -> str:
    """``label`` with a baseline and an adjustment other than the default said: a
    comparison of other pairs, or of other adjusted p-values, is stored under its own
    label, not over the default one."""
    if baseline is not None:
        label += f", baseline {baseline}"
    return label if adjust == "holm" else f"{label}, adjust {adjust}"


def selection_inputs(
    session: Session,
    selections: Sequence[tuple[str, str | None]],
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
) -> ComparisonInputs:
    """The inputs the `compare` verb and flow take: one experiment without config refs
    is compared as the `evaluate` flow's last stage compares it, anything else as
    stored configs."""
    if len(selections) == 1 and selections[0][1] is None:
        return experiment_inputs(session, selections[0][0], baseline=baseline, adjust=adjust)
    return stored_inputs(session, selections, baseline=baseline, adjust=adjust)


def _inputs(
    session: Session,
    experiments: list[Experiment],
    configs: list[SelectedConfig],
    *,
    run_label: str,
    title: str,
    baseline: str | None,
    metrics: Sequence[str] | None,
) -> ComparisonInputs:
    """``baseline``: the name of one of ``configs``, or None."""
    notes: list[str] = []
    wanted = _metrics(experiments, metrics, notes)
    scores = _score_frame(session, experiments, configs, wanted)
    present = [m for m in wanted if (scores["metric"] == m).any()]
    for m in wanted:
        if m == LATENCY:
            _note_unmeasured_latency(scores, configs, notes)
        elif m not in present:
            notes.append(f"{m}: no scored generation of any selected config; not compared")
        else:
            have = set(scores.loc[scores["metric"] == m, "config"])
            if missing := [c.name for c in configs if c.name not in have]:
                notes.append(f"{m}: no scored generation for {', '.join(missing)}; left out")
        if m in present and get_metric(m).corpus_level:
            notes.append(
                f"{m} is a corpus metric: configs are ranked by its corpus value, as on the "
                "leaderboard; the paired tests use its per-case values"
            )
    quality = next((m for m in present if m not in TIMING_METRICS), None)
    coverage = experiment_coverage(session, experiments[0])
    return ComparisonInputs(
        experiments=tuple(experiments),
        configs=tuple(configs),
        run_label=run_label,
        title=title,
        baseline=baseline,
        metrics=tuple(present),
        quality=quality,
        scores=scores,
        facts=_facts(session, experiments, configs, quality),
        notes=tuple(notes),
        suite_cases=coverage.total,
        suite_part=coverage.how,
        suite_named=named_cases(experiments[0]),
        suite_run=_run(session, experiments, configs),
        headline=stored_figures(
            session, experiments, configs, [m for m in present if get_metric(m).corpus_level]
        ),
    )


def _run(
    session: Session, experiments: Sequence[Experiment], configs: Sequence[SelectedConfig]
) -> dict[str, tuple[int, int]]:
    """Per compared config (name): its cases run and of them failed (``run_cases``)."""
    run = {e.id: run_cases(session, e.id) for e in experiments}
    return {
        c.name: run[c.experiment_id][c.config_hash]
        for c in configs
        if c.config_hash in run.get(c.experiment_id, {})
    }


def stored_figures(
    session: Session,
    experiments: Sequence[Experiment],
    configs: Sequence[SelectedConfig],
    metrics: Sequence[str],
) -> dict[str, dict[str, float]]:
    """Per metric, each config's stored aggregate (config name -> its mean: a corpus
    metric's corpus value): the one figure of a config on a metric that the leaderboard
    shows and ranks by, so that the comparison ranks by it too. A metric some config
    has none for (NaN where a user's corpus function failed, or not aggregated) is left
    out: ranked by its per-case means, and its verdict names no corpus figure."""
    if not metrics:
        return {}
    found: dict[str, dict[str, float]] = {m: {} for m in metrics}
    for e in experiments:
        aggregates = aggregates_frame(session, e.id)
        means = {(r.metric, r.config_hash): r.mean for r in aggregates.itertuples()}
        for c in (c for c in configs if c.experiment_id == e.id):
            for m in metrics:
                value = means.get((m, c.config_hash))
                if value is not None and not pd.isna(value):
                    found[m][c.name] = float(value)
    return {m: figures for m, figures in found.items() if len(figures) == len(configs)}


def _metrics(
    experiments: list[Experiment], metrics: Sequence[str] | None, notes: list[str]
) -> list[str]:
    if metrics is not None:
        wanted = list(dict.fromkeys(metrics))
    else:
        first = list(experiments[0].metrics)
        wanted = [m for m in first if all(m in e.metrics for e in experiments[1:])]
        if dropped := [m for m in first if m not in wanted]:
            notes.append(f"not in every experiment, not compared: {', '.join(dropped)}")
        wanted.append(LATENCY)
    for m in wanted:
        get_metric(m)  # MetricError naming the known metrics
    return list(dict.fromkeys(wanted))


def _note_unmeasured_latency(
    scores: pd.DataFrame, configs: list[SelectedConfig], notes: list[str]
) -> None:
    """Latency is compared only where it was measured (a stored latency, real or
    simulated): say which configs have none, so no verdict is read into its absence."""
    measured = set(scores["config"][(scores["metric"] == LATENCY) & scores["value"].notna()])
    if unmeasured := [c.name for c in configs if c.name not in measured]:
        every = len(unmeasured) == len(configs)
        notes.append(
            f"{LATENCY}: not measured for {'any config' if every else ', '.join(unmeasured)}; "
            "no verdict on it" + ("" if every else " for those")
        )


def _score_frame(
    session: Session,
    experiments: list[Experiment],
    configs: list[SelectedConfig],
    metrics: list[str],
) -> pd.DataFrame:
    """The rows of ``metrics`` and ``configs`` (named), each table cut as it is read (the
    scores and latencies joined whole, then cut, held more copies at once)."""
    parts = []
    for e in experiments:
        names = {c.config_hash: c.name for c in configs if c.experiment_id == e.id}
        scores = scores_frame(session, e.id)
        latency = LATENCY in metrics and not (scores["metric"] == LATENCY).any()
        parts.append(_named_rows(scores, metrics, names))
        del scores
        if latency:
            parts.append(_named_rows(latency_scores(session, e.id), metrics, names))
    frame = pd.concat(parts, ignore_index=True)
    del parts
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


def _named_rows(scores: pd.DataFrame, metrics: list[str], names: dict[str, str]) -> pd.DataFrame:
    """``SCORE_COLUMNS`` of the rows of ``metrics`` and of the configs in ``names``
    (hash to name), named."""
    rows = scores.loc[scores["metric"].isin(metrics) & scores["config"].isin(names), SCORE_COLUMNS]
    return rows.assign(config=rows["config"].map(names))


def _facts(
    session: Session,
    experiments: list[Experiment],
    configs: list[SelectedConfig],
    quality: str | None,
) -> pd.DataFrame:
    """One row per config: swept parameters (one experiment only: across experiments a
    parameter's effect would be mixed with the experiments' difference), quality (mean of
    the first quality metric), latency p95 and energy per generation, and what orders
    ties (``ranking.tie_keys``: median latency, the share of outputs echoing the prompt)."""
    rows = []
    for e in experiments:
        params = experiment_configs(session, e.id).set_index("hash")
        aggregates = aggregates_frame(session, e.id)
        means = {(r.metric, r.config_hash): r.mean for r in aggregates.itertuples()}
        energy = energy_per_generation(session, e.id)
        for c in configs:
            if c.experiment_id != e.id:
                continue
            row: dict[str, Any] = {"config": c.name}
            if len(experiments) == 1:
                row |= {p: params.at[c.config_hash, p] for p in STUDIED_PARAMETERS if p in params}
            if quality is not None:
                row[quality] = means.get((quality, c.config_hash))
            row["latency_p95_s"] = means.get(("latency_p95_s", c.config_hash))
            for tie in ("latency_p50_s", "echoes_prompt"):  # how ties are ordered
                row[tie] = means.get((tie, c.config_hash))
            row["energy_j"] = energy.get(c.config_hash)
            rows.append(row)
    facts = pd.DataFrame(rows)
    swept = [p for p in STUDIED_PARAMETERS if p in facts and facts[p].dropna().nunique() >= 2]
    unswept = [p for p in STUDIED_PARAMETERS if p in facts and p not in swept]
    return facts.drop(columns=unswept).astype({p: float for p in swept})


def _metric_facts(metric: str) -> tuple[str, str, bool, bool, bool]:
    """What the registry says of a metric that the comparison uses."""
    m = get_metric(metric)
    return (metric, m.score_type, m.higher_is_better, m.descriptive, m.corpus_level)
