"""Pipelines: how a case becomes an output through one or more model calls.

``single`` (one call, today's behaviour), ``map_reduce``, ``rag``, ``sections``, or a
user's async function named ``package.module:function``. The contract is in
``_contract`` and docs/pipelines.md; ``evaluation.run._pipelines`` runs a case.
"""

from evaluation._lazy import lazy_exports

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


# Imported on first use: the spec (and every CLI verb through it) reads ``_setting`` only,
# and the built-in pipelines bring numpy (retrieval).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BUILTINS": "evaluation.pipelines._registry",
        "Chunk": "evaluation.pipelines._chunking",
        "CorpusChunk": "evaluation.pipelines._retrieval",
        "Handles": "evaluation.pipelines._contract",
        "Hit": "evaluation.pipelines._retrieval",
        "PARAMETERS": "evaluation.pipelines._parameters",
        "Pipeline": "evaluation.pipelines._contract",
        "PipelineNotFound": "evaluation.pipelines._registry",
        "PipelineOutput": "evaluation.pipelines._contract",
        "PipelineParameter": "evaluation.pipelines._parameters",
        "PipelineSetting": "evaluation.pipelines._setting",
        "PipelineSpec": "evaluation.pipelines._setting",
        "SINGLE": "evaluation.pipelines._setting",
        "UNITS": "evaluation.pipelines._chunking",
        "Unit": "evaluation.pipelines._chunking",
        "all_of": "evaluation.pipelines._builtins",
        "chunk_text": "evaluation.pipelines._chunking",
        "estimate_tokens": "evaluation.pipelines._chunking",
        "pipeline": "evaluation.pipelines._contract",
        "resolve": "evaluation.pipelines._registry",
        "retrieve": "evaluation.pipelines._retrieval",
    },
    globals(),
)
