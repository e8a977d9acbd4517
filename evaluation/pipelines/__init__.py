"""Pipelines: how a case becomes an output through one or more model calls.

``single`` (one call, today's behaviour), ``map_reduce``, ``rag``, ``sections``, or a
user's async function named ``package.module:function``. The contract is in
``_contract`` and docs/pipelines.md; ``evaluation.run._pipelines`` runs a case.
"""

from evaluation.pipelines._builtins import all_of
from evaluation.pipelines._chunking import UNITS, Chunk, Unit, chunk_text, estimate_tokens
from evaluation.pipelines._contract import Handles, Pipeline, PipelineOutput, pipeline
from evaluation.pipelines._parameters import PARAMETERS, PipelineParameter
from evaluation.pipelines._registry import BUILTINS, PipelineNotFound, resolve
from evaluation.pipelines._retrieval import CorpusChunk, Hit, retrieve
from evaluation.pipelines._setting import SINGLE, PipelineSetting, PipelineSpec

__all__ = [
    "BUILTINS",
    "PARAMETERS",
    "SINGLE",
    "UNITS",
    "Chunk",
    "CorpusChunk",
    "Handles",
    "Hit",
    "Pipeline",
    "PipelineNotFound",
    "PipelineOutput",
    "PipelineParameter",
    "PipelineSetting",
    "PipelineSpec",
    "Unit",
    "all_of",
    "chunk_text",
    "estimate_tokens",
    "pipeline",
    "resolve",
    "retrieve",
]
