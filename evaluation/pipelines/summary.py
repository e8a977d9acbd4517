"""What the leaderboard and report say about pipelines: per config the calls per case,
the case wall time and the generations whose prompt was cut to the context window; per
config and stage the time (in service, and waiting for a host slot), calls and tokens
per case, the stages in the order the pipeline runs them. A call made once for the whole
run (the corpus's embeddings, ``stages.shared``) is charged to no config: it is one row
of its own, ``SHARED``, with the run's totals.

Built from the ``case_runs`` and ``stages`` tables at read time, so a rescore (which
recomputes aggregates) never loses them: from their rows (``summarize_pipelines``), or
from the sums the database makes of them (``evaluation.storage.stages.pipeline_summary``,
the leaderboard's way: a few rows per config, whatever the run's size), both finished by
``summary_of``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

CONFIG_COLUMNS = ("pipeline", "calls_per_case", "wall_p50_s", "context_truncated")
STAGE_COLUMNS = (
    "config",
    "stage",
    "seconds_per_case",
    "wait_s_per_case",
    "calls_per_case",
    "prompt_tokens",
    "output_tokens",
)


#: The ``config`` of the stage rows of calls made once for the whole run; their figures
#: are the run's totals, not per case.
SHARED = "shared (run total)"


@dataclass(frozen=True)
class PipelineSummary:
    """``configs``: one row per config with a case run (index: config hash, columns
    CONFIG_COLUMNS); ``stages``: one row per (config, stage), STAGE_COLUMNS."""

    configs: pd.DataFrame
    stages: pd.DataFrame

    @property
    def multi_call(self) -> bool:
        """Whether any config ran a pipeline other than one call per case."""
        return bool(len(self.configs)) and (
            (self.configs["pipeline"] != "single").any()
            or (self.configs["calls_per_case"] > 1).any()
        )

    @property
    def any_truncated(self) -> bool:
        return bool(len(self.configs)) and bool((self.configs["context_truncated"] > 0).any())


def _sum_if_all_reported(counts: pd.Series) -> float:
    """The stages' token counts summed; NaN when a stage's was not reported."""
    return float(counts.sum()) if counts.notna().all() else float("nan")


def no_pipelines() -> PipelineSummary:
    """The summary of an experiment without case runs."""
    return PipelineSummary(
        pd.DataFrame(columns=list(CONFIG_COLUMNS)), pd.DataFrame(columns=list(STAGE_COLUMNS))
    )


def summarize_pipelines(case_runs: pd.DataFrame, stages: pd.DataFrame) -> PipelineSummary:
    if case_runs.empty:
        return no_pipelines()
    grouped = case_runs.groupby("config_hash", sort=False)
    configs = pd.DataFrame(
        {
            "pipeline": grouped["pipeline"].first(),
            "calls_per_case": grouped["calls"].mean(),
            "wall_p50_s": grouped["wall_s"].median(),
            "context_truncated": grouped["context_truncated_calls"].apply(lambda s: (s > 0).sum()),
        }
    )
    cases = case_runs.groupby("config_hash")["case_uid"].count()  # case runs per config
    shared = (
        stages["shared"].astype("boolean").fillna(False).astype(bool)
        if "shared" in stages.columns
        else pd.Series(False, index=stages.index)
    )
    own = _per_stage(stages[~shared], ["config_hash", "stage"])
    return summary_of(configs, cases, own, _per_stage(stages[shared], ["stage"]))


def summary_of(
    configs: pd.DataFrame, cases: pd.Series, own: pd.DataFrame, once: pd.DataFrame
) -> PipelineSummary:
    """The summary from ``configs`` (CONFIG_COLUMNS by config hash), the case runs per
    config (``cases``) and the stages' sums (``_per_stage``'s columns, in its order):
    ``own`` per config and stage, ``once`` per stage of the calls made for the run."""
    n = own["config_hash"].map(cases)
    table = pd.DataFrame(
        {
            "config": own["config_hash"],
            "stage": own["stage"],
            "seconds_per_case": own["seconds"] / n,
            "wait_s_per_case": own["wait"] / n,
            "calls_per_case": own["calls"] / n,
            "prompt_tokens": own["prompt"] / n,
            "output_tokens": own["output"] / n,
        }
    )
    run_totals = pd.DataFrame(
        {
            "config": SHARED,
            "stage": once["stage"],
            "seconds_per_case": once["seconds"],
            "wait_s_per_case": once["wait"],
            "calls_per_case": once["calls"].astype(float),
            "prompt_tokens": once["prompt"].astype(float),
            "output_tokens": once["output"].astype(float),
        }
    )
    parts = [t for t in (table, run_totals) if len(t)]
    table = pd.concat(parts, ignore_index=True) if parts else table
    return PipelineSummary(configs, table)


def _per_stage(stages: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sums per ``keys`` (config and stage, or stage), in the order the pipeline runs
    them: configs as they come, stages by their mean place in a case's calls."""
    if "position" not in stages.columns:  # frames built by hand: rows in call order
        stages = stages.assign(position=range(len(stages)))
    grouped = stages.groupby(keys, sort=False)
    per_stage = grouped.agg(
        seconds=("duration_s", "sum"),
        wait=("wait_s", lambda w: w.sum(min_count=1)),  # None: not recorded then
        calls=("stage", "size"),
        prompt=("prompt_tokens", _sum_if_all_reported),
        output=("output_tokens", "sum"),
        place=("position", "mean"),
    ).reset_index()
    if "config_hash" in keys:
        first_seen = {c: i for i, c in enumerate(per_stage["config_hash"].unique())}
        per_stage["seen"] = per_stage["config_hash"].map(first_seen)
        per_stage = per_stage.sort_values(["seen", "place"], kind="stable")
    else:
        per_stage = per_stage.sort_values("place", kind="stable")
    return per_stage.reset_index(drop=True)
