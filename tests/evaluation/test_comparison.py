"""Comparisons from stored rows: statistics match the libraries, rows are stored, bad
input becomes a note in the report, and cross-experiment comparisons pair on cases."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats
from sqlmodel import Session
from statsmodels.stats.contingency_tables import mcnemar

from evaluation.compare._comparison import compare_experiment, compare_stored, parse_selections
from evaluation.compare._leaderboard import SIMULATED_BANNER
from evaluation.errors import EvalError, StorageError
from evaluation.storage.comparisons import comparisons_frame, replace_comparisons
from evaluation.storage.db import make_engine
from evaluation.storage.models import ConfigTelemetry
from evaluation.storage.repository import record_suite, register_experiment
from tests.support.reference_stats import multipletests
from tests.support.results_db import MISSING, add_experiment, make_config, make_suite

N = 30
A, B, C = make_config("big:8b"), make_config("mid:3b"), make_config("small:1b")
RNG = np.random.default_rng(7)
A_EM = [1.0] * N
B_EM = [1.0 if i % 2 else 0.0 for i in range(N)]
C_EM = [1.0 if i % 3 == 0 else 0.0 for i in range(N)]
A_LAT = list(2.0 + RNG.normal(0, 0.1, N))
B_LAT = list(1.0 + RNG.normal(0, 0.1, N))
C_LAT = list(1.5 + RNG.normal(0, 0.1, N))


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(make_engine("sqlite://"), expire_on_commit=False) as s:
        yield s


@pytest.fixture
def three(session: Session) -> Session:
    add_experiment(
        session,
        "three",
        make_suite(N),
        {A: {"exact_match": A_EM}, B: {"exact_match": B_EM}, C: {"exact_match": C_EM}},
        latency={A: A_LAT, B: B_LAT, C: C_LAT},
    )
    return session


def row(outcome, metric, a, b):
    hits = [
        r
        for r in outcome.rows
        if r["metric"] == metric and {r["config_a"], r["config_b"]} == {a.label, b.label}
    ]
    assert len(hits) == 1
    return hits[0]


def no_nan(markdown: str) -> bool:
    """No NaN printed as a value ("unscorable (NaN)" is the explanation, not a value)."""
    return re.search(r"\bnan\b", markdown.replace("(NaN)", ""), re.IGNORECASE) is None


def test_binary_and_latency_comparisons_match_the_libraries(three):
    outcome = compare_experiment(three, "three")

    # exact McNemar on the discordant pairs, Holm over the three pairs (statsmodels)
    def mcnemar_p(x, y):
        x, y = np.array(x), np.array(y)
        table = [[np.sum((x == 1) & (y == 1)), np.sum((x == 1) & (y == 0))],
                 [np.sum((x == 0) & (y == 1)), np.sum((x == 0) & (y == 0))]]  # fmt: skip
        return mcnemar(table, exact=True).pvalue

    pairs = [(A, B, A_EM, B_EM), (A, C, A_EM, C_EM), (B, C, B_EM, C_EM)]
    raw = [mcnemar_p(x, y) for _, _, x, y in pairs]
    holm = multipletests(raw, alpha=0.05, method="holm")[1]
    for (a, b, _, _), p, p_adj in zip(pairs, raw, holm, strict=True):
        r = row(outcome, "exact_match", a, b)
        assert r["test"] == "exact McNemar"
        assert r["p_value"] == pytest.approx(p)
        assert r["p_adjusted"] == pytest.approx(p_adj)
        assert r["n_used"] == N
    verdicts = outcome.verdicts()
    assert verdicts["exact_match"]["winner"] == A.label

    # latency is compared per generation, lower is better: paired t (scipy)
    r = row(outcome, "latency_s", B, C)
    sign = 1 if r["config_a"] == B.label else -1
    t = stats.ttest_rel(B_LAT, C_LAT)
    assert r["p_value"] == pytest.approx(t.pvalue)
    assert sign * r["diff"] == pytest.approx(np.mean(B_LAT) - np.mean(C_LAT))
    assert verdicts["latency_s"]["winner"] == B.label
    assert "latency_s (continuous, lower is better)" in outcome.markdown
    assert no_nan(outcome.markdown)


def test_rows_replace_the_runs_earlier_rows(three):
    outcome = compare_experiment(three, "three")
    assert replace_comparisons(three, outcome.run_label, outcome.rows, outcome.record()) == 6
    replace_comparisons(three, "other-run", outcome.rows[:2], outcome.record())
    replace_comparisons(three, outcome.run_label, outcome.rows, outcome.record())
    stored = comparisons_frame(three, "three")
    assert len(stored) == 6
    assert len(comparisons_frame(three, "other-run")) == 2
    assert set(stored["metric"]) == {"exact_match", "latency_s"}
    first = stored.iloc[0]
    assert first["p_adjusted"] == pytest.approx(outcome.rows[0]["p_adjusted"])


def test_baseline_compares_each_config_with_it(three):
    outcome = compare_experiment(three, "three", baseline=C.label, adjust="fdr_bh")
    em = [r for r in outcome.rows if r["metric"] == "exact_match"]
    assert len(em) == 2
    assert all(C.label in (r["config_a"], r["config_b"]) for r in em)
    assert "each versus small:1b t=0" in outcome.markdown
    assert "Benjamini–Hochberg" in outcome.markdown
    with pytest.raises(EvalError, match="not among the compared configs"):
        compare_experiment(three, "three", baseline="nope")


def test_pareto_front_uses_stored_latency_and_energy(three):
    experiment_id = 1
    three.add(ConfigTelemetry(experiment_id=experiment_id, config_hash=A.hash, source="x",
                              energy_j_per_generation=50.0))  # fmt: skip
    three.add(ConfigTelemetry(experiment_id=experiment_id, config_hash=C.hash, source="x",
                              energy_j_per_generation=10.0))  # fmt: skip
    three.flush()
    outcome = compare_experiment(three, "three")
    fronts = {(p["cost"], p["config"]) for p in outcome.tables["pareto"]}
    # A is best on quality; B fastest (p95); C uses less energy than A; B has no energy.
    assert {("latency_p95_s", A.label), ("latency_p95_s", B.label)} <= fronts
    assert ("latency_p95_s", C.label) not in fronts
    assert {("energy_j", A.label), ("energy_j", C.label)} == {
        f for f in fronts if f[0] == "energy_j"
    }
    assert "Pareto front: exact_match vs energy per generation (J)" in outcome.markdown


def test_bad_input_is_explained_in_the_report(session):
    """NaN scores, zero variance, n < 2 and configs without shared cases: notes, no crash,
    no NaN printed."""
    n = 6
    nan_cfg, flat_a, flat_b = (
        make_config("holes:1b"),
        make_config("flat:1b", 0.1),
        make_config("flat:1b", 0.2),
    )
    early, late, lone = make_config("early:1b"), make_config("late:1b"), make_config("lone:1b")
    em = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    scores = {
        nan_cfg: {"exact_match": [None, None, 1.0, 0.0, None, 1.0], "contains": [1.0] * n},
        flat_a: {"exact_match": em, "contains": [1.0] * n},
        flat_b: {"exact_match": em, "contains": [1.0] * n},
        early: {"exact_match": [1.0, 0.0, 1.0, MISSING, MISSING, MISSING], "contains": [1.0] * n},
        late: {"exact_match": [MISSING, MISSING, MISSING, 0.0, 1.0, 0.0], "contains": [1.0] * n},
        lone: {"exact_match": [MISSING, MISSING, 1.0, MISSING, MISSING, MISSING],
               "contains": [1.0] * n},
    }  # fmt: skip
    add_experiment(session, "bad", make_suite(n), scores)
    outcome = compare_experiment(session, "bad")
    md = outcome.markdown
    assert no_nan(md)

    r = row(outcome, "exact_match", nan_cfg, flat_a)
    assert r["n_used"] == 3 and r["n_excluded"] == 3
    assert "unscorable (NaN) for holes:1b" in md

    r = row(outcome, "exact_match", flat_a, flat_b)
    assert r["p_value"] == 1.0 and r["effect_size"] is None
    assert "scored identically on every shared case" in r["note"]
    assert "differences have zero variance" in md  # power of a zero-variance pair
    assert "zero variance: every value is 1" in md  # the constant 'contains' metric

    r = row(outcome, "exact_match", early, late)
    assert r["n_used"] == 0 and r["p_value"] is None and r["diff"] is None
    assert "no case scored by both early:1b t=0 and late:1b t=0" in r["note"]

    r = row(outcome, "exact_match", lone, early)
    assert r["n_used"] == 1 and r["p_value"] is None and r["ci_low"] is None
    assert "n = 1 shared case" in r["note"]
    assert r["min_detectable_diff"] is None


def test_metric_without_scores_and_config_without_generations_are_noted(session):
    ok, failed = make_config("ok:1b"), make_config("failed:1b")
    add_experiment(
        session,
        "gaps",
        make_suite(4),
        {
            ok: {"exact_match": [1.0, 0.0, 1.0, 1.0], "regex": [None] * 4},
            failed: {"exact_match": [MISSING] * 4, "regex": [MISSING] * 4},
        },
    )
    outcome = compare_experiment(session, "gaps", metrics=["exact_match", "regex", "rougeL"])
    assert "rougeL: no scored generation of any selected config; not compared" in outcome.notes
    assert "exact_match: no scored generation for failed:1b t=0; left out" in outcome.notes
    assert "- rougeL: no scored generation" in outcome.markdown
    assert "no verdict on regex: no config has a scored case" in outcome.markdown
    assert no_nan(outcome.markdown)


def test_a_baseline_without_scores_falls_back_to_all_pairs(session):
    a, b, c = make_config("a:1b"), make_config("b:1b"), make_config("c:1b")
    add_experiment(
        session,
        "nobase",
        make_suite(5),
        {
            a: {"exact_match": [1.0, 1, 0, 1, 0], "rouge1": [None] * 5},
            b: {"exact_match": [0.0, 1, 0, 1, 1], "rouge1": [0.2, 0.4, 0.1, 0.5, 0.3]},
            c: {"exact_match": [0.0, 0, 0, 1, 1], "rouge1": [0.1, 0.3, 0.2, 0.4, 0.6]},
        },
        baseline=a.label,
    )
    outcome = compare_experiment(session, "nobase")  # the spec's baseline is the default
    assert f"rouge1: baseline {a.label} has no score; all pairs compared" in outcome.notes
    em = [r for r in outcome.rows if r["metric"] == "exact_match"]
    assert len(em) == 2  # versus the baseline
    assert len([r for r in outcome.rows if r["metric"] == "rouge1"]) == 3  # all pairs
    assert [c.metric for c in outcome.report.comparisons] == ["exact_match", "rouge1", "latency_s"]


def test_stored_comparison_pairs_experiments_on_shared_cases(session):
    suite = make_suite(N)
    x, y = make_config("x:8b"), make_config("y:3b")
    add_experiment(session, "baseline", suite, {x: {"exact_match": B_EM}, y: {"exact_match": C_EM}})
    nightly = [v if i < 20 else MISSING for i, v in enumerate(A_EM)]
    add_experiment(session, "nightly", suite, {x: {"exact_match": nightly}}, simulated=True)

    outcome = compare_stored(session, parse_selections(["nightly", "baseline"], [x.label]))
    names = [c.name for c in outcome.configs]
    assert names == [f"nightly:{x.label}", f"baseline:{x.label}"]
    assert outcome.run_label == f"nightly:{x.label}-vs-baseline:{x.label}"
    r = outcome.rows[0]
    assert r["n_used"] == 20 and r["n_excluded"] == 10
    assert r["p_value"] == pytest.approx(
        mcnemar([[10, 10], [0, 0]], exact=True).pvalue  # B_EM: 1 on odd cases
    )
    assert outcome.simulated and SIMULATED_BANNER in outcome.markdown
    assert "mixes simulated (nightly) and real experiments" in outcome.markdown
    assert outcome.report.effects == ()  # no parameter effects across experiments

    # baseline by experiment name; an experiment with no ref contributes all its configs
    outcome = compare_stored(
        session, parse_selections(["nightly", "baseline"], []), baseline="nightly"
    )
    assert len(outcome.configs) == 3
    assert outcome.report.comparisons[0].baseline == f"nightly:{x.label}"


def test_stored_comparison_refuses_what_cannot_be_compared(session):
    x = make_config("x:8b")
    gap = MISSING
    add_experiment(session, "left", make_suite(4), {x: {"exact_match": [1.0, 0, gap, gap]}})
    add_experiment(session, "right", make_suite(4), {x: {"exact_match": [gap, gap, 1.0, 0]}})
    add_experiment(session, "other", make_suite(4, name="other"), {x: {"exact_match": [1.0] * 4}})
    with pytest.raises(EvalError, match="no case has a successful generation in every"):
        compare_stored(session, [("left", None), ("right", None)])
    with pytest.raises(EvalError, match=r"different suites: left \(toy\), other \(other\)"):
        compare_stored(session, [("left", None), ("other", None)])
    with pytest.raises(EvalError, match="has no config 'nope'; its configs: "):
        compare_stored(session, [("left", "nope")])
    missing = r"no experiment named 'missing'; known experiments \(newest first\): "
    missing += "other, right, left$"
    with pytest.raises(StorageError, match=missing):
        compare_stored(session, [("missing", None)])
    both = r"no experiments named 'lefft', 'rihgt'; known experiments \(newest first\): other, "
    both += "right, left$"
    with pytest.raises(StorageError, match=both):  # every name not found, not the first
        compare_stored(session, [("lefft", None), ("rihgt", None), ("left", None)])


def test_real_experiments_get_a_plain_banner(three):
    outcome = compare_experiment(three, 1)
    assert outcome.markdown.startswith("**Real model outputs: three (suite toy)**")
    assert "SIMULATED" not in outcome.markdown


def test_parse_selections():
    assert parse_selections(["a", "b"]) == [("a", None), ("b", None)]
    assert parse_selections(["a", "b"], ["x:1b t=0"]) == [("a", "x:1b t=0"), ("b", "x:1b t=0")]
    assert parse_selections(["a", "b"], ["b:x:1b", "y"]) == [("a", "y"), ("b", "x:1b"), ("b", "y")]
    assert parse_selections(["a", "b"], ["a:h1"]) == [("a", "h1"), ("b", None)]
    with pytest.raises(EvalError):
        parse_selections([])


def test_an_experiment_without_generations_gives_a_report_that_says_so(session):
    suite = make_suite(3)
    record_suite(session, suite)
    register_experiment(session, name="empty", suite=suite, configs=[A], spec={}, spec_path="",
                        samples_per_case=1, metrics=["exact_match"], simulated=True)  # fmt: skip
    outcome = compare_experiment(session, "empty")
    assert outcome.rows == [] and outcome.verdicts() == {}
    lines = outcome.markdown.splitlines()
    assert lines[2:4] == ["# Comparison: empty", ""]
    assert lines[4] == "- exact_match: no scored generation of any selected config; not compared"
    assert "- no scored generations: nothing to compare" in lines
    assert lines[-1] == f"| {A.label} | empty | `{A.hash}` |"


def test_latency_not_measured_gets_no_verdict_and_says_so(session):
    """Issue 28.5: a config whose latency was not measured (stored as none) is not
    compared on it, and the comparison says why."""
    measured, unmeasured = make_config("measured:1b"), make_config("unmeasured:1b")
    add_experiment(
        session,
        "latency-gaps",
        make_suite(10),
        {measured: {"exact_match": [1.0] * 10}, unmeasured: {"exact_match": [0.0, 1.0] * 5}},
        latency={measured: [0.5] * 10, unmeasured: [None] * 10},
    )
    outcome = compare_experiment(session, "latency-gaps")
    note = "latency_s: not measured for unmeasured:1b t=0; no verdict on it for those"
    assert note in outcome.notes
    assert "wins on latency_s" not in outcome.markdown


def test_the_terminal_comparison_says_the_interval_is_unadjusted_and_p_is_adjusted():
    # The newcomer read "+0.110 [+0.027, +0.193] 0.094" (rougeL) as a contradiction:
    # the interval excludes 0, the Holm-adjusted p is not significant.
    from evaluation.compare import render_comparison_text

    row = {
        "metric": "rougeL",
        "a": "gemma3-270m plain",
        "b": "smollm2 concise",
        "diff": 0.110,
        "diff_ci_low": 0.027,
        "diff_ci_high": 0.193,
        "p_adjusted": 0.094,
        "significant": False,
    }
    text = render_comparison_text("my-qa", [row], {}, simulated=False)
    assert "+0.110 [+0.027, +0.193]" in text
    # The table's own header says so: a footnote alone, after every metric's table,
    # went unread (a newcomer's compare of 4 metrics).
    header = next(line for line in text.splitlines() if "diff A-B" in line)
    assert "diff A-B [unadj. 95% CI] p Holm-adj" in header
    flat = " ".join(text.split())
    assert "[unadj. 95% CI]: each pair's own interval, not adjusted for multiple" in flat
    assert "p Holm-adj: p Holm-adjusted" in flat and max(map(len, text.splitlines())) <= 100
    bh = render_comparison_text("my-qa", [row], {}, simulated=False, adjustment="fdr_bh")
    assert "p BH-adj" in bh and "p BH-adj: p Benjamini–Hochberg-adjusted" in " ".join(bh.split())


def test_a_pair_whose_interval_alone_excludes_0_is_marked_in_its_row():
    """Newcomer N15: "+27 [+15, +39]  0.064" (chrf, 12 cases) read as a contradiction;
    only the footnote after every table explained it. The row carries a mark, and one
    line under the table says what it means; a pair significant after adjustment keeps
    its '*', one whose interval holds 0 gets neither."""
    from evaluation.compare import render_comparison_text

    pairs = [
        ("gemma3-270m t=0", "gemma3-270m t=0.7", 27.0, 15.0, 39.0, 0.064, False),
        ("gemma3-270m t=0", "smollm2 t=0", 30.0, 20.0, 40.0, 0.001, True),
        ("gemma3-270m t=0.7", "smollm2 t=0", 3.0, -9.0, 15.0, 0.6, False),
        ("gemma3-270m t=0.7", "smollm2 t=0.7", -12.0, -20.0, -4.0, 0.08, False),
    ]
    rows = [
        {"metric": "chrf", "a": a, "b": b, "diff": d, "diff_ci_low": lo, "diff_ci_high": hi,
         "p_adjusted": p, "significant": sig}
        for a, b, d, lo, hi, p, sig in pairs
    ]  # fmt: skip
    lines = render_comparison_text("nc-real", rows, {}, simulated=False).splitlines()

    def mark(low: str) -> str:
        (row,) = [line for line in lines if f", {low}]" in line]
        return row.split()[-1]

    assert [mark(x) for x in ("+39.0", "+40.0", "-4.0")] == ["†", "*", "†"]
    assert next(line for line in lines if ", +15.0]" in line).rstrip().endswith("0.600")
    legend = "† interval unadjusted (it excludes 0); not significant after Holm's adjustment"
    assert lines[-1] == legend
    calm = render_comparison_text("nc-real", rows[1:3], {}, simulated=False)
    assert "†" not in calm


def test_one_metrics_differences_share_one_number_of_decimals():
    """A newcomer's compare printed "+0.80 [-0.22, +1.00]" above "+0.6 [-1.0, +1.0]"."""
    from evaluation.compare import render_comparison_text

    figures = ((0.8, -0.22, 1.0), (0.6, -1.0, 1.0), (0.1, -0.9, 1.0))
    rows = [
        {"metric": "contains", "a": f"m{i}", "b": f"n{i}", "diff": diff, "diff_ci_low": low,
         "diff_ci_high": high, "p_adjusted": 0.5, "significant": False}
        for i, (diff, low, high) in enumerate(figures)
    ]  # fmt: skip
    text = render_comparison_text("my-qa", rows, {}, simulated=False, all_pairs=True)
    assert "+0.80 [-0.22, +1.00]" in text and "+0.60 [-1.00, +1.00]" in text
    assert "+0.10 [-0.90, +1.00]" in text


