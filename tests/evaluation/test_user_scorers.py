"""Scorers users write themselves: by module:function and by entry point, declared
direction and score type, errors recorded per generation, corpus form."""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.errors import MetricError, ReadNote
from evaluation.metrics import _user, get_metric, metric_problem
from evaluation.metrics._stored import (
    StoredDeclaration,
    forget_declarations,
    remember_declarations,
)
from evaluation.run._scoring import score_generations_detailed
from evaluation.suites import Case, Suite

CHECKS = '''
from evaluation.metrics import scorer

def _shares(cases, outputs):
    return sum("[source]" in o for o in outputs) / len(outputs)

@scorer(score_type="binary", higher_is_better=True, corpus=_shares)
def cites_source(case, output):
    """The output cites a source."""
    if output == "boom":
        raise ValueError("cannot read this output")
    return "[source]" in output

@scorer(score_type="ordinal", higher_is_better=False)
def hedges(case, output):
    count = output.count("maybe")
    return {"value": min(count, 3), "explanation": f"{count} hedge(s)"}

def undeclared(case, output):
    return 1.0
'''


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable package ``mypkg`` and an installed distribution whose entry point
    ``cites`` names ``mypkg.checks:cites_source`` (found by importlib.metadata)."""
    name = f"mypkg_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "checks.py").write_text(textwrap.dedent(CHECKS))
    info = tmp_path / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[evalflow.metrics]\ncites = {name}.checks:cites_source\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _user._loaded.cache_clear()
    yield tmp_path / name
    _user._loaded.cache_clear()
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def _name(package: Path, function: str) -> str:
    return f"{package.name}.checks:{function}"


def _case(cid: str = "c") -> Case:
    return Case(id=cid, input="say something", references=("x",))


def test_a_declared_scorer_is_a_metric_with_its_direction_and_type(package: Path) -> None:
    cites = get_metric(_name(package, "cites_source"))
    assert cites.score_type == "binary" and cites.higher_is_better
    assert cites.description == "The output cites a source."
    assert cites.score(["a [source]", "b"], [_case(), _case()]).tolist() == [1.0, 0.0]
    hedges = get_metric(_name(package, "hedges"))
    assert hedges.score_type == "ordinal" and not hedges.higher_is_better
    scored = hedges.score_details(["maybe maybe", "no"], [_case(), _case()])
    assert scored.values.tolist() == [2.0, 0.0]
    assert scored.details == ("2 hedge(s)", "0 hedge(s)")


def test_an_entry_point_names_a_scorer(package: Path) -> None:
    metric = get_metric("cites")
    assert metric.name == "cites" and metric.score_type == "binary"
    assert metric.score(["[source]"], [_case()]).tolist() == [1.0]
    assert metric_problem("cites") is None


def test_a_raising_scorer_gives_a_missing_score_with_the_error(package: Path) -> None:
    metric = get_metric(_name(package, "cites_source"))
    scored = metric.score_details(["ok [source]", "boom", "plain"], [_case()] * 3)
    assert scored.values[0] == 1.0 and math.isnan(scored.values[1]) and scored.values[2] == 0.0
    assert scored.details[1] == "error: ValueError: cannot read this output"


def test_the_corpus_form_is_the_headline(package: Path) -> None:
    metric = get_metric(_name(package, "cites_source"))
    assert metric.corpus_level
    outputs = ["[source]", "no", "no", "[source] too"]
    assert metric.corpus_score(outputs, [_case()] * 4) == 0.5
    assert metric.corpus_resampler(outputs, [_case()] * 4)(np.array([0, 0, 1])) == 2 / 3


def test_scoring_stored_generations_records_each_error(package: Path) -> None:
    suite = Suite("s", "1", "qa", ("exact_match",), (_case("a"), _case("b")))
    frame = pd.DataFrame(
        {"config_hash": ["h", "h"], "case_id": ["a", "b"], "output": ["x [source]", "boom"]}
    )
    metrics = [get_metric("exact_match"), get_metric(_name(package, "cites_source"))]
    scored = score_generations_detailed(frame, suite, metrics)
    assert scored["exact_match"].values.tolist() == [0.0, 0.0]
    cites = scored[_name(package, "cites_source")]
    assert cites.values[0] == 1.0 and math.isnan(cites.values[1])
    assert cites.details == (None, "error: ValueError: cannot read this output")


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("undeclared", "is not a declared scorer: decorate"),
        ("missing", "has no attribute 'missing'"),
    ],
)
def test_an_unusable_scorer_is_refused_by_name(package: Path, function: str, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        get_metric(_name(package, function))
    assert message in metric_problem(_name(package, function))


def test_an_unimportable_module_is_refused() -> None:
    problem = metric_problem("no_such_module_xyz.checks:f")
    assert problem.startswith("metric 'no_such_module_xyz.checks:f': cannot import")


def test_a_declaration_must_name_a_known_score_type() -> None:
    with pytest.raises(MetricError, match="binary, continuous, ordinal"):
        _user.scorer(score_type="percent")  # type: ignore[arg-type]


@pytest.fixture
def declared() -> Iterator[StoredDeclaration]:
    """A lower-is-better ordinal scorer's declaration, remembered as a command that reads
    results remembers the database's, for a module that is not installed here."""
    declaration = StoredDeclaration(
        metric="gone_pkg.checks:hedges",
        score_type="ordinal",
        higher_is_better=False,
        corpus_level=True,
        description="Hedges in the output.",
        source="gone_pkg.checks:hedges",
    )
    remember_declarations([declaration], "results.db")
    yield declaration
    forget_declarations()


def test_a_scorer_whose_module_is_gone_is_read_as_its_stored_declaration(
    declared: StoredDeclaration,
) -> None:
    with pytest.warns(ReadNote, match="read as it declared itself when it scored") as said:
        metric = get_metric(declared.metric)
    assert "(ordinal, lower is better, a corpus headline)" in str(said[0].message)
    assert (metric.score_type, metric.higher_is_better, metric.corpus_level) == (
        "ordinal",
        False,
        True,
    )
    assert metric.not_here.startswith("metric 'gone_pkg.checks:hedges': cannot import")
    with pytest.raises(MetricError, match="it cannot score here"):
        metric.score(["maybe"], [_case()])
    with pytest.warns(ReadNote):  # a sweep is still refused it: it must score
        assert metric_problem(declared.metric) == metric.not_here


def test_an_entry_point_not_installed_here_is_read_as_its_stored_declaration() -> None:
    gone = StoredDeclaration("hedges", "binary", True, False, "", "gone_pkg.checks:hedges")
    remember_declarations([gone], "results.db")
    try:
        with pytest.warns(ReadNote, match="no installed package names it in evalflow.metrics"):
            assert get_metric("hedges").score_type == "binary"
    finally:
        forget_declarations()
    with pytest.raises(MetricError, match="unknown metric 'hedges'"):
        get_metric("hedges")


def test_without_a_stored_declaration_the_refusal_says_why() -> None:
    remember_declarations([], "results.db")
    try:
        with pytest.raises(MetricError, match="keeps no declaration of it to read it with"):
            get_metric("gone_pkg.checks:hedges")
        remember_declarations(None, "older.db")  # an older read-only database: no table
        with pytest.raises(MetricError, match=r"older\.db keeps no scorers' declarations"):
            get_metric("gone_pkg.checks:hedges")
    finally:
        forget_declarations()
