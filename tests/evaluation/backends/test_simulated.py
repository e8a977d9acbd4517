import asyncio
import math
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evaluation.backends._simulated_embed import SIM_EMBED_MODELS
from evaluation.backends._simulated_truth import SIM_MODELS, TASK_TYPES, model_profile, tokens
from evaluation.backends.base import GenerationRequest, GenerationResult
from evaluation.backends.simulated import SimulatedBackend, true_profile
from evaluation.errors import BackendRejected, ModelNotFound
from evaluation.metrics import get_metric
from evaluation.spec import GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case, Message, Suite

HOST = HostSpec("sim", "sim://local", kind="simulated")
N = 2000
QA = Suite(
    "trivia",
    "1",
    "qa",
    ("exact_match",),
    tuple(Case(f"q{i}", f"What is item {i} of the list?", (f"answer{i}",)) for i in range(N)),
)
SENTIMENT = Suite(
    "sentiment",
    "1",
    "classification",
    ("accuracy",),
    tuple(
        Case(f"s{i}", f"Review {i}: fine", label=("good", "bad", "meh")[i % 3]) for i in range(300)
    ),
    labels=("good", "bad", "meh"),
)
ARTICLE = " ".join(f"word{i}" for i in range(300))
NEWS = Suite(
    "news",
    "1",
    "summarization",
    ("rougeL",),
    tuple(
        Case(f"n{i}", ARTICLE, (" ".join(f"sum{i}x{j}" for j in range(40)),)) for i in range(300)
    ),
)
SUITES = {"trivia": QA, "sentiment": SENTIMENT, "news": NEWS}
DEFAULT = GenerationParams()
TEMPLATES = (PromptTemplate("default"), PromptTemplate("cot", "Think step by step.\n{input}"))


def backend(**kw):
    return SimulatedBackend(HOST, suites=SUITES, templates=TEMPLATES, **kw)


def run_suite(
    suite,
    model="sim-medium:3b",
    params=DEFAULT,
    *,
    template="{input}",
    sample=0,
    sim=None,
    cases=None,
):
    sim = sim or backend()
    cases = suite.cases if cases is None else cases

    async def go():
        return [
            await sim.generate(
                GenerationRequest(
                    model,
                    (Message("user", template.format(input=c.input)),),
                    params,
                    f"{suite.name}/{c.id}",
                    sample,
                )
            )
            for c in cases
        ]

    return asyncio.run(go()), cases


def within_binomial(observed, p, n, z=4.0):
    return abs(observed - p) <= z * math.sqrt(p * (1 - p) / n)


def test_same_inputs_give_the_same_results_and_all_are_simulated():
    first, _ = run_suite(QA, cases=QA.cases[:50])
    second, _ = run_suite(QA, cases=QA.cases[:50], sim=backend())
    assert first == second
    assert all(isinstance(r, GenerationResult) and r.simulated for r in first)


def test_sample_index_and_seeds_give_independent_draws():
    params = GenerationParams(temperature=1.0)
    base, _ = run_suite(QA, params=params, cases=QA.cases[:200])
    variants = [
        run_suite(QA, params=params, cases=QA.cases[:200], sample=1)[0],
        run_suite(QA, params=params, cases=QA.cases[:200], sim=backend(seed=1))[0],
        run_suite(QA, params=replace(params, seed=7), cases=QA.cases[:200])[0],
    ]
    for other in variants:
        differing = sum(a.text != b.text for a, b in zip(base, other, strict=True))
        assert differing > 20


def test_observed_correctness_converges_to_true_quality():
    params = GenerationParams(temperature=0.5)
    results, cases = run_suite(QA, params=params)
    truth = true_profile("sim-medium:3b", params, "default", "qa")
    outputs = [r.text for r in results]
    contains = get_metric("contains").score(outputs, cases).mean()
    exact = get_metric("exact_match").score(outputs, cases).mean()
    assert within_binomial(contains, truth.quality, N)
    assert within_binomial(exact, truth.quality * (1 - truth.chatty_share), N)
    assert exact < contains


