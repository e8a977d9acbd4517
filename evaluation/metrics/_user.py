"""Scorers users write themselves.

A scorer is a Python function ``(case, output) -> float | bool | dict | None`` declared
with ``@scorer(score_type=..., higher_is_better=...)``, so the statistics pick the
right test and direction. A sweep names it as ``module:function``
(``metrics: [exact_match, mypkg.checks:cites_source]``) or by the name of an entry point
in the ``evalflow.metrics`` group of an installed package. A ``dict`` result has
``value`` (float, bool or None) and may have ``explanation`` (text kept with the score).
``None`` or NaN means "cannot be scored". A scorer that raises, or returns a value its
``score_type`` does not allow (a ``binary`` scorer's 7, an infinite score), scores NaN
for that output with the reason kept as the score's detail; scoring goes on. ``corpus=``
names a ``(cases, outputs) -> float`` function giving the headline corpus value (as
BLEU's), with the per-case values used for paired statistics; if it raises or returns no
finite number, the corpus value is NaN with the reason as the aggregate's note.

Each scorer's declaration is stored when it scores; where its code does not import, a
command that reads results reads it with that declaration (``_stored``), and one that
scores refuses it.
"""

from __future__ import annotations

import importlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, get_args

import numpy as np

from evaluation.errors import MetricError, ReadNote, ScorerFailed, ScorerNotHere
from evaluation.metrics._base import Metric, Scored, ScoreType
from evaluation.metrics._stored import (
    StoredDeclaration,
    declared_as,
    declared_otherwise,
    stored_declaration,
    why_none_stored,
)
from evaluation.suites import Case

ENTRY_POINT_GROUP = "evalflow.metrics"
CaseScorer = Callable[[Case, str], Any]
CorpusScorer = Callable[[Sequence[Case], Sequence[str]], float]


@dataclass(frozen=True)
class ScorerDeclaration:
    score_type: ScoreType
    higher_is_better: bool
    description: str
    corpus: CorpusScorer | None


def scorer(
    *,
    score_type: ScoreType,
    higher_is_better: bool = True,
    description: str = "",
    corpus: CorpusScorer | None = None,
) -> Callable[[CaseScorer], CaseScorer]:
    """Declare a function ``(case, output) -> float | bool | dict | None`` a scorer."""
    if score_type not in get_args(ScoreType):
        raise MetricError(f"score_type must be one of {', '.join(get_args(ScoreType))}")
    if not isinstance(higher_is_better, bool):
        raise MetricError("higher_is_better must be True or False")

    def declare(fn: CaseScorer) -> CaseScorer:
        text = description or (fn.__doc__ or "").strip().split("\n")[0]
        fn.__evalflow_scorer__ = ScorerDeclaration(score_type, higher_is_better, text, corpus)  # type: ignore[attr-defined]
        return fn

    return declare


def user_metric(name: str) -> Metric | None:
    """The user's scorer called ``name`` ("module:function" or an entry point name), or
    None when ``name`` is neither; MetricError when it is one but cannot be used. Where
    its code does not load and a command that reads results remembered its stored
    declaration (``_stored``), that declaration's metric, which reads stored scores and
    scores nothing (``Metric.not_here``), said once in a ReadNote."""
    try:
        found = _loaded(name)
    except ScorerNotHere as exc:
        if (declared := stored_declaration(name)) is None:
            raise ScorerNotHere(f"{exc}{why_none_stored(name)}") from exc
        return _as_declared(declared, str(exc))
    if found is None and (declared := stored_declaration(name)) is not None:
        why = f"metric '{name}': no installed package names it in {ENTRY_POINT_GROUP}"
        return _as_declared(declared, why)
    return found


