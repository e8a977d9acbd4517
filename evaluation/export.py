"""Exporting an experiment's results at every level to CSV, JSON, Parquet or Excel.

Levels: generations (outputs and Ollama's counters), scores (one row per generation and
metric), aggregates (means with intervals and run facts), comparisons (the stored paired
comparisons of the experiment; computed afresh, and marked so, when none are stored),
ratings (every human rating, superseded ones included and marked), judgements (judge
verdicts) and stages (a pipeline's model calls with their transcripts; by default only
where a case ran a pipeline: a sweep of single calls stores a stage row per generation,
its own call, written only when asked for). Every row carries the experiment's id and name; a row
of one config carries its hash, label, model, one column per generation parameter and
its template; a comparison names both sides by hash, label and model. One concept has
one column name at every level (``config_hash``, ``case_group``); docs/export-schema.md
documents every column. CSV, JSON (Table Schema layout) and Parquet write one file per
level; Excel writes one workbook with a sheet per level. An empty level keeps its
columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from evaluation.compare._config_refs import select_configs
from evaluation.errors import EvalError
from evaluation.export_levels import FORMATS, LEVELS
from evaluation.metrics import get_metric
from evaluation.review.frames import judgements_frame, ratings_frame
from evaluation.spec import PARAMETERS
from evaluation.storage.coverage import experiment_coverage
from evaluation.storage.models import ComparisonRow, Experiment
from evaluation.storage.repository import (
    aggregates_frame,
    experiment_configs,
    generations_frame,
    get_experiment,
    scores_frame,
)
from evaluation.storage.stages import exported_stages, has_pipeline_stages

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

Format = Literal["csv", "json", "parquet", "excel"]
EXCEL_CELL_LIMIT = 32_767
_EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def export_experiment(
    session: Session,
    experiment: str,
    *,
    out_dir: Path,
    fmt: str = "csv",
    levels: Sequence[str] | None = None,
) -> list[Path]:
    """Write the chosen ``levels`` (default: all, ``stages`` only where a case ran a
    pipeline) of ``experiment`` under ``out_dir`` as
    ``<experiment>-<level>.<ext>`` (Excel: ``<experiment>.xlsx``); returns the paths."""
    return write_levels(export_frames(session, experiment, fmt=fmt, levels=levels), out_dir, fmt)


def export_frames(
    session: Session, experiment: str, *, fmt: str = "csv", levels: Sequence[str] | None = None
) -> tuple[str, dict[str, pd.DataFrame]]:
    """What ``export_experiment`` writes: the file names' stem and each chosen level's
    frame (`evalflow export` says which came out empty, and why)."""
    if fmt not in FORMATS:
        raise EvalError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    unknown = [level for level in levels or () if level not in LEVELS]
    if unknown:
        raise EvalError(f"unknown export level(s) {unknown}; choose from {', '.join(LEVELS)}")
    row = get_experiment(session, experiment)
    if not levels and not has_pipeline_stages(session, int(row.id)):
        levels = [level for level in LEVELS if level != "stages"]  # a sweep of single calls
    chosen = list(dict.fromkeys(levels or LEVELS))
    return _slug(row.name), {level: level_frame(session, row, level) for level in chosen}


def write_levels(
    exported: tuple[str, dict[str, pd.DataFrame]], out_dir: Path, fmt: str
) -> list[Path]:
    """``export_frames``' frames written under ``out_dir``, an empty one with its columns
    (a script reading the files finds them all); returns the paths."""
    stem, frames = exported
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "excel":
        path = out_dir / f"{stem}.xlsx"
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            for level, frame in frames.items():
                _for_excel(frame).to_excel(writer, sheet_name=level, index=False)
                _formulas_as_text(writer.sheets[level])
        return [path]
    paths = []
    for level, frame in frames.items():
        path = out_dir / f"{stem}-{level}.{fmt}"
        _WRITERS[fmt](frame, path)
        paths.append(path)
    return paths


#: Why a level can come out empty, said beside its file (it printed the path alone, and a
#: header-only file read as a failed export).
EMPTY_BECAUSE = {
    "generations": "nothing generated yet",
    "scores": "nothing scored yet",
    "aggregates": "nothing aggregated yet",
    "comparisons": "no pairs to compare",
    "ratings": "no ratings in this experiment",
    "judgements": "no judge verdicts in this experiment",
    "stages": "no stages in this experiment",
}


# One name per concept at every level: the renames that get there from the frames the
# rest of evalflow reads (docs/export-schema.md documents every column written).
_RENAMES = {
    "generations": {"id": "generation_id"},
    "scores": {"config": "config_hash", "group": "case_group"},
    "aggregates": {},
    "ratings": {
        "id": "rating_id",
        "config": "config_hash",
        "group": "case_group",
        "pair_config_a": "pair_config_hash_a",
        "pair_config_b": "pair_config_hash_b",
    },
    "judgements": {
        "id": "judgement_id",
        "seed": "judge_seed",
        "config": "config_hash",
        "group": "case_group",
        "other_config": "other_config_hash",
    },
    "stages": {},
}


def parameter_columns() -> list[str]:
    """One column per generation parameter, in the parameter table's order."""
    return [p.name for p in PARAMETERS]