def test_a_degraded_host_answers_a_subset_of_the_cases_right():
    cases = QA.cases[:400]
    contains = get_metric("contains")
    healthy, _ = run_suite(QA, cases=cases, params=GenerationParams(temperature=0.0))
    degraded_host = replace(HOST, url="simulated://local?degrade=0.3")
    degraded, _ = run_suite(
        QA,
        cases=cases,
        params=GenerationParams(temperature=0.0),
        sim=SimulatedBackend(degraded_host, suites=SUITES, templates=TEMPLATES),
    )
    right = contains.score([r.text for r in healthy], cases)
    still = contains.score([r.text for r in degraded], cases)
    assert set(np.flatnonzero(still)) <= set(np.flatnonzero(right))  # the same draws
    truth = true_profile("sim-medium:3b", GenerationParams(temperature=0.0), "default", "qa")
    assert within_binomial(still.mean(), truth.quality - 0.3, len(cases))
    assert all(r.simulated for r in degraded)
    assert degraded_host.degrade == 0.3 and HOST.degrade == 0.0


def test_classification_accuracy_converges_and_wrong_answers_are_other_labels():
    params = GenerationParams(temperature=0.0)
    results, cases = [], []
    for sample in range(5):
        r, c = run_suite(SENTIMENT, "sim-small:1b", params, sample=sample)
        results += r
        cases += c
    outputs = [r.text for r in results]
    accuracy = get_metric("accuracy").score(outputs, cases, labels=SENTIMENT.labels)
    truth = true_profile("sim-small:1b", params, "default", "classification")
    # Five samples per case share the case's difficulty: allow for the clustering.
    assert abs(accuracy.mean() - truth.quality) < 0.08
    named = {re.sub(r"\W", " ", o).split()[-1] for o in outputs}
    assert named == set(SENTIMENT.labels)


def test_configurations_are_correlated_through_case_difficulty():
    params = GenerationParams(temperature=0.3)
    a = [r.text for r in run_suite(QA, "sim-medium:3b", params)[0]]
    b = [r.text for r in run_suite(QA, "sim-large:8b", params)[0]]
    metric = get_metric("contains")
    correlation = np.corrcoef(metric.score(a, QA.cases), metric.score(b, QA.cases))[0, 1]
    assert correlation > 0.15


def test_latency_matches_the_true_profile():
    params = GenerationParams(temperature=0.2, num_ctx=8192)
    results, cases = run_suite(QA, "sim-large:8b", params, cases=QA.cases[:1000])
    latency = np.array([r.latency_s for r in results])
    expected = [
        true_profile(
            "sim-large:8b",
            params,
            "default",
            "qa",
            prompt_tokens=r.prompt_eval_count,
            output_tokens=r.eval_count,
        )
        for r in results
    ]
    first, large = expected[0], SIM_MODELS["sim-large:8b"]
    by_hand = 1.08 * (
        large.overhead_s
        + first.prompt_tokens / large.prompt_tokens_per_s
        + first.output_tokens / large.tokens_per_s
    )
    assert first.latency_mean_s == pytest.approx(by_hand)
    mean = np.mean([t.latency_mean_s for t in expected])
    sd = np.mean([t.latency_sd_s for t in expected])
    assert abs(latency.mean() - mean) < 4 * sd / math.sqrt(len(results))
    assert np.std(latency / [t.latency_mean_s for t in expected]) == pytest.approx(
        sd / mean, rel=0.15
    )
    speeds = np.array([r.tokens_per_s for r in results])
    assert np.median(speeds) == pytest.approx(expected[0].tokens_per_s, rel=0.05)
    for r, case in zip(results[:20], cases, strict=False):
        assert r.prompt_eval_count == tokens(len(case.input.split()))
        assert r.eval_count == tokens(len(r.text.split()))
        assert r.prompt_eval_duration_ns + r.eval_duration_ns < r.total_duration_ns
        assert r.total_duration_ns == round(r.latency_s * 1e9)
        assert 0 < r.ttft_s < r.latency_s


