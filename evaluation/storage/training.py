"""The selector's training frame from stored results: one row per generation with its
config, model facts, case size, quality, timings and energy (the columns of
``selection.frame.REQUIRED_COLUMNS``), and ``case_group``: the case's group in its suite
(None where it has none), which the measured quality's interval clusters by, as
``evalflow show``'s do; ``quality_metric``: the metric quality is read from;
``prompt_tokens``: the server's ``prompt_eval_count`` (NULL where it did not report one).

Quality is the generation's score on the metric ``quality_metric(task_type, metrics)``
picks for its experiment (``selection.quality.quality_metric`` is the one to pass; it is
an argument so storage does not depend on the selector). Metrics on a 0-100 scale
(``PERCENT_METRICS``) are divided by 100. Energy is the generation's own reading where
recorded, else its config's mean energy per generation from ``config_telemetry``.
Successful generations with no score stored yet (a run going on) are left out
(``_SCORED``): training learns from scored results only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, inspect, text
from sqlmodel import Session

from evaluation.spec._params import NAMES
from evaluation.storage.repository import TOKENS_PER_S

QualityMetric = Callable[[str, Sequence[str]], str | None]
PERCENT_METRICS = frozenset({"bleu", "chrf"})
# A successful generation with no score stored is not scored yet (its run goes on, or was
# stopped before it scored): left out of training, and of what a version is compared with.
# A retrain during a live run took a real config's 8 unscored generations for latency
# only, and `recommend` then called it "never run on this task type" and never listed it
# as unseen once its scores were stored.
_SCORED = "(g.status <> 'ok' OR EXISTS (SELECT 1 FROM scores s WHERE s.generation_id = g.id))"

_GENERATIONS = text(
    f"""
    SELECT g.id AS generation_id, e.name AS experiment, e.id AS experiment_id,
           g.config_hash, c.model, {", ".join(f"c.{name}" for name in NAMES)},
           c.template_name AS template, c.template_text,
           e.task_type, e.suite, cs.case_id, cs."group" AS case_group, cs.input_chars,
           g.latency_s, g.ttft_s, {TOKENS_PER_S}, g.prompt_eval_count AS prompt_tokens,
           COALESCE(g.energy_j, t.energy_j_per_generation) AS energy_j,
           (g.simulated OR e.simulated) AS simulated, g.status
    FROM generations g
    JOIN experiments e ON e.id = g.experiment_id
    JOIN configs c ON c.hash = g.config_hash
    JOIN cases cs ON cs.uid = g.case_uid
    LEFT JOIN config_telemetry t
           ON t.experiment_id = g.experiment_id AND t.config_hash = g.config_hash
    WHERE {_SCORED}
    ORDER BY g.id
    """
)
_TRAINING_ROWS = """
    FROM generations g
    JOIN experiments e ON e.id = g.experiment_id
    JOIN configs c ON c.hash = g.config_hash
    JOIN cases cs ON cs.uid = g.case_uid
