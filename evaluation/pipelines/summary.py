"""What the leaderboard and report say about pipelines: per config the calls per case,
the case wall time and the generations whose prompt was cut to the context window; per
config and stage the time (in service, and waiting for a host slot), calls and tokens
per case.

Built from the ``case_runs`` and ``stages`` tables at read time, so a rescore (which
recomputes aggregates) never loses them.
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


def summarize_pipelines(case_runs: pd.DataFrame, stages: pd.DataFrame) -> PipelineSummary:
    if case_runs.empty:
        return PipelineSummary(
            pd.DataFrame(columns=list(CONFIG_COLUMNS)), pd.DataFrame(columns=list(STAGE_COLUMNS))
        )
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
    per_stage = (
        stages.groupby(["config_hash", "stage"], sort=False)
        .agg(
            seconds=("duration_s", "sum"),
            wait=("wait_s", lambda w: w.sum(min_count=1)),  # None: not recorded then
            calls=("stage", "size"),
            prompt=("prompt_tokens", _sum_if_all_reported),
            output=("output_tokens", "sum"),
        )
        .reset_index()
    )
    n = per_stage["config_hash"].map(cases)
    table = pd.DataFrame(
        {
            "config": per_stage["config_hash"],
            "stage": per_stage["stage"],
            "seconds_per_case": per_stage["seconds"] / n,
            "wait_s_per_case": per_stage["wait"] / n,
            "calls_per_case": per_stage["calls"] / n,
            "prompt_tokens": per_stage["prompt"] / n,
            "output_tokens": per_stage["output"] / n,
        }
    )
    return PipelineSummary(configs, table)