def test_bigger_models_and_longer_outputs_are_slower():
    params = GenerationParams()
    latencies = [true_profile(m, params, "default", "qa").latency_mean_s for m in SIM_MODELS]
    assert latencies == sorted(latencies)
    short = true_profile("sim-large:8b", replace(params, num_predict=8), "default", "generation")
    long = true_profile("sim-large:8b", params, "default", "generation")
    assert short.output_tokens == 8 and short.latency_mean_s < long.latency_mean_s
    wide = true_profile("sim-large:8b", replace(params, num_ctx=32768), "default", "qa")
    assert (
        1.0
        < wide.latency_mean_s / true_profile("sim-large:8b", params, "default", "qa").latency_mean_s
        < 1.25
    )
    assert long.energy_j_per_generation == pytest.approx(200 * long.latency_mean_s)


def test_small_num_predict_truncates():
    results, _ = run_suite(NEWS, params=GenerationParams(num_predict=5), cases=NEWS.cases[:20])
    for r in results:
        assert r.done_reason == "length" and r.truncated
        assert r.eval_count == 5 and len(r.text.split()) <= 3
    full, _ = run_suite(NEWS, cases=NEWS.cases[:20])
    assert {r.done_reason for r in full} == {"stop"}


def test_temperature_hurts_quality_above_point_three():
    def quality(t):
        return true_profile("sim-large:8b", GenerationParams(temperature=t), "x", "qa").quality

    assert quality(0.0) == quality(0.3) == SIM_MODELS["sim-large:8b"].quality["qa"]
    assert quality(0.3) > quality(0.6) > quality(1.0) > quality(1.5)
    cold, _ = run_suite(QA, params=GenerationParams(temperature=0.0))
    hot, _ = run_suite(QA, params=GenerationParams(temperature=1.5))
    contains = get_metric("contains")
    assert (
        contains.score([r.text for r in cold], QA.cases).mean()
        > contains.score([r.text for r in hot], QA.cases).mean() + 0.1
    )


def test_summarization_suffers_from_small_context_and_top_p():
    def quality(**kw):
        return true_profile(
            "sim-large:8b", GenerationParams(**kw), "default", "summarization"
        ).quality

    assert quality(num_ctx=512) < quality(num_ctx=1024) == quality(num_ctx=4096)
    assert quality(top_p=0.2) < quality(top_p=0.5) == quality(top_p=0.9)
    qa = true_profile("sim-large:8b", GenerationParams(num_ctx=512, top_p=0.2), "default", "qa")
    assert qa.quality == true_profile("sim-large:8b", GenerationParams(), "default", "qa").quality
    rouge = get_metric("rougeL")
    good, _ = run_suite(NEWS, "sim-xl:14b", GenerationParams(temperature=0.0))
    bad, _ = run_suite(NEWS, "sim-small:1b", GenerationParams(temperature=1.5, num_ctx=256))
    assert (
        rouge.score([r.text for r in good], NEWS.cases).mean()
        > rouge.score([r.text for r in bad], NEWS.cases).mean() + 0.1
    )


def test_cot_template_is_recognised_and_reasons_before_answering():
    params = GenerationParams(temperature=0.0)
    results, cases = run_suite(
        QA, "sim-large:8b", params, template=TEMPLATES[1].text, cases=QA.cases[:400]
    )
    outputs = [r.text for r in results]
    assert all(o.startswith("Let me think step by step.") for o in outputs)
    assert get_metric("exact_match").score(outputs, cases).sum() == 0
    truth = true_profile("sim-large:8b", params, "cot", "qa")
    assert truth.quality > true_profile("sim-large:8b", params, "default", "qa").quality
    assert within_binomial(get_metric("contains").score(outputs, cases).mean(), truth.quality, 400)
    unknown = true_profile("sim-large:8b", params, "my-own-prompt", "qa")
    assert unknown.quality == true_profile("sim-large:8b", params, "default", "qa").quality