"""
_REAL_UNLESS = f"(:simulated OR NOT (g.simulated OR e.simulated)) AND {_SCORED}"
_ANY_GENERATION = text(f"SELECT 1 {_TRAINING_ROWS} WHERE {_REAL_UNLESS} LIMIT 1")
_ANY_SIMULATED = text(f"SELECT 1 {_TRAINING_ROWS} WHERE g.simulated OR e.simulated LIMIT 1")
_COUNT_GENERATIONS = text(f"SELECT COUNT(*) {_TRAINING_ROWS} WHERE {_REAL_UNLESS}")
_COUNT_PAIRS = text(
    "SELECT COUNT(*) FROM (SELECT DISTINCT g.config_hash, e.suite "
    f"{_TRAINING_ROWS} WHERE g.status = 'ok' AND {_REAL_UNLESS}) AS pairs"
)
_TASK_GENERATIONS = text(
    """
    SELECT (g.simulated OR e.simulated) AS simulated, COUNT(*) AS n
    FROM generations g JOIN experiments e ON e.id = g.experiment_id
    WHERE e.task_type = :task_type
    GROUP BY (g.simulated OR e.simulated)
    """
)
_TASK_MEASURED = text(
    f"""
    SELECT c.hash AS config_hash, e.suite, COUNT(*) AS n, c.model,
           {", ".join(f"c.{name}" for name in NAMES)},
           c.template_name AS template, c.template_text
    FROM generations g
    JOIN experiments e ON e.id = g.experiment_id
    JOIN configs c ON c.hash = g.config_hash
    WHERE e.task_type = :task_type AND g.status = 'ok' AND NOT (g.simulated OR e.simulated)
          AND {_SCORED}
    GROUP BY c.hash, e.suite
    """
)
_TASK_CASES = text(
    f"""
    SELECT g.config_hash, e.suite, cs.case_id, COUNT(*) AS n
    FROM generations g
    JOIN experiments e ON e.id = g.experiment_id
    JOIN cases cs ON cs.uid = g.case_uid
    WHERE e.task_type = :task_type AND g.status = 'ok' AND g.config_hash IN :hashes
          AND {_REAL_UNLESS}
    GROUP BY g.config_hash, e.suite, cs.case_id
    """
).bindparams(bindparam("hashes", expanding=True))
_SCORES = text(
    "SELECT s.generation_id, s.metric, s.value FROM scores s "
    "JOIN generations g ON g.id = s.generation_id WHERE g.status = 'ok'"
)
_MODELS = text("SELECT name, family, parameter_size, quantization FROM models ORDER BY last_seen")
_EXPERIMENT_METRICS = text("SELECT id, metrics FROM experiments")


def training_frame(
    session: Session, quality_metric: QualityMetric, *, include_simulated: bool = False
) -> pd.DataFrame:
    """Every stored generation, failed or scored, as a training row (see the module
    docstring). Simulated results are left out unless ``include_simulated``."""
    connection = session.connection()
    frame = pd.read_sql(_GENERATIONS, connection)
    frame["simulated"] = frame["simulated"].astype(bool)
    if not include_simulated:
        frame = frame[~frame["simulated"]].reset_index(drop=True)
    frame = frame.merge(_model_facts(pd.read_sql(_MODELS, connection)), on="model", how="left")
    for column in ("family", "parameter_size", "quantization"):
        frame[column] = frame[column].fillna("")
    frame["quality_metric"] = _quality_metric(frame, _metrics(session), quality_metric)
    frame["quality"] = _quality(frame, pd.read_sql(_SCORES, connection))
    return frame.drop(columns=["generation_id", "experiment_id"])


def has_training_rows(session: Session, *, include_simulated: bool = False) -> bool:
    """Whether ``training_frame`` would have a row: one indexed query, so that `retrain`
    refuses an empty or simulated-only database before it starts Prefect and a flow."""
    found = session.connection().execute(_ANY_GENERATION, {"simulated": include_simulated})
    return found.first() is not None


def training_pairs(session: Session, *, include_simulated: bool = False) -> int:
    """How many (config, suite) pairs have a successful generation ``training_frame``
    would have: at least as many as a selector would learn from, so that `retrain`
    refuses fewer than it needs before it starts Prefect and a flow."""
    found = session.connection().execute(_COUNT_PAIRS, {"simulated": include_simulated})
    return int(found.scalar_one())


def training_generations(session: Session, *, include_simulated: bool = False) -> int:
    """How many rows ``training_frame`` would have (one query; 0 on a database without
    the evaluation tables): what a selector version's ``n_generations`` is compared
    with, to say that more are stored than it learned from."""
    if not inspect(session.connection()).has_table("generations"):
        return 0
    found = session.connection().execute(_COUNT_GENERATIONS, {"simulated": include_simulated})
    return int(found.scalar_one())


def has_simulated_rows(session: Session) -> bool:
    """Whether a SIMULATED generation is stored that ``training_frame`` would have with
    ``include_simulated``: `retrain` without it says so when it has too little to learn
    from."""
    return session.connection().execute(_ANY_SIMULATED).first() is not None


def task_generations(session: Session, task_type: str) -> tuple[int, int]:
    """How many generations of ``task_type`` are stored: (real, simulated); (0, 0) on a
    database without the evaluation tables."""
    connection = session.connection()
    if not inspect(connection).has_table("generations"):
        return 0, 0
    counts = dict(connection.execute(_TASK_GENERATIONS, {"task_type": task_type}).all())
    return int(counts.get(False, 0)), int(counts.get(True, 0))


def task_measured(session: Session, task_type: str) -> pd.DataFrame:
    """The real (config, suite) pairs of ``task_type`` with successful generations
    stored: ``config_hash``, ``suite``, ``n`` (generations) and the config's columns
    (model, parameters, ``template``, ``template_text``); empty on a database without
    the evaluation tables."""
    connection = session.connection()
    if not inspect(connection).has_table("generations"):
        return pd.DataFrame(columns=["config_hash", "suite", "n"])
    return pd.read_sql(_TASK_MEASURED, connection, params={"task_type": task_type})


def task_cases(
    session: Session,
    task_type: str,
    config_hashes: Sequence[str],
    *,
    include_simulated: bool = False,
) -> pd.DataFrame:
    """The cases of ``task_type`` that ``config_hashes`` have real (also simulated, with
    ``include_simulated``), scored, successful generations stored on: ``config_hash``,
    ``suite``, ``case_id`` and ``n`` (generations); empty on a database without the
    evaluation tables, or for no hashes."""
    connection = session.connection()
    if not config_hashes or not inspect(connection).has_table("generations"):
        return pd.DataFrame(columns=["config_hash", "suite", "case_id", "n"])
    params = {
        "task_type": task_type,
        "hashes": list(config_hashes),
        "simulated": include_simulated,
    }
    return pd.read_sql(_TASK_CASES, connection, params=params)


def _model_facts(models: pd.DataFrame) -> pd.DataFrame:
    """One row per model name: the facts last seen on a host."""
    return models.rename(columns={"name": "model"}).drop_duplicates("model", keep="last")


def _metrics(session: Session) -> dict[int, list[str]]:
    rows = session.connection().execute(_EXPERIMENT_METRICS).all()
    return {int(i): _as_list(m) for i, m in rows}


def _as_list(value: object) -> list[str]:
    if isinstance(value, str):  # SQLite hands JSON back as text through raw SQL
        value = json.loads(value)
    return [str(v) for v in value or []]


def _quality_metric(
    frame: pd.DataFrame, metrics: dict[int, list[str]], quality_metric: QualityMetric
) -> pd.Series:
    """Per row, the metric its experiment's quality is read from ("" where none fits)."""
    chosen = {
        (experiment, task_type): quality_metric(task_type, metrics.get(experiment, []))
        for experiment, task_type in frame[["experiment_id", "task_type"]]
        .drop_duplicates()
        .itertuples(index=False)
    }
    wanted = frame["experiment_id"].combine(frame["task_type"], lambda e, t: chosen.get((e, t)))
    return wanted.fillna("").astype(str)


def _quality(frame: pd.DataFrame, scores: pd.DataFrame) -> pd.Series:
    wanted = frame["quality_metric"]
    values = scores.set_index(["generation_id", "metric"])["value"]
    keys = pd.MultiIndex.from_arrays([frame["generation_id"], wanted])
    quality = pd.Series(values.reindex(keys).to_numpy(dtype=float), index=frame.index)
    percent = wanted.isin(PERCENT_METRICS).to_numpy()
    quality[percent] = quality[percent] / 100.0
    return quality.where(np.isfinite(quality))