def test_a_verdict_line_never_breaks_inside_a_config_name():
    """A newcomer could not copy a config's name from the verdict: the line wrapped in
    the middle of it ("sim-medium:3b" / "t=0.7 plain"), whether the verdict names configs
    by their full or their shown labels."""
    from evaluation.compare import render_comparison_text
    from evaluation.labels import distinguishing_labels

    names = [
        f"{model} t={t} n=64 seed=42 tpl={tpl}"
        for model in ("sim-large:8b", "sim-medium:3b")
        for t in (0, 0.7)
        for tpl in ("plain", "concise")
    ]
    rows = [
        {
            "metric": "exact_match",
            "a": a,
            "b": b,
            "diff": 0.0,
            "diff_ci_low": -0.1,
            "diff_ci_high": 0.1,
            "p_adjusted": 1.0,
            "significant": False,
        }
        for a, b in itertools.pairwise(names)
    ]
    shown = distinguishing_labels(names)
    assert shown[names[0]] == "sim-large:8b t=0 plain"
    for said in (names, [shown[n] for n in names]):
        verdict = "8 of 8 within noise of the best: " + ", ".join(said)
        text = render_comparison_text(
            "my-qa", rows, {"exact_match": {"verdict": verdict}}, simulated=False
        )
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if "within noise" in line)
        end = next(i for i, line in enumerate(lines) if "diff A-B" in line)
        block = lines[start:end]  # the verdict's lines, not the table's
        assert all(any(n in line for line in block) for n in said), block
        assert max(map(len, block)) <= 100


