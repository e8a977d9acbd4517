"""The training frame: one row per generation, as the database layer hands it over.

Columns (``REQUIRED_COLUMNS``): experiment, config_hash, model, family, parameter_size
("8.0B" or ""), quantization, one column per generation parameter
(``evaluation.spec._params``: temperature, top_p, top_k, num_predict, num_ctx, seed;
numbers as floats, NaN = server default), template (name), template_text, task_type, suite,
case_id, input_chars, quality (the task type's quality metric, see
:mod:`selection.quality`, in [0, 1]), latency_s, ttft_s, tokens_per_s, energy_j (NaN when
not recorded), simulated, status ("ok" or "failed"). An optional ``weight`` column (default
1) says how much a row counts when fitting; outcome rows use it. An optional
``case_group`` column (default None: the case is in no group) names the case's group
within its suite, which the measured quality's interval clusters by; an optional
``quality_metric`` (default "": not said) names the metric quality was read from, which
an answer names (and warns of where a task type's configs were scored on several); an
optional ``prompt_tokens`` (default NaN: not stored) the prompt tokens the server
evaluated (Ollama's ``prompt_eval_count``: at most ``num_ctx``, where it cut the prompt),
which :mod:`selection.prompt_fit` reads."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from evaluation.errors import EvalError
from evaluation.spec._params import NAMES, PARAMETERS
from selection.features import add_parameter_b

_MODEL_FACTS = ("model", "family", "parameter_size", "quantization")
_TEXT_PARAMS = tuple(p.name for p in PARAMETERS if not p.numeric)
CONFIG_COLUMNS = ("config_hash", *_MODEL_FACTS, *NAMES, "template", "template_text")
REQUIRED_COLUMNS = (
    "experiment",
    *CONFIG_COLUMNS[:-2],
    "template",
    "template_text",
    "task_type",
    "suite",
    "case_id",
    "input_chars",
    "quality",
    "latency_s",
    "ttft_s",
    "tokens_per_s",
    "energy_j",
    "simulated",
    "status",
)
NUMERIC_COLUMNS = (
    *(p.name for p in PARAMETERS if p.numeric),
    "input_chars",
    "quality",
    "latency_s",
    "ttft_s",
    "tokens_per_s",
    "energy_j",
)
STATUSES = ("ok", "failed")


class TrainingDataError(EvalError, ValueError):
    """The training frame is malformed (missing columns, values out of range)."""


class NotEnoughTrainingData(TrainingDataError):
    """Too few stored results to train on: not bad input (the command is right, the
    results database is short of data), so `evalflow retrain` exits 1, saying what to
    run first."""

    HINT = (
        "run more configs or suites first: e.g. `evalflow run SPEC` with more models or "
        "settings in its grid"
    )

    SIMULATED_LEFT_OUT = (
        "simulated results are stored and left out: `evalflow retrain --include-simulated` "
        "learns from them too"
    )

    MIN_PAIRS = 3
    """The (config, suite) pairs with a successful generation a selector learns from."""

    @classmethod
    def too_few(cls, have: int) -> NotEnoughTrainingData:
        """Fewer than ``MIN_PAIRS`` (config, suite) pairs to learn from: what `evalflow
        retrain` says, before Prefect starts or in its flow."""
        return cls(
            f"need successful generations for at least {cls.MIN_PAIRS} (config, suite) "
            f"pairs; have {have}; {cls.HINT}"
        )

    @classmethod
    def nothing_stored(cls, simulated_left_out: bool) -> NotEnoughTrainingData:
        """No stored generation to train on: what `evalflow retrain` says, before or in its
        flow; ``simulated_left_out``: simulated results are stored and left out (not
        included), which it then says (only then: on an empty home it blamed simulated
        results that did not exist)."""
        line = f"no stored generations to train the selector on; {cls.HINT}"
        if simulated_left_out:
            line += f"; {cls.SIMULATED_LEFT_OUT} (a deployed flow: its include_simulated parameter)"
        return cls(line)


def validate_training_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Check the columns and values; return a copy with numeric columns as floats, a
    ``weight`` and a ``case_group`` column. Raises TrainingDataError naming what is wrong."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise TrainingDataError(
            f"training frame is missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(REQUIRED_COLUMNS)}"
        )
    out = frame.copy()
    if "prompt_tokens" not in out.columns:
        out["prompt_tokens"] = np.nan
    optional = tuple(c for c in ("weight",) if c in out.columns)
    for name in (*NUMERIC_COLUMNS, *optional, "prompt_tokens"):
        try:
            out[name] = pd.to_numeric(out[name]).astype(float)
        except (TypeError, ValueError) as exc:
            raise TrainingDataError(f"column {name!r} must be numeric: {exc}") from exc
    if "weight" not in out.columns:
        out["weight"] = 1.0
    if "case_group" not in out.columns:
        out["case_group"] = None
    if "quality_metric" not in out.columns:
        out["quality_metric"] = ""
    if (out["prompt_tokens"] < 0).any():
        raise TrainingDataError("column 'prompt_tokens' must be a count ≥ 0 (or empty)")
    if (out["weight"] < 0).any() or out["weight"].isna().any():
        raise TrainingDataError("column 'weight' must be a non-negative number on every row")
    bad_status = sorted(set(out["status"].astype(str)) - set(STATUSES))
    if bad_status:
        raise TrainingDataError(f"column 'status' has {bad_status}; allowed: {list(STATUSES)}")
    quality = out["quality"].dropna()
    if ((quality < 0) | (quality > 1)).any():
        raise TrainingDataError(
            "column 'quality' must lie in [0, 1] (divide 0–100 metrics such as BLEU by 100); "
            f"found {quality.min():g}..{quality.max():g}"
        )
    for name in ("task_type", "suite", "config_hash", "model"):
        if out[name].isna().any() or (out[name].astype(str) == "").any():
            raise TrainingDataError(f"column {name!r} must be set on every row")
    types_per_suite = out.groupby("suite")["task_type"].nunique()
    mixed = types_per_suite[types_per_suite > 1].index.tolist()
    if mixed:
        raise TrainingDataError(f"suite(s) {mixed} appear with more than one task type")
    out["simulated"] = out["simulated"].fillna(False).astype(bool)
    for name in (
        "family",
        "parameter_size",
        "quantization",
        *_TEXT_PARAMS,
        "template",
        "template_text",
    ):
        out[name] = out[name].astype("string").fillna("").astype(object)
    return out


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the rows, independent of their order. The metric quality was read from
    counts: after `rescore --first` put another metric first, equal scores are still
    other data, which the evidence names (else the retrain stored nothing and kept
    warning of mixed metrics)."""
    extra = ("weight", "case_group", "quality_metric")
    columns = [c for c in (*REQUIRED_COLUMNS, *extra) if c in frame.columns]
    rows = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    digest = hashlib.sha256(np.sort(rows).tobytes())
    digest.update(",".join(columns).encode())
    return digest.hexdigest()


def config_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per config: its identity and configuration features."""
    configs = frame.drop_duplicates("config_hash")[list(CONFIG_COLUMNS)]
    return add_parameter_b(configs).set_index("config_hash", drop=False)
