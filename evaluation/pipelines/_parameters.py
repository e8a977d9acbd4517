"""Pipeline parameters: the knobs a pipeline declares, what values each accepts.

Two kinds. The generation-parameter table (``evaluation.spec._params``) holds the
ones the issue names for the grid: chunk_size, chunk_overlap, retrieve_k,
min_similarity, parallel, embed_model; their rules, the config hash, the configs
table's columns and parameter effects come from there (``in_table``), with the default
a pipeline gives them here. Every other parameter (map_reduce's mode and prompts, a
user pipeline's own) is defined here and stored with the config's pipeline setting.

Built-in pipelines declare theirs from ``PARAMETERS``; a user pipeline declares its own
(``@pipeline(parameters={"passes": int})``), and a name it shares with ``PARAMETERS``
gets that parameter's rule. Any declared parameter can be fixed in the spec's
``pipeline:`` block or varied in its ``grid:``; either way its value is part of the
config hash.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Kind = type  # int, float, bool, str or dict (named prompts)
REQUIRED = object()  # the default of a parameter the spec must give


@dataclass(frozen=True)
class PipelineParameter:
    """One pipeline parameter: its type, the rule its values follow (as an error message
    states it) and its default (``REQUIRED`` when the spec must give it)."""

    name: str
    kind: Kind
    rule: str = ""
    accepts: Callable[[Any], bool] = lambda _value: True
    default: Any = None
    doc: str = ""
    in_table: bool = False  # a generation parameter (rules and hash from that table)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused, or None."""
        if not _is_kind(value, self.kind):
            expected = {int: "an integer", float: "a number", bool: "true or false",
                        str: "text", dict: "a mapping of names to prompts"}[self.kind]  # fmt: skip
            return f"{self.name} must be {expected}, got {value!r}"
        if self.kind is float and not math.isfinite(value):
            return f"{self.name} must be a finite number, got {value!r}"
        if self.kind is dict and not value:
            return f"{self.name} must name at least one prompt, got {{}}"
        if self.kind is dict and not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()
        ):
            return f"{self.name} must map names to non-empty prompt text"
        if self.kind is str and not value.strip():
            return f"{self.name} must not be empty"
        if not self.accepts(value):
            return f"{self.name} {self.rule}, got {value!r}"
        return None

    def normalise(self, value: Any) -> Any:
        """Floats stay floats (``min_similarity: 0`` hashes as 0.0)."""
        return float(value) if self.kind is float else value


def _is_kind(value: Any, kind: Kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


PARAMETERS: dict[str, PipelineParameter] = {
    p.name: p
    for p in (
        PipelineParameter("chunk_size", int, default=2000, in_table=True,
                          doc="units per chunk (see unit)"),
        PipelineParameter("chunk_overlap", int, default=200, in_table=True,
                          doc="units shared by consecutive chunks (< chunk_size)"),
        PipelineParameter("unit", str, "must be tokens or characters",
                          lambda v: v in ("tokens", "characters"), "tokens",
                          "what chunk_size counts: whitespace tokens or characters"),
        PipelineParameter("mode", str, "must be parallel or refine",
                          lambda v: v in ("parallel", "refine"), "parallel",
                          "map_reduce: map calls at once, or one by one refining"),
        PipelineParameter("retrieve_k", int, default=10, in_table=True,
                          doc="chunks retrieved per question (not top_k, a sampling option)"),
        PipelineParameter("min_similarity", float, default=0.0, in_table=True,
                          doc="least cosine similarity of a retrieved chunk"),
        PipelineParameter("parallel", bool, default=True, in_table=True,
                          doc="sections: generate at once, or in order seeing earlier ones"),
        PipelineParameter("embed_model", str, default=REQUIRED, in_table=True,
                          doc="the embedding model (e.g. nomic-embed-text)"),
        PipelineParameter("corpus", str, default=REQUIRED,
                          doc="rag: JSONL file of {id, text} documents, relative to the spec"),
        PipelineParameter("map_prompt", str, default=(
            "Read this part of a longer document and note everything that helps with "
            "the task.\n\nTask: {task}\n\nPart {index} of {count}:\n{chunk}")),
        PipelineParameter("reduce_prompt", str, default=(
            "Notes on each part of a document follow. Using them, do the task.\n\n"
            "Task: {task}\n\n{partials}")),
        PipelineParameter("refine_prompt", str, default=(
            "Task: {task}\n\nAnswer so far:\n{answer}\n\nRefine it with this next part "
            "({index} of {count}) of the document:\n{chunk}")),
        PipelineParameter("answer_prompt", str, default=(
            "Answer the question using the context.\n\nContext:\n{context}\n\n"
            "Question: {task}")),
        PipelineParameter("sections", dict, default=REQUIRED,
                          doc="sections: section name -> prompt over {document}"),
        PipelineParameter("assembly_prompt", str, default="",
                          doc="sections: optional call joining the sections ({sections})"),
    )
}  # fmt: skip