@cache
def _loaded(name: str) -> Metric | None:
    """``user_metric`` from the user's code alone: ScorerNotHere where it does not load."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module: any error it raises on import
            raise ScorerNotHere(f"metric '{name}': cannot import {module_name}: {exc}") from exc
        fn = getattr(module, attribute, None)
        if fn is None:
            raise ScorerNotHere(f"metric '{name}': {module_name} has no attribute '{attribute}'")
        source = name
    else:
        found = entry_points(group=ENTRY_POINT_GROUP, name=name)
        if not found:
            return None
        entry = next(iter(found))
        try:
            fn = entry.load()
        except Exception as exc:  # the user's module: any error it raises on import
            raise ScorerNotHere(
                f"metric '{name}': cannot load entry point {entry.value}: {exc}"
            ) from exc
        source = entry.value
    return _as_metric(name, fn, source)


def entry_point_names() -> tuple[str, ...]:
    return tuple(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))


def _as_declared(declared: StoredDeclaration, why: str) -> Metric:
    """The metric ``declared`` describes, for a scorer whose code does not load
    (``why``): its stored scores are read with its direction and score type; scoring
    raises MetricError."""
    name = declared.metric
    said = why.removeprefix(f"metric '{name}': ")
    warnings.warn(
        f"{name}: its scorer's code is not importable here ({said}); read as it declared "
        f"itself when it scored ({declared_as(declared)}): its scores as stored, nothing "
        f"rescored{declared_otherwise(name)}",
        ReadNote,
        stacklevel=2,
    )

    def cannot_score(*_args: object) -> Any:
        raise MetricError(f"{why}: it cannot score here")

    return Metric(
        name=name,
        description=declared.description or f"user scorer {name}",
        score_type=declared.score_type,  # type: ignore[arg-type]  # stored as it was declared
        higher_is_better=declared.higher_is_better,
        corpus_level=declared.corpus_level,
        per_case=cannot_score,
        corpus=cannot_score if declared.corpus_level else None,
        source=declared.source,
        not_here=why,
    )


def _as_metric(name: str, fn: Any, source: str) -> Metric:
    declaration = getattr(fn, "__evalflow_scorer__", None)
    if not callable(fn) or not isinstance(declaration, ScorerDeclaration):
        raise MetricError(
            f"metric '{name}' is not a declared scorer: decorate the function with "
            "@evaluation.metrics.scorer(score_type='binary'|'continuous'|'ordinal', "
            "higher_is_better=True|False)"
        )
    corpus = declaration.corpus
    return Metric(
        name=name,
        description=declaration.description or f"user scorer {name}",
        score_type=declaration.score_type,
        higher_is_better=declaration.higher_is_better,
        corpus_level=corpus is not None,
        per_case=_per_case(fn, declaration.score_type),
        corpus=_corpus(name, corpus) if corpus is not None else None,
        source=source,
    )


def _per_case(fn: CaseScorer, score_type: ScoreType) -> Callable[..., Scored]:
    def score(outputs, cases, results, labels) -> Scored:
        values = np.full(len(outputs), np.nan)
        details: list[str | None] = [None] * len(outputs)
        for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
            try:
                values[i], details[i] = _value(fn(case, output), score_type)
            except Exception as exc:  # a user's scorer failing on one output: record it
                details[i] = f"error: {type(exc).__name__}: {exc}"[:1000]
        return Scored(values, tuple(details))

    return score


def _value(result: Any, score_type: ScoreType) -> tuple[float, str | None]:
    detail = None
    if isinstance(result, dict):
        if "value" not in result:
            raise MetricError(f"a dict result needs a 'value' key, got keys {sorted(result)}")
        rest = {k: v for k, v in result.items() if k != "value"}
        detail = rest.get("explanation") if set(rest) == {"explanation"} else None
        if rest and detail is None:
            detail = json.dumps(rest, default=str)
        result = result["value"]
    if result is None:
        return math.nan, detail
    if not isinstance(result, bool | int | float | np.integer | np.floating):
        raise MetricError(f"expected a float, bool, dict or None, got {type(result).__name__}")
    value = float(result)
    if math.isnan(value):
        return value, None if detail is None else str(detail)
    problem = _kind_problem(value, score_type)
    if problem is not None:
        return math.nan, f"not scored: {problem}"
    return value, None if detail is None else str(detail)


def _kind_problem(value: float, score_type: ScoreType) -> str | None:
    """Why ``value`` cannot be a score of ``score_type``, or None."""
    if not math.isfinite(value):
        return f"the scorer returned {value}, not a finite number"
    if score_type == "binary" and value not in (0.0, 1.0):
        return f"a binary scorer returns 0 or 1 (or True/False), got {value:g}"
    if score_type == "ordinal" and not value.is_integer():
        return f"an ordinal scorer returns whole numbers, got {value:g}"
    return None


def _corpus(name: str, fn: CorpusScorer) -> Callable[..., Callable[[np.ndarray], float]]:
    def corpus(outputs, cases, labels) -> Callable[[np.ndarray], float]:
        def resample(idx: np.ndarray) -> float:
            try:
                value = float(fn([cases[i] for i in idx], [outputs[i] for i in idx]))
            except Exception as exc:  # the user's function: any error it raises
                text = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
                raise ScorerFailed(f"{name}'s corpus function raised {text}") from exc
            if not math.isfinite(value):
                raise ScorerFailed(f"{name}'s corpus function returned {value}")
            return value

        return resample

    return corpus