def test_unknown_models_get_a_stable_profile():
    assert model_profile("llama3.1:8b").size_b == 8.0
    assert model_profile("phi3:mini") == model_profile("phi3:mini")
    assert model_profile("phi3:mini") != model_profile("gemma:latest")
    profile = true_profile("phi3:mini", GenerationParams(), "default", "code")
    assert 0 < profile.quality < 1 and profile.latency_mean_s > 0
    first, _ = run_suite(QA, "phi3:mini", cases=QA.cases[:20])
    again, _ = run_suite(QA, "phi3:mini", cases=QA.cases[:20])
    assert first == again


def test_list_models_and_host_restrictions():
    sim = SimulatedBackend(replace(HOST, models=("sim-small:1b", "mistral:7b")))
    names = [m.name for m in asyncio.run(sim.list_models())]
    assert names == [*SIM_MODELS, "mistral:7b", *SIM_EMBED_MODELS]
    info = asyncio.run(sim.list_models())[0]
    assert info.parameter_size == "1.0B" and len(info.digest) == 64
    request = GenerationRequest("sim-large:8b", (Message("user", "hi"),), GenerationParams())
    with pytest.raises(ModelNotFound):
        asyncio.run(sim.generate(request))


def test_case_ids_bare_qualified_ambiguous_and_unknown():
    sim = backend()
    message = (Message("user", "What is item 3 of the list?"),)

    def gen(case_id, suites=None):
        chosen = sim if suites is None else SimulatedBackend(HOST, suites=suites)
        request = GenerationRequest("sim-xl:14b", message, GenerationParams(temperature=0), case_id)
        return asyncio.run(chosen.generate(request))

    assert gen("q3") == gen("trivia/q3")
    with pytest.raises(BackendRejected, match="several suites"):
        gen("q3", suites={"a": QA, "b": replace(QA, name="other")})
    echo = gen("no-such-case")
    assert echo.simulated and set(echo.text.split()) <= set(message[0].content.split()) | {
        "Sure,",
        "here",
        "it",
        "is:",
    }


def test_time_scale_sleeps_the_simulated_latency():
    sim = backend(time_scale=0.05)
    request = GenerationRequest(
        "sim-xl:14b", (Message("user", "x"),), GenerationParams(), "news/n0"
    )
    start = time.perf_counter()
    result = asyncio.run(sim.generate(request))
    assert time.perf_counter() - start >= result.latency_s * 0.05 * 0.9


def test_docs_table_matches_the_model_profiles():
    docs = Path(__file__).parents[3] / "docs" / "simulated-backend.md"
    rows = [line for line in docs.read_text().splitlines() if line.startswith("| sim-")]
    assert len(rows) == len(SIM_MODELS)
    for row in rows:
        name, *numbers = [cell.strip() for cell in row.strip("|").split("|")]
        p = SIM_MODELS[name]
        expected = [
            p.size_b,
            *(p.quality[t] for t in TASK_TYPES),
            p.overhead_s,
            p.prompt_tokens_per_s,
            p.tokens_per_s,
            p.watts,
            p.chatty,
        ]
        assert [float(n) for n in numbers] == expected


def test_code_answers_keep_their_line_breaks():
    code = Suite(
        "code",
        "1",
        "code",
        ("chrf",),
        tuple(Case(f"k{i}", "Write f.", (f"def f(x):\n    return x + {i}",)) for i in range(50)),
    )
    results, _ = run_suite(
        code,
        "sim-xl:14b",
        GenerationParams(temperature=0.0),
        sim=SimulatedBackend(HOST, suites={"code": code}),
    )
    assert sum("\n    " in r.text for r in results) > 25
