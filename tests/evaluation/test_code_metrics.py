"""Code extraction, pass@k against hand-computed values, and the code metrics end to end
on stored-generation frames (sandboxed; needs bubblewrap, which CI installs)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.errors import SuiteError
from evaluation.metrics import extract_code, get_metric, metric_problem, pass_at_k
from evaluation.run._scoring import score_generations_detailed
from evaluation.statistics import compare_scores, summarize
from evaluation.suites import Case, ForgeableTestWarning, Suite, load_suite

REPO = Path(__file__).resolve().parents[2]
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (.ci/run does)",
)
PREFIX = 'from math import floor\n\ndef half(x: int) -> int:\n    """x // 2."""\n'


# --- extraction --------------------------------------------------------------------------


def test_a_fenced_block_defining_the_function_is_taken() -> None:
    output = (
        "Here is a helper:\n```python\nimport os\n```\nand the answer:\n"
        "```python\ndef half(x):\n    return x // 2\n```\nUsage:\n```\nhalf(4)\n```"
    )
    assert extract_code(output, "half", PREFIX) == (
        "from math import floor\ndef half(x):\n    return x // 2\n"
    )


def test_an_unclosed_fence_runs_to_the_end() -> None:
    output = "```py\ndef half(x):\n    return x // 2"
    assert extract_code(output, "half").endswith("return x // 2")


def test_without_a_fence_prose_before_the_code_is_dropped() -> None:
    output = "Sure! Here it is.\nimport math\ndef half(x):\n    return x // 2\n"
    assert extract_code(output, "half") == "import math\ndef half(x):\n    return x // 2\n"


def test_a_body_alone_completes_the_prefix() -> None:
    assert extract_code("    return x // 2\n", "half", PREFIX) == PREFIX + "    return x // 2\n"
    fenced = "```python\n    return x // 2\n```"
    assert extract_code(fenced, "half", PREFIX) == PREFIX + "    return x // 2\n"


def test_the_first_block_is_taken_when_none_defines_the_function() -> None:
    output = "```text\nnot code\n```\n```python\n    return 1\n```"
    assert extract_code(output, "half", "") == "    return 1\n"


# --- pass@k ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 2 / 5),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (5, 2, 3, 1 - 1 / 10),  # 1 - C(3,3)/C(5,3)
        (5, 2, 4, 1.0),  # n - c < k
        (10, 0, 5, 0.0),
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (200, 13, 100, 1 - math.comb(187, 100) / math.comb(200, 100)),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)


def test_pass_at_k_refuses_k_above_n() -> None:
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(3, 1, 4)


def test_a_sweep_cannot_ask_pass_at_k_with_fewer_samples() -> None:
    assert metric_problem("pass@5", 3) == "pass@5 needs samples_per_case >= 5, got 3"
    assert "unknown metric 'pass@0'" in metric_problem("pass@0", 3)


# --- the code suite ----------------------------------------------------------------------


def test_the_bundled_code_suite_loads_with_hidden_tests() -> None:
    suite = load_suite(REPO / "benchmarks" / "suites" / "code-python.jsonl")
    assert suite.task_type == "code" and len(suite.cases) >= 40
    difficulties = {c.metadata["difficulty"] for c in suite.cases}
    assert difficulties == {"easy", "medium", "hard"}
    assert sum("plausible_wrong" in c.metadata for c in suite.cases) >= 5
    for case in suite.cases:
        assert case.metadata["tests"] and case.metadata["prefix"] in case.input
        assert not any(test in case.input for test in case.metadata["tests"])


def test_a_code_case_without_tests_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.suite.yaml").write_text(
        "name: c\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    (tmp_path / "c.jsonl").write_text(
        '{"id": "a", "input": "x", "metadata": {"entry_point": "f"}}\n'
    )
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "c.jsonl")
    assert info.value.line == 1 and info.value.field == "metadata.tests"