def config_columns() -> list[str]:
    """What a row with one config carries about it: label, model, every generation
    parameter and the prompt template."""
    return ["config_label", "model", *parameter_columns(), "template_name", "template_text"]


def level_frame(session: Session, experiment: Experiment, level: str) -> pd.DataFrame:
    """One level of an experiment as a frame: the experiment's id and name first, then
    the level's keys, the config's facts (label, model, parameters, template) and the
    level's own columns."""
    experiment_id = int(experiment.id)
    if level == "comparisons":
        frame = _comparison_frame(session, experiment)
    else:
        if level == "generations":
            frame = generations_frame(session, experiment_id)
        elif level == "scores":
            frame = scores_frame(session, experiment_id)
        elif level == "aggregates":  # a mean of part of the suite: n of suite_cases
            frame = aggregates_frame(session, experiment_id)
            frame["suite_cases"] = experiment_coverage(session, experiment).total
        elif level == "ratings":
            frame = ratings_frame(session, experiment_id, current_only=False)
        elif level == "judgements":
            frame = judgements_frame(session, experiment_id)
        elif level == "stages":
            frame = exported_stages(session, experiment_id)
        else:
            raise EvalError(f"unknown export level {level!r}")
        frame = frame.rename(columns=_RENAMES[level])
        frame = _with_config(session, experiment_id, frame)
    frame = frame.drop(columns=["experiment_id"], errors="ignore")
    frame.insert(0, "experiment", experiment.name)
    frame.insert(0, "experiment_id", experiment_id)
    return typed(frame)


# The type of every column that is not text, by name (one name, one type, at every
# level), as docs/export-schema.md lists them; generation parameters by their kind.
COLUMN_TYPES: dict[str, str] = {
    **dict.fromkeys(
        [
            "experiment_id",
            "generation_id",
            "sample_index",
            "sample_seed",
            "attempts",
            "prompt_eval_count",
            "eval_count",
            "load_duration_ns",
            "prompt_eval_duration_ns",
            "eval_duration_ns",
            "total_duration_ns",
            "input_chars",
            "n",
            "suite_cases",
            "n_used",
            "n_excluded",
            "rating_id",
            "stars",
            "pair_id",
            "superseded_by",
            "judgement_id",
            "other_generation_id",
            "judge_seed",
            "stage_id",
            "position",
            "prompt_tokens",
            "estimated_prompt_tokens",
            "output_tokens",
        ],
        "integer",
    ),
    **dict.fromkeys(
        [
            "latency_s",
            "ttft_s",
            "tokens_per_s",
            "energy_j",
            "value",
            "mean",
            "se",
            "ci_low",
            "ci_high",
            "diff",
            "p_value",
            "p_adjusted",
            "effect_size",
            "min_detectable_diff",
            "start_s",
            "wait_s",
            "duration_s",
        ],
        "number",
    ),
    **dict.fromkeys(
        ("truncated", "simulated", "current", "shared", "context_truncated"), "boolean"
    ),
    **dict.fromkeys(("created_at", "started_at"), "time"),
    **dict.fromkeys(("meta", "prompt", "retrieved"), "JSON"),
}
_PARAMETER_TYPES = {
    p.name: {int: "integer", float: "number", bool: "boolean"}.get(p.kind, "text")
    for p in PARAMETERS
}
_DTYPES = {"integer": "Int64", "number": "float64", "boolean": "boolean", "text": "string"}


