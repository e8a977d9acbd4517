"""Constraint checks for open-ended writing, the bundled write-constrained suite, and
judge rubrics from YAML."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evaluation.errors import SpecError, SuiteError
from evaluation.metrics import check_constraints, get_metric
from evaluation.review.rubrics import load_rubric
from evaluation.suites import Case, load_suite

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "benchmarks" / "suites"


@pytest.mark.parametrize(
    ("output", "constraints", "met", "missed"),
    [
        ("one two three", {"min_words": 3, "max_words": 3}, 2, []),
        ("one two", {"min_words": 3}, 0, ["min_words: 2 words, fewer than 3"]),
        ("Keeps cold for 24 hours.", {"must_include": ["24 hours", "cold"]}, 1, []),
        ("Keeps colder.", {"must_include": ["cold"]}, 0, ["must_include: missing ['cold']"]),
        ("An Eco-Friendly bottle", {"must_not_include": ["eco-friendly"]}, 0, None),
        ("- a\n- b\n* c", {"bullets": 3}, 1, []),
        ("- a\n- b", {"bullets": 3}, 0, ["bullets: 2 bullets, not 3"]),
        ("1. a\n2) b\n3. c", {"numbered": 3}, 1, []),
        ("First.\n\nSecond.\n\n\nThird.", {"paragraphs": 3}, 1, []),
        ('```json\n{"a": 1, "b": 2}\n```', {"format": "json", "json_keys": ["a", "b"]}, 1, []),
        (
            '{"a": 1}',
            {"format": "json", "json_keys": ["a", "b"]},
            0,
            ["format: JSON lacks keys ['b']"],
        ),
        ("[1, 2]", {"format": "json"}, 0, ["format: not a JSON object"]),
        (
            '{"a": NaN}',
            {"format": "json", "json_keys": ["a"]},
            0,
            ["format: not a JSON object: NaN is not JSON (RFC 8259 has no NaN or Infinity)"],
        ),
        ("We regret the delay. Kind regards.", {"tone": "formal"}, 1, []),
        ("We don't mind.", {"tone": "formal"}, 0, None),
        ("Great news!", {"tone": "formal"}, 0, None),
        ("Why not?", {"ends_with": "?"}, 1, []),
    ],
)
def test_each_constraint_is_checked(output, constraints, met, missed) -> None:
    got_met, total, got_missed = check_constraints(output, constraints)
    assert got_met == met and total == len([k for k in constraints if k != "json_keys"])
    if missed is not None:
        assert got_missed == missed


def test_the_metric_is_the_share_met_with_what_was_missed() -> None:
    case = Case("c", "write", metadata={"constraints": {"max_words": 4, "bullets": 2}})
    scored = get_metric("constraints").score_details(["- a\n- b", "- a b c d"], [case, case])
    assert scored.values.tolist() == [1.0, 0.0]
    assert scored.details == (None, "max_words: 5 words, more than 4; bullets: 1 bullets, not 2")
    assert math.isnan(get_metric("constraints").score(["x"], [Case("d", "write")])[0])


def test_the_bundled_suite_loads_and_its_references_meet_their_constraints() -> None:
    suite = load_suite(SUITES / "write-constrained.jsonl")
    assert suite.task_type == "generation" and len(suite.cases) >= 15
    assert all(c.metadata["constraints"] for c in suite.cases)
    with_refs = [c for c in suite.cases if c.references]
    assert len(with_refs) >= 8
    scores = get_metric("constraints").score([c.references[0] for c in with_refs], with_refs)
    assert scores.tolist() == [1.0] * len(with_refs)


def test_an_unknown_constraint_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "w.suite.yaml").write_text(
        "name: w\nversion: '1'\ntask_type: generation\ndefault_metrics: [constraints]\n"
    )
    (tmp_path / "w.jsonl").write_text(
        '{"id": "a", "input": "x"}\n'
        '{"id": "b", "input": "x", "metadata": {"constraints": {"max_word": 5}}}\n'
    )
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "w.jsonl")
    assert info.value.line == 2 and info.value.field == "metadata.constraints.max_word"


def test_the_bundled_rubric_loads() -> None:
    rubric = load_rubric(SUITES / "write-constrained.rubric.yaml")
    assert list(rubric.criteria) == ["instructions", "quality", "content"]
    assert set(rubric.schema()["required"]) == {"rationale", "instructions", "quality", "content"}


@pytest.mark.parametrize(
    ("text", "field"),
    [("- a list\n", "<document>"), ("clarity: ''\n", "clarity"), ("two words: x\n", "two words")],
)
def test_a_bad_rubric_is_refused(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_rubric(path)
    assert info.value.field == field and info.value.path == str(path)
