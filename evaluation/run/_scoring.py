"""Scoring stored generations: from generation rows to one value per (generation, metric)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.backends.base import GenerationResult
from evaluation.metrics import Embeds, Metric, Scored, with_embedder
from evaluation.metrics._echo import answer_parts
from evaluation.suites import Suite

TIMING_METRICS = frozenset({"latency_s", "ttft_s", "tokens_per_s"})
# Metrics that read the GenerationResults: timings, and what a pipeline recorded.
RESULT_METRICS = TIMING_METRICS | {"retrieval_recall_at_k"}
META_COLUMN = "meta"  # a pipeline's record of a generation (dict or JSON text), if joined
# Metrics that compare the answer with references or labels: they score the output without
# what it repeats of the prompt (evaluation/metrics/_echo.py).
ANSWER_METRICS = frozenset(
    {"exact_match", "contains", "regex", "bleu", "chrf", "accuracy", "macro_f1"}
    | {"rouge1", "rouge2", "rougeL", "key_point_recall"}
)


def reads_answer(name: str) -> bool:
    return name in ANSWER_METRICS or name.startswith("semantic_similarity")


def results_from_rows(rows: pd.DataFrame) -> list[GenerationResult]:
    """Rebuild GenerationResults from stored rows (what timing metrics read), with the
    pipeline's record from the ``meta`` column when the frame has one."""
    metas = rows[META_COLUMN].tolist() if META_COLUMN in rows else [None] * len(rows)
    return [
        GenerationResult(
            text=row.output,
            done_reason=row.done_reason or "",
            latency_s=_float(row.latency_s),
            ttft_s=_float(row.ttft_s, default=None),
            prompt_eval_count=None
            if pd.isna(row.prompt_eval_count)
            else int(row.prompt_eval_count),
            eval_count=int(row.eval_count or 0),
            eval_duration_ns=int(row.eval_duration_ns or 0),
            total_duration_ns=int(row.total_duration_ns or 0),
            simulated=bool(row.simulated),
            metadata=_meta(meta),
        )
        for row, meta in zip(rows.itertuples(index=False), metas, strict=True)
    ]


def _meta(value: object) -> dict:
    """A stored pipeline record as a dict (JSON columns come back as text on SQLite
    through pandas); anything else is no record."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _float(value: object, default: float | None = float("nan")) -> float | None:
    return default if value is None or pd.isna(value) else float(value)


def score_generations(
    generations: pd.DataFrame,
    suite: Suite,
    metrics: Sequence[Metric],
    *,
    embedder: Embeds | None = None,
) -> dict[str, np.ndarray]:
    """Scores of the successful generations in ``generations`` (rows of
    ``generations_frame``), aligned with its rows; failed generations are not scored.
    ``embedder`` gives the vectors of metrics that need an embedding model."""
    scored = score_generations_detailed(generations, suite, metrics, embedder=embedder)
    return {name: values.values for name, values in scored.items()}


def score_generations_detailed(
    generations: pd.DataFrame,
    suite: Suite,
    metrics: Sequence[Metric],
    *,
    embedder: Embeds | None = None,
) -> dict[str, Scored]:
    """``score_generations`` with each score's detail (failed tests, a scorer's error).
    A metric that scores a case from all its samples (pass@k) gets one config at a time."""
    if embedder is not None:
        metrics = [with_embedder(m, embedder) for m in metrics]
    by_id = {case.id: case for case in suite.cases}
    cases = [by_id[case_id] for case_id in generations["case_id"]]
    outputs = generations["output"].fillna("").tolist()
    answers = answer_parts(outputs, cases) if any(reads_answer(m.name) for m in metrics) else []
    needs_results = any(m.name in RESULT_METRICS for m in metrics)
    results = results_from_rows(generations) if needs_results else None
    labels = suite.labels or None
    out: dict[str, Scored] = {}
    raw = outputs
    for m in metrics:
        outputs = answers if reads_answer(m.name) else raw
        if not m.samples_together or "config_hash" not in generations:
            out[m.name] = m.score_details(outputs, cases, results, labels=labels)
            continue
        values = np.full(len(outputs), np.nan)
        details: list[str | None] = [None] * len(outputs)
        configs = generations["config_hash"].to_numpy()
        for config in dict.fromkeys(configs):
            at = np.flatnonzero(configs == config)
            part = m.score_details(
                [outputs[i] for i in at],
                [cases[i] for i in at],
                None if results is None else [results[i] for i in at],
                labels=labels,
            )
            values[at] = part.values
            for i, detail in zip(at, part.details, strict=True):
                details[i] = detail
        out[m.name] = Scored(values, tuple(details))
    return out
