"""The markdown a review pair is shown as in the Prefect UI."""

from __future__ import annotations

from evaluation.review.markdown import describe


def test_describe_fences_outputs_that_contain_backticks():
    view = {
        "position": 1,
        "case_id": "c1",
        "input": "q",
        "references": [],
        "outputs": {
            "A": {"text": "```python\nx\n```", "latency_s": 1.5},
            "B": {"text": "b", "latency_s": None},
        },
    }
    text = describe(view)
    assert "````\n```python\nx\n```\n````" in text
    assert "A 1.50 s, B unknown" in text and "Reference" not in text


def test_a_blinded_pair_shows_no_latency():
    view = {
        "position": 1,
        "case_id": "c1",
        "input": "q",
        "references": ["r"],
        "outputs": {"A": {"text": "a"}, "B": {"text": "b"}},
    }
    text = describe(view)
    assert " s," not in text and "shown once the pair is revealed" in text