def test_a_config_is_named_by_every_name_the_leaderboard_and_compare_show(session):
    """`compare my-qa --config "gemma3-270m plain"` (as `show` and `compare` name it)
    was refused: only the hash and the full label "gemma3-270m t=0 tpl=plain" were."""
    from evaluation.compare._config_refs import compared_configs, find_experiment
    from evaluation.spec import Config, GenerationParams, PromptTemplate

    configs = [
        Config(model, GenerationParams(temperature=0.0), PromptTemplate(tpl))
        for model in ("gemma3-270m", "smollm2-135m")
        for tpl in ("plain", "concise")
    ]
    scores = {c: {"exact_match": [1.0, 0.0, 1.0, 0.0]} for c in configs}
    add_experiment(session, "my-qa", make_suite(4), scores)
    experiments = {"my-qa": find_experiment(session, "my-qa")}
    wanted = configs[0]
    assert wanted.label == "gemma3-270m t=0 tpl=plain"
    head = next(
        n for n in range(4, 16) if sum(c.hash.startswith(wanted.hash[:n]) for c in configs) == 1
    )
    for ref in ("gemma3-270m plain", wanted.label, wanted.hash, wanted.hash[:head]):
        (chosen,) = compared_configs(session, experiments, [("my-qa", ref)]).configs
        assert chosen.config_hash == wanted.hash, ref
    outcome = compare_stored(
        session, [("my-qa", "gemma3-270m plain"), ("my-qa", "gemma3-270m concise")]
    )
    assert {c.config_hash for c in outcome.configs} == {wanted.hash, configs[1].hash}
    with pytest.raises(EvalError) as caught:
        compared_configs(session, experiments, [("my-qa", "gemma3-270m")])
    assert str(caught.value) == (
        "config 'gemma3-270m' fits several configs of my-qa: "
        f"'gemma3-270m plain' ({configs[0].hash}); 'gemma3-270m concise' ({configs[1].hash}); "
        "name one of them (its name as listed, or its hash)"
    )


