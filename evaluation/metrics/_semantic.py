"""``semantic_similarity``: the cosine of the output's and a reference's embeddings from a
named embedding model, the best over the case's references (-1..1, higher is better).

The metric is named ``semantic_similarity`` (embedding model ``nomic-embed-text``) or
``semantic_similarity@MODEL``; a spec may write ``{semantic_similarity: {embed_model:
MODEL}}``, which is stored under the ``@`` name. The vectors come from an ``Embeds``
(``evaluation.embeddings.Embedder`` over the sweep's hosts) given at scoring time with
``with_embedder``; it asks for each (model, text) once per run, so the references of a
suite are embedded once whatever the number of configs. An empty output scores 0 and is
not sent; a case without references scores NaN. When the host cannot embed, the
outputs are left unscored with the error in their detail (``rescore`` tries again).
Scores from a simulated host's vectors carry the detail "SIMULATED embeddings".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from evaluation.backends.base import GenerationResult
from evaluation.errors import BackendError, MetricError
from evaluation.metrics._base import Metric, PerCaseFn, Scored
from evaluation.suites import Case

NAME = "semantic_similarity"
DEFAULT_EMBED_MODEL = "nomic-embed-text"
OPTIONS = ("embed_model",)


class Embeds(Protocol):
    """Where the metric's vectors come from (``evaluation.embeddings.Embedder``)."""

    def vectors(self, model: str, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order."""
        ...

    def simulated(self, model: str) -> bool:
        """Whether ``model``'s vectors came from the simulated backend."""
        ...


def embed_model_of(name: str) -> str | None:
    """The embedding model a metric name asks for; None when it is not this metric."""
    if name == NAME:
        return DEFAULT_EMBED_MODEL
    prefix, at, model = name.partition("@")
    return model.strip() or None if prefix == NAME and at else None


def name_with_options(metric: str, options: Any) -> str:
    """The stored name of ``{metric: options}`` from a spec; MetricError (one line, to
    be shown with the option's field) for a metric that takes no options, an unknown
    option or a bad value."""
    if metric != NAME:
        raise MetricError(f"metric '{metric}' takes no options; write it as a plain name")
    if not isinstance(options, Mapping):
        raise MetricError(f"expected a mapping of options ({', '.join(OPTIONS)})")
    unknown = [str(key) for key in options if key not in OPTIONS]
    if unknown:
        raise MetricError(f"unknown option '{unknown[0]}' (allowed: {', '.join(OPTIONS)})")
    model = options.get("embed_model", DEFAULT_EMBED_MODEL)
    if not isinstance(model, str) or not model.strip() or "@" in model:
        raise MetricError(
            f"embed_model must be an embedding model's name, e.g. "
            f"{DEFAULT_EMBED_MODEL}; got {model!r}"
        )
    return f"{NAME}@{model.strip()}"


def semantic_metric(name: str, task_types: tuple[str, ...]) -> Metric | None:
    """The metric for ``name`` (unbound: it scores only after ``with_embedder``)."""
    model = embed_model_of(name)
    if model is None:
        return None
    return Metric(
        name=name,
        description=(
            f"Cosine similarity (-1..1) of the output's and the closest reference's "
            f"embeddings from '{model}'."
        ),
        score_type="continuous",
        higher_is_better=True,
        corpus_level=False,
        per_case=_unbound(name),
        task_types=task_types,
        embed_model=model,
        bounds=(-1.0, 1.0),
    )


def with_embedder(metric: Metric, embedder: Embeds) -> Metric:
    """``metric`` scoring with ``embedder``'s vectors; other metrics unchanged."""
    if metric.embed_model is None:
        return metric
    return replace(metric, per_case=similarity(embedder, metric.embed_model))


def _unbound(name: str) -> PerCaseFn:
    def per_case(*_: Any) -> np.ndarray:
        raise MetricError(
            f"{name} needs an embedding model's host; score it with evalflow's score step "
            "(run or rescore), which gives it the sweep's hosts"
        )

    return per_case


def similarity(embedder: Embeds, model: str) -> PerCaseFn:
    """Per case: the highest cosine between the output and a reference."""

    def per_case(
        outputs: Sequence[str],
        cases: Sequence[Case],
        results: Sequence[GenerationResult] | None,
        labels: Sequence[str] | None,
    ) -> Scored:
        values = np.full(len(outputs), np.nan)
        details: list[str | None] = [None] * len(outputs)
        scorable = [i for i, case in enumerate(cases) if case.references]
        for i in scorable:
            if not outputs[i].strip():
                values[i] = 0.0
        said = [i for i in scorable if outputs[i].strip()]
        references = list(dict.fromkeys(r for i in said for r in cases[i].references))
        try:
            output_vectors = embedder.vectors(model, [outputs[i] for i in said])
            by_reference = dict(zip(references, embedder.vectors(model, references), strict=True))
        except BackendError as exc:
            for i in said:
                details[i] = f"not scored: embedding with '{model}' failed: {exc}"
            return Scored(values, tuple(details))
        for row, i in enumerate(said):
            values[i] = max(
                _cosine(output_vectors[row], by_reference[r]) for r in cases[i].references
            )
        if said and embedder.simulated(model):
            for i in scorable:
                details[i] = f"SIMULATED embeddings ({model})"
        return Scored(values, tuple(details))

    return per_case


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """a·b / (|a| |b|); 0 when either vector is zero."""
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / norms if norms > 0 else 0.0
