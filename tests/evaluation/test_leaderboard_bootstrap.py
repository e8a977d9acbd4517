"""Corpus metrics' bootstrap intervals depend on the outputs, not on the order in which
concurrent generations happened to be stored."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.compare._leaderboard import aggregate_rows
from evaluation.metrics import get_metrics
from tests.support.results_db import make_suite


def _generations(n: int, order: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = ["answer", "reply", "the", "a", "maybe"]
    outputs = [" ".join(rng.choice(words, 3)) + f" {i}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "config_hash": "h1",
            "case_id": [f"c{i:03d}" for i in range(n)],
            "sample_index": 0,
            "status": "ok",
            "output": outputs,
            "latency_s": 0.5,
            "ttft_s": 0.1,
            "tokens_per_s": 30.0,
            "truncated": False,
        }
    )
    return frame.iloc[order].reset_index(drop=True)


def test_the_same_outputs_stored_in_another_order_give_the_same_corpus_interval():
    n = 24
    suite = make_suite(n)
    scores = pd.DataFrame(columns=["config", "case_id", "sample_index", "group", "metric", "value"])
    rows = []
    for order in (np.random.default_rng(1).permutation(n), np.arange(n)[::-1]):
        (bleu, *_) = aggregate_rows(_generations(n, order), scores, get_metrics(["bleu"]), suite)
        rows.append((bleu["metric"], bleu["mean"], bleu["ci_low"], bleu["ci_high"]))
    assert rows[0][2] < rows[0][1] < rows[0][3]  # a real interval around corpus BLEU
    assert rows[0] == rows[1]