def test_config_names_in_errors_paste_back_into_a_shell(session):
    """A refused name lists the configs as show/compare print them, in single quotes a
    shell takes as they are: no repr escapes (a stop of "\\nQuestion:" read back as
    "\\\\nQuestion:" named nothing)."""
    import shlex

    from evaluation.compare._config_refs import compared_configs, find_experiment
    from evaluation.spec import Config, GenerationParams, PromptTemplate

    stop = GenerationParams(temperature=0.0, stop=("\nQuestion:",))
    plain = PromptTemplate("plain")
    configs = [
        Config("gemma3-270m", stop, plain),
        Config("smollm2-135m", GenerationParams(), plain),
    ]
    add_experiment(
        session, "stops", make_suite(4), {c: {"exact_match": [1.0] * 4} for c in configs}
    )
    experiments = {"stops": find_experiment(session, "stops")}
    with pytest.raises(EvalError, match="has no config 'zz'") as caught:
        compared_configs(session, experiments, [("stops", "zz")])
    listing = str(caught.value).split("its configs: ")[1]
    pasted = shlex.split(listing.split(" (")[0])[0]  # as a shell reads the first name
    assert "\\\\n" not in listing
    (chosen,) = compared_configs(session, experiments, [("stops", pasted)]).configs
    assert chosen.config_hash == configs[0].hash


