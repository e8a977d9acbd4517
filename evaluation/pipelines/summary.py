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
``summary_of``. The run's end stores the latter with the view's pages; `show` reads it back
while the case runs and stages are unchanged (``storage.stages.stored_pipeline_summary``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the leaderboard (`evalflow show`) reads the summary without pandas
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
# What ``summary_of`` reads of each stage sum (``_per_stage``'s columns).
SUMS = ("seconds", "wait", "calls", "prompt", "output")


#: The ``config`` of the stage rows of calls made once for the whole run; their figures
#: are the run's totals, not per case.
SHARED = "shared (run total)"


@dataclass(frozen=True)
class PipelineSummary:
    """``by_config``: config hash -> its CONFIG_COLUMNS; ``rows``: one per (config, stage),
    STAGE_COLUMNS, in order. Plain values (None where not known), so the leaderboard reads
    and stores it without pandas; ``configs`` and ``stages`` are the same as DataFrames."""

    by_config: dict[str, dict[str, Any]]
    rows: tuple[dict[str, Any], ...]

    @cached_property
    def configs(self) -> pd.DataFrame:
        """One row per config with a case run (index: config hash, CONFIG_COLUMNS)."""
        import pandas as pd

        frame = pd.DataFrame.from_dict(self.by_config, orient="index", columns=CONFIG_COLUMNS)
        return frame.astype(dict.fromkeys(CONFIG_COLUMNS[1:], float))

    @cached_property
    def stages(self) -> pd.DataFrame:
        """One row per (config, stage), STAGE_COLUMNS (NaN where not known)."""
        import pandas as pd

        frame = pd.DataFrame(list(self.rows), columns=STAGE_COLUMNS)
        return frame.astype(dict.fromkeys(STAGE_COLUMNS[2:], float))

    @property
    def multi_call(self) -> bool:
        """Whether any config ran a pipeline other than one call per case."""
        return any(
            c["pipeline"] != "single" or (c["calls_per_case"] or 0) > 1
            for c in self.by_config.values()
        )

    @property
    def any_truncated(self) -> bool:
        return any((c["context_truncated"] or 0) > 0 for c in self.by_config.values())


def _sum_if_all_reported(counts: pd.Series) -> float:
    """The stages' token counts summed; NaN when a stage's was not reported."""
    return float(counts.sum()) if counts.notna().all() else float("nan")


def no_pipelines() -> PipelineSummary:
    """The summary of an experiment without case runs."""
    return PipelineSummary({}, ())


def summarize_pipelines(case_runs: pd.DataFrame, stages: pd.DataFrame) -> PipelineSummary:
    import pandas as pd

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
    once = _per_stage(stages[shared], ["stage"])
    return summary_of(
        configs.to_dict("index"),
        cases.to_dict(),
        own.to_dict("records"),
        once.to_dict("records"),
    )


def summary_of(
    configs: Mapping[str, Mapping[str, Any]],
    cases: Mapping[str, int],
    own: Sequence[Mapping[str, Any]],
    once: Sequence[Mapping[str, Any]],
) -> PipelineSummary:
    """The summary from ``configs`` (config hash -> CONFIG_COLUMNS), the case runs per
    config (``cases``) and the stages' sums (``SUMS``, in the pipeline's order): ``own``
    per config and stage, ``once`` per stage of the calls made for the run."""

    def per_case(row: Mapping[str, Any], config: str, n: float) -> dict[str, Any]:
        seconds, wait, calls, prompt, output = (_number(row[k]) for k in SUMS)
        return {
            "config": config,
            "stage": row["stage"],
            "seconds_per_case": _divided(seconds, n),
            "wait_s_per_case": _divided(wait, n),
            "calls_per_case": _divided(calls, n),
            "prompt_tokens": _divided(prompt, n),
            "output_tokens": _divided(output, n),
        }

    rows = [per_case(r, r["config_hash"], cases[r["config_hash"]]) for r in own]
    rows += [per_case(r, SHARED, 1) for r in once]  # the run's totals
    by_config = {
        str(config): {k: _plain(facts[k]) for k in CONFIG_COLUMNS}
        for config, facts in configs.items()
    }
    return PipelineSummary(by_config, tuple(rows))


def _number(value: Any) -> float | None:
    """A sum as a float; None for SQL's NULL and pandas' NaN (not recorded)."""
    return None if value is None or math.isnan(value) else float(value)


def _divided(value: float | None, n: float) -> float | None:
    return None if value is None else value / n


def _plain(value: Any) -> Any:
    """A config fact as JSON stores it: a count as int, other numbers (PostgreSQL's
    averages are Decimal) as float, NaN as None."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, Integral):
        return int(value)
    number = float(value)
    return None if math.isnan(number) else number


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
