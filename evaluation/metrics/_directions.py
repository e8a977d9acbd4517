"""Which way is better on each built-in metric, known without the metrics themselves
(their scorers import numpy, the backends, the sandbox): `evalflow show` ranks its
leaderboard by the first metric's, the view and the monitor colour scores by it. The
registry (``_registry``) declares each built-in metric's direction from this table."""

#: Built-in metric -> whether higher is better.
HIGHER_IS_BETTER = {
    "exact_match": True,
    "contains": True,
    "regex": True,
    "rouge1": True,
    "rouge2": True,
    "rougeL": True,
    "bleu": True,
    "chrf": True,
    "accuracy": True,
    "macro_f1": True,
    "echoes_prompt": False,  # echoing earns no credit
    "output_length": False,  # shorter is cheaper
    "latency_s": False,
    "ttft_s": False,
    "tokens_per_s": True,
    "pass@1": True,
    "tests_passed": True,
    "constraints": True,
    "retrieval_recall_at_k": True,
    "key_point_recall": True,
}

#: Built-in metrics that describe without ranking (neither higher nor lower is better):
#: compared, never given a verdict; the view colours none of their scores.
DESCRIPTIVE = frozenset({"output_length"})

#: Built-in metrics whose headline is a corpus value (the leaderboard's figure), not the
#: mean of their per-case scores: known without the metrics, as `show` words its ranking.
CORPUS_LEVEL = frozenset({"bleu", "chrf", "macro_f1"})