def test_an_ambiguous_config_name_is_refused_with_its_candidates():
    from evaluation.labels import configs_named

    hashes, labels = ["abc1", "abd2", "ffe0"], ["m t=0", "m t=1", "m t=2"]
    assert configs_named("ab", hashes, labels) == ["abc1", "abd2"]  # the caller refuses
    assert configs_named("m", hashes, labels) == hashes  # a word all share: the caller refuses
    assert configs_named("t=1", hashes, labels) == ["abd2"]  # as the table shows it
    assert configs_named("abc", hashes, labels) == ["abc1"]


def test_two_configs_of_one_experiment_are_named_alike(session):
    """`compare E --config A --config B` named A by its distinguishing words alone
    ('stop=[...]') and B by "E:<full label>" ("as has nc2-stop:gemma3-270m t=0"): one
    experiment needs no prefix, and a label with no word of its own keeps them all."""
    from evaluation.spec import Config, GenerationParams, PromptTemplate

    plain = PromptTemplate("plain")
    stop = Config("gemma3-270m", GenerationParams(temperature=0.0, stop=("\nQ:",)), plain)
    bare = Config("gemma3-270m", GenerationParams(temperature=0.0), plain)
    scores = {c: {"exact_match": [1.0, 0.0, 1.0, 0.0]} for c in (stop, bare)}
    add_experiment(session, "one", make_suite(4), scores)
    outcome = compare_stored(session, [("one", stop.hash), ("one", bare.hash)])
    assert [c.name for c in outcome.configs] == [stop.label, bare.label]
    verdict = outcome.verdicts()["exact_match"]
    # tied on the mean, the two leave nothing to choose between: no best to name
    assert verdict["verdict"] == (
        "all 2 configs score 0.500 on exact_match: nothing to choose between"
    )
    scores[bare]["exact_match"] = [1.0, 0.0, 0.0, 0.0]
    add_experiment(session, "two", make_suite(4), scores)
    outcome = compare_stored(session, [("two", stop.hash), ("two", bare.hash)])
    verdict = outcome.verdicts()["exact_match"]["verdict"]
    assert f"within noise of the best, {stop.label} (0.500); significantly worse: " in verdict