def column_type(name: str) -> str:
    """The documented type of an export column: integer, number, boolean, time, JSON or
    text."""
    return COLUMN_TYPES.get(name) or _PARAMETER_TYPES.get(name, "text")


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each column in its documented type, nullable: a parameter never
    sent is an empty number column, not Parquet's type null or JSON's string."""
    out = frame.copy()
    for column in out.columns:
        kind = column_type(column)
        series = out[column]
        if kind == "time":
            out[column] = pd.to_datetime(series, utc=True, format="ISO8601")
        elif kind == "JSON":
            out[column] = series.map(_json_text).astype("string")
        elif kind in ("integer", "number"):
            out[column] = pd.to_numeric(series).astype(_DTYPES[kind])
        else:
            out[column] = series.astype(_DTYPES[kind])
    return out


def _json_text(value: object) -> object:
    """A JSON cell as JSON text: a dict or list dumped, text and missing kept."""
    return json.dumps(value) if isinstance(value, dict | list) else value


def _with_config(session: Session, experiment_id: int, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its config's facts right after ``config_hash``."""
    configs = experiment_configs(session, experiment_id)
    configs = configs.rename(columns={"hash": "config_hash", "label": "config_label"})
    configs = configs[["config_hash", *config_columns()]]
    merged = frame.merge(configs, on="config_hash", how="left")
    own = [c for c in frame.columns if c != "config_hash"]
    ids = [c for c in own if c in _ROW_IDS]
    rest = [c for c in own if c not in _ROW_IDS]
    return merged[[*ids, "config_hash", *config_columns(), *rest]]


_ROW_IDS = ("stage_id", "generation_id", "rating_id", "judgement_id")


def _comparison_frame(session: Session, experiment: Experiment) -> pd.DataFrame:
    """Comparison rows naming each side by hash, label and model."""
    frame = _comparisons(session, experiment)
    # stored rows name configs as the comparison did (by label), computed ones by hash
    to_hash = {c.name: c.config_hash for c in select_configs(session, experiment)}
    to_hash |= {h: h for h in to_hash.values()}
    configs = experiment_configs(session, int(experiment.id)).set_index("hash")
    sides = {}
    for side in ("a", "b"):
        hashes = frame[f"config_{side}"].map(to_hash)
        sides[f"config_hash_{side}"] = hashes
        sides[f"config_label_{side}"] = hashes.map(configs["label"])
        sides[f"model_{side}"] = hashes.map(configs["model"])
    own = frame.drop(columns=["config_a", "config_b"])
    head = own[["run_label", "metric"]]
    return pd.concat([head, pd.DataFrame(sides, index=frame.index), own.iloc[:, 2:]], axis=1)