@pytest.mark.parametrize(
    ("case", "field", "code_line"),
    [
        ({"tests": ["assert f(1) == 2", "assert f(1) = 2"]}, "metadata.tests[1]", 1),
        ({"tests": ["assert f(1) == 2\nif True:\nreturn"]}, "metadata.tests[0]", 3),
        (
            {"tests": ["assert f(1) == 2"], "references": ["def f(x)\n    return x + 1\n"]},
            "references[0]",
            1,
        ),
    ],
)
def test_a_code_case_whose_test_or_reference_is_not_python_is_refused(
    tmp_path: Path, case: dict, field: str, code_line: int
) -> None:
    (tmp_path / "c.suite.yaml").write_text(
        "name: c\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    good = {"id": "a", "input": "x", "metadata": {"entry_point": "f", "tests": ["f(1)"]}}
    bad = {"id": "b", "input": "x", "metadata": {"entry_point": "f", "tests": case["tests"]}}
    if "references" in case:
        bad["references"] = case["references"]
    (tmp_path / "c.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "c.jsonl")
    assert (info.value.line, info.value.field) == (2, field)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'c.jsonl'}:2: field '{field}': not valid Python: ")
    assert message.endswith(f" (line {code_line} of the code)") and "\n" not in message


REFERENCE = "import math\ndef f(x):\n    return x + 1\n"


@pytest.mark.parametrize(
    ("tests", "references", "field", "says"),
    [
        (["assert f(1) == 2", ""], [REFERENCE], "metadata.tests[1]", "got an empty string"),
        (["assert f(1) == 2", 42], [REFERENCE], "metadata.tests[1]", "non-empty string), got 42"),
        (["pass"], [REFERENCE], "metadata.tests[0]", "checks nothing"),
        (["assert f(1) == 2", "assert True"], [REFERENCE], "metadata.tests[1]", "checks nothing"),
        (["# f(1) == 2"], [], "metadata.tests[0]", "checks nothing"),
        (["assert sqrt(f(3)) == 2"], [REFERENCE], "metadata.tests[0]", "uses sqrt, which"),
        (["assert f(1) == 2"], [REFERENCE, "def g(x):\n    return 2\n"], "references[1]",
         "does not define the entry point 'f'"),
    ],
)  # fmt: skip
def test_a_code_case_that_would_score_every_model_alike_is_refused(
    tmp_path: Path, tests: list, references: list[str], field: str, says: str
) -> None:
    (tmp_path / "c.suite.yaml").write_text(
        "name: c\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    case = {"id": "b", "input": "x", "metadata": {"entry_point": "f", "tests": tests}}
    if references:
        case["references"] = references
    (tmp_path / "c.jsonl").write_text(json.dumps(case) + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "c.jsonl")
    assert (info.value.line, info.value.field) == (1, field)
    assert says in str(info.value), str(info.value)


def test_names_the_reference_defines_or_the_test_imports_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "c.suite.yaml").write_text(
        "name: c\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    tests = [
        "assert math.sqrt(f(3)) == 2",  # the reference imports math
        "from math import sqrt\nassert sqrt(f(3)) == 2",
        "assert [f(x) for x in range(2)] == [1, 2]",
        "f(1)",  # runs without an exception
    ]
    case = {"id": "b", "input": "x", "references": [REFERENCE]}
    case["metadata"] = {"entry_point": "f", "tests": tests}
    (tmp_path / "c.jsonl").write_text(json.dumps(case) + "\n")
    with pytest.warns(ForgeableTestWarning):  # accepted, but math.sqrt(...) calls __float__
        assert load_suite(tmp_path / "c.jsonl").cases[0].metadata["tests"] == tests


def test_a_test_checked_inside_the_programs_process_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "c.suite.yaml").write_text(
        "name: c\nversion: '1'\ntask_type: code\ndefault_metrics: [pass@1]\n"
    )
    tests = ["assert f(1) == 2", "assert abs(f(1) - 2) < 1e-9"]
    case = {"id": "b", "input": "x", "metadata": {"entry_point": "f", "tests": tests}}
    (tmp_path / "c.jsonl").write_text(json.dumps(case) + "\n")
    with pytest.warns(ForgeableTestWarning, match=r"c.jsonl:1: metadata.tests\[1\]: checked"):
        load_suite(tmp_path / "c.jsonl")


@needs_bwrap
def test_reference_solutions_pass_and_plausible_wrong_ones_fail_an_edge_case() -> None:
    suite = load_suite(REPO / "benchmarks" / "suites" / "code-python.jsonl")
    metric = get_metric("tests_passed")
    refs = metric.score([f"```python\n{c.references[0]}```" for c in suite.cases], suite.cases)
    assert refs.tolist() == [1.0] * len(suite.cases)
    tricky = [c for c in suite.cases if "plausible_wrong" in c.metadata]
    wrong = metric.score([c.metadata["plausible_wrong"] for c in tricky], tricky)
    assert ((wrong > 0) & (wrong < 1)).all(), dict(zip([c.id for c in tricky], wrong, strict=True))


# --- code metrics on stored generations ----------------------------------------------------


def _code_suite() -> Suite:
    def case(cid: str, tests: list[str]) -> Case:
        meta = {"entry_point": "f", "prefix": "def f(x):\n", "tests": tests}
        return Case(id=cid, input="write f", metadata=meta)

    return Suite(
        name="mini",
        version="1",
        task_type="code",
        default_metrics=("pass@1",),
        cases=(
            case("inc", ["assert f(1) == 2", "assert f(-1) == 0"]),
            case("dbl", ["assert f(2) == 4", "assert f(0) == 0"]),
            case("neg", ["assert f(3) == -3"]),
        ),
    )