def test_a_baseline_is_named_by_every_name_config_takes():
    """A newcomer's `compare --baseline` refused the label `show` prints and a hash
    prefix, which `--config` takes, with "not among the compared configs" listing it."""
    from evaluation.compare._config_refs import SelectedConfig, resolve_baseline

    def selected(h: str, label: str, shown: str) -> SelectedConfig:
        return SelectedConfig(label, "e", 1, h, label, shown)

    configs = [
        selected("9b97d1394bdca17f", "m:8b t=0.7 n=16 seed=42", "t=0.7 n=16"),
        selected("361b91cc0eb810c7", "m:8b t=0.7 seed=42", "t=0.7"),  # as show prints them
        selected("842141f95a56b4b7", "m:8b t=0 n=64 seed=42", "t=0 n=64"),
    ]
    for ref, expected in [
        ("m:8b t=0.7 n=16", "m:8b t=0.7 n=16 seed=42"),
        ("9b97", "m:8b t=0.7 n=16 seed=42"),
        ("t=0.7", "m:8b t=0.7 seed=42"),
        ("m:8b t=0 seed=42", "m:8b t=0 n=64 seed=42"),  # as written before n= was shown
    ]:
        assert resolve_baseline(ref, configs) == expected, ref
    twins = [configs[0], selected("1", "m:8b t=0.7 n=64 seed=42", "n=64")]
    with pytest.raises(EvalError, match=r"'m:8b t=0\.7 seed=42' fits several of the compared"):
        resolve_baseline("m:8b t=0.7 seed=42", twins)
    with pytest.raises(
        EvalError,
        match=r"not among the compared configs: 't=0\.7 n=16' \(9b97",  # as shown
    ):
        resolve_baseline("zz", configs)


def test_a_baseline_across_experiments_is_named_with_its_experiment():
    """A newcomer's `--baseline rd-a:b830bd` was refused although `--config` took it, and
    a bare hash two experiments share was refused telling them to give the hash."""
    from evaluation.compare._config_refs import SelectedConfig, resolve_baseline

    label = "m:1b t=0 n=128 ctx=2048"
    configs = [
        SelectedConfig(f"{e}:m:1b", e, i, "b830bd50d5a6e23b", label, "ctx=2048")
        for i, e in enumerate(("rd-a", "rd-b"))
    ]
    for ref in ("rd-a:b830bd", "rd-a:b830bd50d5a6e23b", "rd-a:m:1b t=0 ctx=2048", "rd-a:ctx=2048"):
        assert resolve_baseline(ref, configs) == "rd-a:m:1b", ref
    listed = "'rd-a:ctx=2048' \\(b830bd50d5a6e23b\\); 'rd-b:ctx=2048'"  # as show prints them
    with pytest.raises(EvalError, match=f"fits several of the compared configs: {listed}"):
        resolve_baseline("b830bd", configs)


def test_a_baseline_the_configs_left_out_is_compared_with_each_of_them(three):
    """`compare three --config A --config B --baseline C` refused C as "not among the
    compared configs" (or, named loosely, took a selected config for it): the baseline
    is what each config is compared with, so it is compared too."""
    outcome = compare_stored(three, [("three", A.label), ("three", B.label)], baseline=C.label)
    assert [c.name for c in outcome.configs] == [A.label, B.label, C.label]
    em = [r for r in outcome.rows if r["metric"] == "exact_match"]
    assert {(r["config_a"], r["config_b"]) for r in em} == {(A.label, C.label), (B.label, C.label)}
    assert row(outcome, "exact_match", A, C)["p_value"] == pytest.approx(
        mcnemar([[10, 0], [20, 0]], exact=True).pvalue  # A: all 1; C: 1 on every third case
    )
    assert "each versus small:1b t=0" in outcome.markdown
    # stored as the comparison that names the baseline with --config too
    named = compare_stored(
        three, [("three", A.label), ("three", B.label), ("three", C.label)], baseline=C.label
    )
    assert (
        outcome.run_label
        == named.run_label
        == (f"three:{A.label}-vs-three:{B.label}-vs-three:{C.label}, baseline {C.label}")
    )
    assert outcome.inputs_digest == named.inputs_digest
    # one config and a baseline are two configs to compare
    pair = compare_stored(three, [("three", A.label)], baseline=C.label)
    assert [c.name for c in pair.configs] == [A.label, C.label]
    # a name that fits several configs ("i": big, mid), one of them selected, is that one
    big = compare_stored(three, [("three", A.label), ("three", C.label)], baseline="i")
    assert [c.name for c in big.configs] == [A.label, C.label]
    assert big.report.comparisons[0].baseline == A.label
    with pytest.raises(EvalError, match="baseline 'i' fits several of the compared configs"):
        compare_stored(three, [("three", None)], baseline="i")


def test_a_baseline_takes_no_name_config_refuses(three):
    """A newcomer's `--baseline sim-larg` (a label cut short) and `--baseline 1b` picked a
    config where `--config` refused them: a baseline takes the names `--config` takes."""
    from evaluation.compare._config_refs import compared_configs, find_experiments

    experiments = find_experiments(three, ["three"])
    listing = f"'big:8b' ({A.hash}); 'mid:3b' ({B.hash}); 'small:1b' ({C.hash})"
    for ref in ("smal", "1b", "small:1"):
        with pytest.raises(EvalError, match="no config"):
            compare_stored(three, [("three", ref), ("three", A.label)])
        with pytest.raises(EvalError) as caught:
            compared_configs(three, experiments, [("three", None)], [ref])
        assert str(caught.value) == (
            f"baseline '{ref}' is not among the compared configs: {listing}"
        )
        with pytest.raises(EvalError) as caught:  # refused with every other bad name
            compare_stored(three, [("three", "nope")], baseline=ref)
        assert str(caught.value) == (
            f"experiment three has no config 'nope'; baseline '{ref}' is not among the "
            f"configs of three; the configs of three: {listing}"
        )
    for ref in ("small:1b", C.label, C.hash[:6], "three:small:1b", "small:1b t=0"):
        picked = compared_configs(three, experiments, [("three", None)], [ref])
        assert picked.baseline is not None and picked.baseline.config_hash == C.hash, ref