def _comparisons(session: Session, experiment: Experiment) -> pd.DataFrame:
    """The stored comparison rows of the experiment, or all-pairs comparisons computed
    now (Holm-adjusted, per metric) when none are stored; ``source`` says which. Stored
    rows are checked as `evalflow compare` checks them (``current_comparison``: the
    digest of their inputs and of the statistics code): stale ones, from other scores
    or older code (a p of 0 from a zero standard error), are computed again and stored
    first, as `compare` would."""
    columns = [c.name for c in ComparisonRow.__table__.columns if c.name != "id"]
    stored = _stored_comparisons(session, experiment)
    if stored:
        from evaluation.compare._stored import current_comparison

        current = current_comparison(session, [(experiment.name, None)])
        if not current.computed:
            return pd.DataFrame(stored, columns=columns).assign(source="stored")
        again = pd.DataFrame(_stored_comparisons(session, experiment), columns=columns)
        return again.assign(source=RECOMPUTED)
    from evaluation.statistics import compare_many  # scipy.stats: only when none are stored

    scores = scores_frame(session, int(experiment.id))
    out = []
    for metric in sorted(scores["metric"].dropna().unique()):
        try:
            definition = get_metric(metric)
        except EvalError:
            continue  # human_* / judge_* scores: see the ratings and judgements levels
        if definition.corpus_level:
            continue
        multi = compare_many(
            scores,
            metric,
            score_type=definition.score_type,
            higher_is_better=definition.higher_is_better,
        )
        for ac in multi.comparisons:
            c = ac.comparison
            out.append(
                {
                    "run_label": experiment.name,
                    "metric": metric,
                    "config_a": c.a,
                    "config_b": c.b,
                    "n_used": c.n_used,
                    "n_excluded": c.n_excluded,
                    "diff": c.diff,
                    "ci_low": c.diff_ci[0] if c.diff_ci else None,
                    "ci_high": c.diff_ci[1] if c.diff_ci else None,
                    "test": c.test,
                    "p_value": c.p_value,
                    "p_adjusted": ac.p_adjusted,
                    "effect_size": c.effect_size,
                    "effect_size_name": c.effect_size_name,
                    "min_detectable_diff": ac.power.min_detectable_difference,
                    "note": c.note,
                    "created_at": None,
                    "source": "computed at export (holm, all pairs)",
                }
            )
    return pd.DataFrame(out, columns=[*columns, "source"])


#: ``source`` of stored comparisons that were stale and computed again by the export.
RECOMPUTED = "recomputed at export (the stored one was from other scores or older code)"


def _stored_comparisons(session: Session, experiment: Experiment) -> list[dict]:
    rows = session.exec(
        select(ComparisonRow).where(ComparisonRow.run_label == experiment.name)
    ).scalars()
    return [r.model_dump() for r in rows]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "experiment"


def _for_excel(frame: pd.DataFrame) -> pd.DataFrame:
    """Excel refuses control characters, long cells and time zones: clean a copy."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            out[column] = series.dt.tz_convert("UTC").dt.tz_localize(None)
        elif series.dtype == object or pd.api.types.is_string_dtype(series):
            out[column] = series.map(_excel_text)
    return out


def _formulas_as_text(sheet: Worksheet) -> None:
    """openpyxl stores a str starting with "=" as a formula, so a model's output or a
    rater's name such as ``=cmd|'/c calc'!A1`` would run when the workbook is opened
    (formula injection): an export writes data, never a formula, so such a cell is text."""
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f":
                cell.data_type = "s"


def _excel_text(value: object) -> object:
    if not isinstance(value, str):
        return value
    value = _EXCEL_ILLEGAL.sub("", value)
    if len(value) > EXCEL_CELL_LIMIT:
        value = value[: EXCEL_CELL_LIMIT - 13] + " [truncated]"
    return value


def _write_json(frame: pd.DataFrame, path: Path) -> None:
    """pandas' Table Schema layout ({"schema": {"fields": ...}, "data": [rows]}): an
    empty level keeps its columns, which a bare list of records cannot."""
    frame.to_json(path, orient="table", index=False, date_format="iso", force_ascii=False, indent=1)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with times in ISO 8601 ("2026-11-24T21:46:03.120000+00:00"), as JSON has
    them: pandas writes a space between date and time."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].map(lambda t: t.isoformat() if pd.notna(t) else None)
    out.to_csv(path, index=False)


_WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    "csv": _write_csv,
    "json": _write_json,
    "parquet": lambda frame, path: frame.to_parquet(path, index=False),
}