RIGHT = {"inc": "    return x + 1", "dbl": "    return 2 * x", "neg": "    return -x"}
WRONG = "    return x"  # passes dbl's f(0) == 0 only


def _frame(passing: dict[tuple[str, str], int], samples: int = 4) -> pd.DataFrame:
    """Generations of configs A and B: for each (config, case), ``passing`` of the
    ``samples`` samples are right."""
    rows = []
    for (config, case_id), right in passing.items():
        for s in range(samples):
            body = RIGHT[case_id] if s < right else WRONG
            rows.append(
                {"config_hash": config, "case_id": case_id, "sample_index": s, "output": body}
            )
    return pd.DataFrame(rows)


@needs_bwrap
def test_pass_at_k_per_problem_then_a_clustered_mean_and_a_paired_comparison() -> None:
    passing = {
        ("A", "inc"): 4,
        ("A", "dbl"): 2,
        ("A", "neg"): 1,
        ("B", "inc"): 1,
        ("B", "dbl"): 0,
        ("B", "neg"): 0,
    }
    frame = _frame(passing)
    metrics = [get_metric(n) for n in ("pass@1", "pass@2", "tests_passed")]
    scored = score_generations_detailed(frame, _code_suite(), metrics)

    expected = {key: pass_at_k(4, c, 2) for key, c in passing.items()}
    for i, row in frame.iterrows():
        key = (row.config_hash, row.case_id)
        assert scored["pass@2"].values[i] == pytest.approx(expected[key])
        assert scored["pass@1"].values[i] == float(row.sample_index < passing[key])
    wrong_dbl = frame.index[(frame.case_id == "dbl") & (frame.config_hash == "B")][0]
    assert scored["tests_passed"].values[wrong_dbl] == 0.5
    assert "AssertionError: expected 4, got 2" in scored["pass@1"].details[wrong_dbl]

    long = pd.concat(
        frame.rename(columns={"config_hash": "config"}).assign(
            metric=name, value=scored[name].values, group=None
        )
        for name in ("pass@1", "pass@2")
    )
    estimates = {(e.config, e.metric): e for e in summarize(long)}
    a1 = estimates[("A", "pass@1")]
    assert a1.mean == pytest.approx(np.mean([4 / 4, 2 / 4, 1 / 4])) and a1.n == 3
    a2 = estimates[("A", "pass@2")]
    assert a2.mean == pytest.approx(np.mean([expected[("A", c)] for c in ("inc", "dbl", "neg")]))
    per_case = long[long.metric == "pass@2"].groupby(["config", "case_id"])["value"].mean()
    comparison = compare_scores(
        per_case["A"].to_numpy(), per_case["B"].to_numpy(), score_type="continuous"
    )
    assert comparison.n_used == 3
    assert comparison.diff == pytest.approx(
        np.mean([expected[("A", c)] - expected[("B", c)] for c in ("inc", "dbl", "neg")])
    )


@needs_bwrap
def test_pass_at_k_with_too_few_samples_is_missing_with_the_reason() -> None:
    frame = _frame({("A", "inc"): 1}, samples=2)
    scored = score_generations_detailed(frame, _code_suite(), [get_metric("pass@3")])
    assert np.isnan(scored["pass@3"].values).all()
    assert scored["pass@3"].details[0] == "pass@3 needs at least 3 samples of 'inc', got 2"


@needs_bwrap
def test_the_code_demo_sweep_plans_pass_at_k_over_five_samples() -> None:
    from evaluation.spec import load_spec, make_plan

    spec = load_spec(REPO / "benchmarks" / "sweeps" / "demo-code.yaml")
    plan = make_plan(spec, len(load_suite(spec.suite).cases))
    assert spec.metrics == ("pass@1", "pass@5", "tests_passed")
    assert plan.generations == 6 * 45 * 5


def test_without_bubblewrap_a_code_metric_is_refused_when_the_spec_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evaluation.metrics import _code

    monkeypatch.setattr(shutil, "which", lambda name, **kwargs: None)
    _code._sandbox.cache_clear()
    try:
        problem = metric_problem("pass@1", 1)
    finally:
        _code._sandbox.cache_clear()
    assert problem.startswith("pass@1: cannot run code: bubblewrap (bwrap) is not found")
    assert metric_problem("exact_match", 1) is None


@needs_bwrap
def test_the_number_of_sandboxes_at_once_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluation.errors import MetricError
    from evaluation.metrics._code import code_execution

    monkeypatch.setenv("EVALFLOW_SANDBOX_PARALLEL", "3")
    assert code_execution().max_parallel == 3
    monkeypatch.setenv("EVALFLOW_SANDBOX_PARALLEL", "0")
    with pytest.raises(MetricError, match="EVALFLOW_SANDBOX_PARALLEL must be a whole number"):
        code_execution()