def test_every_name_that_picks_no_config_is_refused_in_one_line(three):
    """Two misspelt --config, or a misspelt --config and --baseline: the refusal named
    the first only (as it did for experiments before `find_experiments`)."""
    from evaluation.compare._config_refs import compared_configs, find_experiments

    listing = f"'big:8b' ({A.hash}); 'mid:3b' ({B.hash}); 'small:1b' ({C.hash})"
    with pytest.raises(EvalError) as caught:
        compare_stored(three, [("three", "nope"), ("three", "nada")])
    assert str(caught.value) == (
        f"experiment three has no configs 'nope', 'nada'; its configs: {listing}"
    )
    with pytest.raises(EvalError) as caught:
        compare_stored(three, [("three", "nope"), ("three", A.label)], baseline="nada")
    assert str(caught.value) == (
        "experiment three has no config 'nope'; baseline 'nada' is not among the configs of "
        f"three; the configs of three: {listing}"  # not "its": the baseline's line has none
    )
    experiments = find_experiments(three, ["three"])
    with pytest.raises(EvalError) as caught:
        compared_configs(three, experiments, [("three", None)], ["nope", "nada"])
    assert str(caught.value) == (
        "baselines 'nope', 'nada' are not among the compared configs; the configs of three: "
        + listing
    )
    with pytest.raises(EvalError) as caught:  # a name fitting several: those, then the rest
        compare_stored(three, [("three", "t=0"), ("three", "nope")])
    assert str(caught.value) == (
        f"config 't=0' fits several configs of three: {listing}; name one of them (its name "
        f"as listed, or its hash); experiment three has no config 'nope'; its configs: {listing}"
    )


def test_every_name_that_picks_no_config_of_several_experiments_is_refused_at_once(session):
    from evaluation.compare._config_refs import compared_configs, find_experiments

    x, y = make_config("x:8b"), make_config("y:3b")
    add_experiment(session, "left", make_suite(4), {x: {"exact_match": [1.0, 0, 1, 0]}})
    add_experiment(session, "right", make_suite(4), {y: {"exact_match": [1.0, 0, 1, 0]}})
    experiments = find_experiments(session, ["left", "right"])
    selections = parse_selections(["left", "right"], ["nope", "right:zz"])
    with pytest.raises(EvalError) as caught:
        compared_configs(session, experiments, selections, ["nada"])
    assert str(caught.value) == (
        "experiments left, right have no config 'nope'; experiment right has no config 'zz'; "
        "baseline 'nada' is not among the configs of left, right; "
        "name one experiment's config as EXPERIMENT:CONFIG; "
        f"configs of left: 'x:8b t=0' ({x.hash}); configs of right: 'y:3b t=0' ({y.hash})"
    )


def test_a_baseline_given_twice_must_name_one_config(three):
    """`--baseline A --baseline B` compared with B: the last one given, silently."""
    from evaluation.compare._config_refs import compared_configs, find_experiments

    experiments = find_experiments(three, ["three"])
    both = compared_configs(
        three, experiments, [("three", None)], [C.label, C.hash[:8], "small:1b"]
    )
    assert both.baseline is not None and both.baseline.config_hash == C.hash
    with pytest.raises(EvalError) as caught:
        compared_configs(three, experiments, [("three", None)], [A.label, C.label])
    assert str(caught.value) == (
        f"--baseline given twice names 2 configs: '{A.label}' ('big:8b'), "
        f"'{C.label}' ('small:1b'); give one baseline"
    )


def test_compare_wraps_its_prose_to_the_terminal_width():
    """At 120 columns compare wrapped its verdicts at 100 while `run` used all 120 (#47)."""
    from evaluation.compare import render_comparison_text

    row = {"metric": "exact_match", "a": "x", "b": "y", "diff": 0.0, "diff_ci_low": -0.1,
           "diff_ci_high": 0.1, "p_adjusted": 1.0, "significant": False}  # fmt: skip
    verdict = "2 of 2 within noise of the best: " + "a long explanation of the tie " * 12
    for columns in (120, 80):
        text = render_comparison_text(
            "my-qa", [row], {"exact_match": {"verdict": verdict}}, simulated=False, columns=columns
        )
        widths = [len(line) for line in text.splitlines()]
        assert max(widths) <= columns and max(widths) > columns - 15


def test_compares_pair_tables_fit_a_known_width_and_keep_whole_rows_without_one():
    """At 80 columns the demo's pair tables were 94 wide (two labels of up to 27 a row)
    and the banner 86: the labels wrap under themselves, a pair's numbers on its first
    line; with no width known (a file, a pipe) each pair is one row, as before."""
    from evaluation.compare import render_comparison_text

    labels = [f"sim-{size}:8b t={t} {tpl}" for size in ("large", "medium")
              for t in ("0", "0.7") for tpl in ("plain", "concise")]  # fmt: skip
    rows = [
        {"metric": "exact_match", "a": a, "b": b, "diff": 0.33, "diff_ci_low": 0.2,
         "diff_ci_high": 0.47, "p_adjusted": 0.032, "significant": True}
        for a, b in zip(labels, reversed(labels), strict=True)
    ]  # fmt: skip
    whole = render_comparison_text("demo", rows, {}, simulated=True)
    table = [line for line in whole.splitlines() if "+0.33 [+0.20, +0.47]" in line]
    assert len(table) == len(rows) and max(map(len, table)) > 80
    fitted = render_comparison_text("demo", rows, {}, simulated=True, columns=80, table_columns=80)
    assert max(map(len, fitted.splitlines())) <= 80
    lines = fitted.splitlines()
    first = lines.index(next(line for line in lines if "+0.33 [+0.20, +0.47]" in line))
    # the first pair: sim-large:8b t=0 plain - sim-medium:8b t=0.7 concise, its labels'
    # further words on the next line, under their columns
    assert lines[first].split()[:2] == ["sim-large:8b", "t=0"], lines[first]
    assert lines[first + 1].split() == ["plain", "concise"], lines[first + 1]
    assert lines[first - 1].split()[:2] == ["A", "B"]


