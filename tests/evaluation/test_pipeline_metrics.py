"""retrieval_recall_at_k and key_point_recall on hand-made cases and pipeline records,
and the pipeline record read back from a stored generation row."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from evaluation.backends.base import GenerationResult
from evaluation.content_words import content_words
from evaluation.errors import MetricError
from evaluation.metrics import get_metric
from evaluation.metrics._key_points import key_point_present
from evaluation.run._scoring import results_from_rows, score_generations_detailed
from evaluation.suites import Case, Suite


def result(**metadata) -> GenerationResult:
    return GenerationResult("answer", "stop", 0.1, 0.05, metadata=metadata)


EVIDENCE = Case(
    "q1", "When?", ("2021",), metadata={"evidence": [{"document": "d1", "start": 100, "end": 140}]}
)
IDS = Case("q2", "Who?", ("Lind",), metadata={"gold_chunk_ids": ["d2#3"]})
BOTH_PARTS = Case(
    "q3",
    "What?",
    ("x",),
    metadata={
        "evidence": [
            {"document": "d1", "start": 10, "end": 20},
            {"document": "d3", "start": 0, "end": 5},
        ]
    },
)
NO_GOLD = Case("q4", "Why?", ("y",))


def recall(cases, results) -> tuple[np.ndarray, tuple]:
    scored = get_metric("retrieval_recall_at_k").score_details(
        ["answer"] * len(cases), cases, results
    )
    return scored.values, scored.details


def test_an_evidence_span_counts_only_when_one_chunk_holds_it_whole() -> None:
    whole = result(retrieved_spans=[["d9", 0, 500], ["d1", 90, 150]])
    cut = result(retrieved_spans=[["d1", 0, 120], ["d1", 120, 240]])  # boundary at 120
    overlap = result(retrieved_spans=[["d1", 0, 120], ["d1", 100, 220]])  # overlap rescues
    other_doc = result(retrieved_spans=[["d2", 0, 1000]])
    values, _ = recall([EVIDENCE] * 4, [whole, cut, overlap, other_doc])
    assert values.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_gold_chunk_ids_and_all_evidence_needed() -> None:
    values, _ = recall(
        [IDS, IDS, BOTH_PARTS, BOTH_PARTS],
        [
            result(retrieved_chunk_ids=["d2#1", "d2#3"]),
            result(retrieved_chunk_ids=["d2#4"]),
            result(retrieved_spans=[["d1", 0, 30], ["d3", 0, 9]]),
            result(retrieved_spans=[["d1", 0, 30]]),  # half the evidence
        ],
    )
    assert values.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_every_scored_case_says_why_nothing_retrieved_included() -> None:
    """A 0 with nothing retrieved (no chunk passed min_similarity) had an empty why."""
    values, details = recall(
        [EVIDENCE, EVIDENCE, IDS, BOTH_PARTS],
        [
            result(retrieved_spans=[]),
            result(retrieved_spans=[["d1", 90, 150]]),
            result(retrieved_chunk_ids=[]),
            result(retrieved_spans=[["d1", 0, 30], ["d9", 0, 9]]),
        ],
    )
    assert values.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert "nothing was retrieved" in details[0] and "min_similarity" in details[0]
    assert details[1] == "every evidence span of the case is in the 1 chunk retrieved"
    assert "min_similarity" in details[2]
    assert details[3] == "1 of 2 evidence spans not in the 2 chunks retrieved"


def test_no_gold_or_no_retrieval_record_is_missing() -> None:
    values, details = recall([NO_GOLD, EVIDENCE], [result(), result()])
    assert np.isnan(values).all()
    assert details[0] is None and "no retrieval record" in details[1]
    values, _ = recall([EVIDENCE], None)
    assert math.isnan(values[0])


def test_malformed_gold_is_a_metric_error_naming_the_case() -> None:
    bad = Case("bad", "q", ("a",), metadata={"evidence": [{"document": "d1"}]})
    with pytest.raises(MetricError, match="case 'bad'"):
        recall([bad], [result(retrieved_spans=[])])


def test_retrieval_record_is_read_from_the_stored_meta_column() -> None:
    suite = Suite("rag", "1", "qa", ("contains",), (EVIDENCE,))
    rows = pd.DataFrame(
        {
            "case_id": ["q1", "q1", "q1"],
            "output": ["a", "b", "c"],
            "done_reason": ["stop"] * 3,
            "latency_s": [0.1] * 3,
            "ttft_s": [0.05] * 3,
            "prompt_eval_count": [1] * 3,
            "eval_count": [1] * 3,
            "eval_duration_ns": [1] * 3,
            "total_duration_ns": [1] * 3,
            "simulated": [False] * 3,
            # a JSON column read back through pandas (text), a dict, and no record
            "meta": [json.dumps({"retrieved_spans": [["d1", 0, 200]]}), {}, None],
        }
    )
    assert results_from_rows(rows)[0].metadata == {"retrieved_spans": [["d1", 0, 200]]}
    scored = score_generations_detailed(rows, suite, [get_metric("retrieval_recall_at_k")])
    values = scored["retrieval_recall_at_k"].values
    assert values[0] == 1.0 and np.isnan(values[1:]).all()


KEY_POINTS = Case(
    "s1",
    "Summarise.",
    ("ref",),
    metadata={
        "key_points": [
            "Revenue rose 4.2% to 310 million euros.",
            "Maria Lind became chief financial officer.",
            "The Leeds plant closes in 2026.",
        ]
    },
)


def test_key_point_recall_is_the_share_stated() -> None:
    outputs = [
        "Revenues grew by 4.2% to 310 million euros; Maria Lind was named chief financial "
        "officer, and the Leeds plant will close in 2026.",
        "Revenue rose to 301 million euros. Maria Lind became the chief financial officer.",
        "",
    ]
    scored = get_metric("key_point_recall").score_details(outputs, [KEY_POINTS] * 3)
    assert scored.values.tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert scored.details[0] is None
    assert "Revenue rose 4.2%" in scored.details[1] and "Leeds" in scored.details[1]
    assert math.isnan(get_metric("key_point_recall").score(["x"], [NO_GOLD])[0])


def test_the_matching_rule() -> None:
    said = set(content_words("In 2023 the board approved a dividend of 1.20 euros per share."))
    assert key_point_present("The board approved a 1.20 euro dividend per share", said)
    assert not key_point_present("The board approved a 1.25 euro dividend per share", said)
    # 2 of its 4 content words (board, dividend; not cut, staff): under 0.7
    assert not key_point_present("The board cut staff dividend", said)
    assert not key_point_present("the of and", said)  # no content words
