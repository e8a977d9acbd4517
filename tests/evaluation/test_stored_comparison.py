"""A stored comparison is read back exactly as it was computed while its inputs are
unchanged, and computed again (and stored) once scores, the selection, the baseline, the
adjustment or the stored rows differ from what it was computed from."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import text
from sqlmodel import Session

from evaluation.compare import CurrentComparison, current_comparison, parse_selections
from evaluation.storage.comparisons import comparison_run
from evaluation.storage.db import make_engine
from tests.support.results_db import add_experiment, make_config, make_suite

N = 24
A, B, C = make_config("big:8b"), make_config("mid:3b"), make_config("small:1b", 0.7)
RNG = np.random.default_rng(11)
A_LOW = [0.0] * N  # scored the same on every case


def _scores(p: float) -> list[float]:
    return [float(x) for x in RNG.random(N) < p]


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(make_engine("sqlite://"), expire_on_commit=False) as s:
        suite = make_suite(N, groups=[f"g{i % 6}" for i in range(N)])
        add_experiment(
            s,
            "base",
            suite,
            {
                A: {"exact_match": _scores(0.9)},
                B: {"exact_match": _scores(0.6)},
                C: {"exact_match": [None, *_scores(0.4)[1:]]},  # one case unscorable
            },
        )
        add_experiment(
            s, "nightly", suite, {A: {"exact_match": _scores(0.5)}, B: {"exact_match": A_LOW}}
        )
        yield s


def same(read: CurrentComparison, computed: CurrentComparison) -> None:
    """Read back: every stored column as computed, significance, verdicts, markdown."""
    assert not read.computed and computed.computed
    assert read.rows == [{k: r[k] for k in read.rows[0]} for r in computed.rows]
    assert len(read.rows[0]) == 16  # the 15 stored columns and `significant`
    assert read.verdicts == computed.verdicts
    assert read.markdown == computed.markdown
    assert (read.run_label, read.simulated) == (computed.run_label, computed.simulated)


@pytest.mark.parametrize(
    ("experiments", "configs", "options"),
    [
        (["base"], None, {}),
        (["base"], None, {"adjust": "fdr_bh"}),
        (["base"], None, {"baseline": B.label}),
        (["base", "nightly"], None, {}),
        (["base", "nightly"], [f"base:{A.label}"], {"baseline": "nightly:" + A.label}),
    ],
)
def test_a_comparison_is_read_back_as_it_was_computed(session, experiments, configs, options):
    selections = parse_selections(experiments, configs)
    computed = current_comparison(session, selections, **options)
    read = current_comparison(session, selections, **options)
    same(read, computed)
    assert any(v is None for r in read.rows for v in r.values())  # NULLs stay None


def test_changed_scores_are_compared_again(session):
    selections = [("base", None)]
    before = current_comparison(session, selections)
    session.execute(
        text("UPDATE scores SET value = 1 - value WHERE metric = 'exact_match' AND value = 0")
    )
    after = current_comparison(session, selections)
    assert after.computed
    assert after.rows != [{k: r[k] for k in after.rows[0]} for r in before.rows]
    same(current_comparison(session, selections), after)


def test_another_adjustment_is_stored_beside_the_experiments_comparison(session):
    """`compare base --adjust fdr_bh` replaced the stored Holm comparison, so the export
    gave other p_adjusted values under the same name, with nothing to say which."""
    selections = [("base", None)]
    default = current_comparison(session, selections)
    bh = current_comparison(session, selections, adjust="fdr_bh")
    assert bh.computed and bh.run_label == "base, adjust fdr_bh"
    assert comparison_run(session, "base").adjust == "holm"
    same(current_comparison(session, selections), default)
    same(current_comparison(session, selections, adjust="fdr_bh"), bh)


@pytest.mark.parametrize("baseline", [B.label, B.hash[:8]])
def test_another_baseline_is_stored_beside_the_experiments_comparison(session, baseline):
    """`compare base --baseline B` compares fewer pairs; stored over the experiment's own
    comparison, it cut what `export --level comparisons` gives (a newcomer's 264 rows
    became 44) until `compare base` was run again."""
    selections = [("base", None)]
    default = current_comparison(session, selections)
    against_b = current_comparison(session, selections, baseline=baseline)
    assert against_b.run_label == f"base, baseline {B.label}"
    assert {(r["a"], r["b"]) for r in against_b.rows} == {(A.label, B.label), (C.label, B.label)}
    assert (len(default.rows), len(against_b.rows)) == (6, 4)  # 3 pairs, 2; two metrics
    same(current_comparison(session, selections), default)
    same(current_comparison(session, selections, baseline=B.label), against_b)


def test_naming_the_spec_baseline_is_the_experiments_comparison(session):
    session.execute(text("UPDATE experiments SET baseline = :b"), {"b": B.label})
    default = current_comparison(session, [("base", None)])
    assert default.run_label == "base"
    same(current_comparison(session, [("base", None)], baseline=B.hash), default)


def test_stored_rows_that_do_not_reproduce_are_compared_again(session):
    selections = [("base", None)]
    computed = current_comparison(session, selections)
    session.execute(text("UPDATE comparisons SET p_value = p_value / 2"))
    assert current_comparison(session, selections).computed
    same(current_comparison(session, selections), computed)


def test_a_selection_is_stored_under_its_configs_names_not_as_typed(session):
    """One selection typed three ways (a hash prefix, in upper case, with spaces) was
    stored three times, and with --baseline over the comparison without it."""
    typed = [B.hash[:6], B.hash[:6].upper(), f" {B.label} "]
    labels = {
        current_comparison(session, parse_selections(["base"], [A.label, ref])).run_label
        for ref in typed
    }
    assert labels == {f"base:{A.label}-vs-base:{B.label}"}
    selections = parse_selections(["base"], [A.label, B.label])
    against_a = current_comparison(session, selections, baseline=A.hash)
    assert against_a.run_label == f"base:{A.label}-vs-base:{B.label}, baseline {A.label}"
    assert not current_comparison(session, selections).computed  # still stored beside


@pytest.mark.parametrize(
    ("configs", "refused"),
    [
        (
            [A.label, A.hash[:8]],
            f"config '{A.label}' is named twice ('{A.label}', then '{A.hash[:8]}'): "
            "name each config once",
        ),
        (
            [A.label, A.label],
            f"config '{A.label}' is named twice ('{A.label}'): name each config once",
        ),
        ([A.label], f"nothing to compare: the selection has one config ('{A.label}')"),
    ],
)
def test_a_config_named_twice_or_alone_is_refused(session, configs, refused):
    from evaluation.errors import EvalError

    with pytest.raises(EvalError) as caught:
        current_comparison(session, parse_selections(["base"], configs))
    assert str(caught.value) == refused


def test_a_config_of_an_experiment_not_compared_says_so(session):
    """A mistyped experiment before the ':' read as an unknown config, nothing more."""
    from evaluation.errors import EvalError

    with pytest.raises(EvalError) as caught:
        current_comparison(session, parse_selections(["base", "nightly"], [f"nightyl:{A.label}"]))
    # the hint comes before the configs' listing, which a newcomer read past
    assert "'nightyl' is not an experiment of this comparison ('base', 'nightly'); " in str(
        caught.value
    )
    assert str(caught.value).index("nightyl' is not") < str(caught.value).index("configs of")
    # an experiment stored but left out of the comparison is said to be one
    with pytest.raises(EvalError) as caught:
        current_comparison(session, parse_selections(["base"], [f"nightly:{A.label}"]))
    assert "'nightly' is an experiment this comparison leaves out: name it beside base" in str(
        caught.value
    )
    for other in ("big:9b", "bgi:8b"):  # a model's own ':', right or misspelt (a newcomer)
        with pytest.raises(EvalError) as caught:
            current_comparison(session, parse_selections(["base", "nightly"], [other]))
        assert "is not an experiment" not in str(caught.value), other