def test_pair_tables_fit_80_columns_with_a_21_character_model_name():
    """The newcomer's F3: `smollm2-135m-instruct` (21 characters, one word) in A and B
    made every row and header of `compare nc-real` 81 wide at COLUMNS=80. The numbers'
    headers fold onto two lines, as wide as their numbers, and the labels get the room;
    a table that fits with one-line headers keeps them (the test above)."""
    from evaluation.compare import render_comparison_text

    labels = [f"{model} t={t}" for model in ("smollm2-135m-instruct", "gemma3-270m")
              for t in ("0", "0.7")]  # fmt: skip
    rows = [
        {"metric": "contains", "a": a, "b": b, "diff": 0.0, "diff_ci_low": -0.24,
         "diff_ci_high": 0.24, "p_adjusted": 1.0, "significant": a == labels[0]}
        for a, b in itertools.combinations(labels, 2)
    ]  # fmt: skip
    text = render_comparison_text(
        "nc-real", rows, {}, simulated=False, columns=80, table_columns=80
    )
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80, text
    header = lines.index(next(line for line in lines if line.split()[:2] == ["A", "B"]))
    assert lines[header].split()[2:] == ["diff", "A-B", "p"]
    assert lines[header + 1].split() == ["[unadj.", "95%", "CI]", "Holm-adj"]
    numbers = [line for line in lines if "[-0.24, +0.24]" in line]
    assert len(numbers) == len(rows) and numbers[0].endswith(" 1.000 *")
    assert numbers[0].split()[:2] == ["smollm2-135m-instruct", "smollm2-135m-instruct"]
    whole = render_comparison_text("nc-real", rows, {}, simulated=False)
    assert "  A  " in whole and " diff A-B [unadj. 95% CI] p Holm-adj" in whole  # no width


def test_a_difference_without_an_interval_says_why_in_the_terminal():
    """Every shared case differing alike (not 0/1 scores) or one shared case: no interval,
    and the cell says which rather than printing a bare number or a point."""
    from evaluation.compare import render_comparison_text

    rows = [
        {"metric": "rougeL", "a": "m1", "b": "n1", "diff": 0.5, "diff_ci_low": None,
         "diff_ci_high": None, "n_used": 8, "p_adjusted": 0.03, "significant": True},
        {"metric": "rougeL", "a": "m2", "b": "n2", "diff": 1.0, "diff_ci_low": None,
         "diff_ci_high": None, "n_used": 1, "p_adjusted": None, "significant": False},
    ]  # fmt: skip
    text = render_comparison_text("my-qa", rows, {}, simulated=False)
    assert "+0.500 [no CI: all 8 equal]" in text and "+1.000 [no CI: 1 case]" in text
    flat = " ".join(text.split())
    assert "[no CI: all n equal]: every shared case differs by the same amount" in flat
    assert max(map(len, text.splitlines())) <= 100


def test_a_cross_experiment_compare_fits_80_says_which_configs_are_simulated_and_keeps_digits():
    """The newcomer's `compare real-smol second-contains` at COLUMNS=80: rows 98-100 wide
    (`second-contains:sim-large:8b`, one word wider than its column), a banner saying
    "these configs ran on evalflow's simulated backend" over 2 real configs of 6, and
    "-0.20 [-0.22, -0.18]" for a pair that alone read "-0.205 [-0.224, -0.185]"."""
    from evaluation.compare import render_comparison_text

    sim = [f"second-contains:sim-{size}:8b t={t}" for size in ("large", "small")
           for t in ("0", "0.3")]  # fmt: skip
    real = [f"real-smol:smollm2-135m-instruct t={t} n=32" for t in ("0", "0.7")]
    rows = [
        {"metric": "latency_s", "a": a, "b": b, "diff": -0.205, "diff_ci_low": -0.224,
         "diff_ci_high": -0.185, "p_adjusted": 0.0001, "significant": True}
        for a, b in itertools.pairwise(sim)
    ] + [
        {"metric": "latency_s", "a": a, "b": b, "diff": -1.426, "diff_ci_low": -1.826,
         "diff_ci_high": -1.027, "p_adjusted": 0.0001, "significant": True}
        for a, b in zip(sim, real, strict=False)
    ]  # fmt: skip
    alone = render_comparison_text("second-contains", rows[:3], {}, simulated=True)
    both = render_comparison_text(
        "real-smol-vs-second-contains",
        rows,
        {},
        simulated=True,
        partly_simulated=["second-contains"],
        columns=80,
        table_columns=80,
    )
    assert "-0.205 [-0.224, -0.185]" in alone and "-0.205 [-0.224, -0.185]" in both
    assert max(map(len, both.splitlines())) <= 80
    lines = both.splitlines()
    first = next(i for i, line in enumerate(lines) if "-1.426" in line)
    assert lines[first].split()[:2] == ["second-contains:", "real-smol:"], lines[first]
    assert lines[first + 1].split() == ["sim-large:8b", "smollm2-135m-instruct"]
    banner = " ".join(both.split("Comparison:")[0].split())
    assert "these configs" not in banner and "those of second-contains;" in banner
    assert "the others ran on real models" in banner
