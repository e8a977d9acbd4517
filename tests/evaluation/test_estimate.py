"""`plan`'s duration estimate: each (config, host) gets its seconds per generation from
the most specific measurement (this config on this host, a probe just made, the model's
other configs on the host), hosts work in parallel on their slots, and what has no
measurement is named instead of guessed."""

from __future__ import annotations

import random
import statistics
from datetime import datetime

import pytest

from evaluation.backends.base import GenerationResult
from evaluation.pipelines import PipelineSetting
from evaluation.pipelines._parameters import PARAMETERS
from evaluation.run._estimate import Probed, estimate, format_estimate
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.storage.throughput import Measured
from evaluation.suites import Case
from tests.support.databases import sqlite_or_postgres
from tests.support.results_db import MISSING

WHEN = datetime(2026, 11, 20, 12, 0)


def work(model: str, cases: int, temperature: float = 0.0) -> list[WorkItem]:
    config = Config(model, GenerationParams(temperature=temperature), PromptTemplate("default"))
    return [WorkItem(config, Case(f"c{i}", "q", ("a",)), "s") for i in range(cases)]


def measured(item: WorkItem, host: str, latency: float, n: int = 50, slots: int = 2) -> Measured:
    return Measured(host, item.model, item.config.hash, n, latency, 80.0, slots, "earlier", WHEN)


def test_hosts_work_in_parallel_each_on_its_slots():
    """a: 2 slots at 1 s, b: 1 slot at 2 s, so 2.5 generations/s: 10 take 4 s (one
    generation per chunk, so no chunk tail)."""
    items = work("m", 10)
    hosts = [HostSpec("a", "http://a", slots=2), HostSpec("b", "http://b", slots=1)]
    history = [measured(items[0], "a", 1.0), measured(items[0], "b", 2.0)]
    result = estimate(items, hosts, history, chunk_size=1)
    assert result.seconds == pytest.approx(4.0)
    assert result.per_host == {"a": (8, pytest.approx(4.0)), "b": (2, pytest.approx(4.0))}
    assert result.missing == []


def test_the_most_specific_measurement_wins_and_says_where_it_comes_from():
    old, new, probed_model = work("m", 4, 0.0), work("m", 4, 0.7), work("p", 4)
    host = HostSpec("gpu-a", "http://a", slots=4)
    history = [
        measured(old[0], "gpu-a", 3.0, n=120, slots=2),  # this config, measured at 2 slots
        measured(old[0], "gpu-b", 9.0),  # another host: not used for gpu-a
    ]
    probe = [Probed("gpu-a", "p", 3, 0.5, 12.0, 4)]
    result = estimate(old + new + probed_model, [host], history, probe)
    figures = {h: f for (h, _), f in result.figures.items()}
    assert figures[old[0].config.hash].seconds == 3.0
    assert figures[old[0].config.hash].source == (
        "this config on gpu-a: 120 generations (earlier, 2026-11-20), 80 tokens, "
        "at 2 slots then (4 now)"
    )
    assert figures[new[0].config.hash].seconds == 3.0  # the model's other config
    assert figures[new[0].config.hash].source.startswith("m on gpu-a, other configs: 120 ")
    assert figures[probed_model[0].config.hash].source == (
        "probe: 3 generations of p on gpu-a just now, 12 tokens, at 4 slots"
    )
    # 4 lanes, each taking its share of what is left: m's 8 generations (3 s each) first
    # (2, 2, 1, 1, then 1 and 1 at 3 s), done at 6 s, as the dispatcher keeps the loaded
    # model; then p's 4 (0.5 s each), one per lane.
    assert result.seconds == pytest.approx(6.5)


def test_without_a_measurement_the_estimate_names_what_is_missing():
    items = work("qwen2.5:7b", 5) + work("llama3:8b", 5)
    hosts = [
        HostSpec("gpu-a", "http://a", slots=2, models=("qwen2.5:7b",)),
        HostSpec("gpu-b", "http://b", slots=2),
    ]
    history = [measured(items[0], "gpu-b", 1.0)]
    result = estimate(items, hosts, history)
    assert result.seconds is None
    assert result.missing == [("qwen2.5:7b", "gpu-a"), ("llama3:8b", "gpu-b")]
    text = format_estimate(result, items, hosts)
    assert text.splitlines()[0] == (
        "duration  unknown: no measurements for qwen2.5:7b on gpu-a, llama3:8b on gpu-b: "
        "use --probe"
    )


def test_a_race_is_given_as_an_upper_bound_and_its_budget():
    items = work("m", 40)
    host = HostSpec("a", "http://a", slots=1)
    result = estimate(items, [host], [measured(items[0], "a", 30.0)])
    text = format_estimate(result, items, [host], race=True, race_budget=10)
    assert text.splitlines()[:3] == [
        "duration  a race stops configs early: at most ≈ 20 min, the full grid's 40 "
        "generations (the upper bound)",
        "          at most ≈ 5 min within its budget of 10 generations",
        "          a: 40 generations on 1 slot, ≈ 20 min",
    ]


def test_stored_latency_is_the_median_so_one_hung_request_does_not_double_it(database_url):
    """19 generations at 1 s and one hung for 77 s: the figure is 1 s (a mean read 4.8 s,
    and plan's estimate was 4.8 times too long)."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.throughput import measured_throughput
    from tests.support.results_db import add_experiment, make_config, make_suite

    config = make_config()
    suite = make_suite(20)
    latency = [1.0] * 19 + [77.0]
    with session_scope(make_engine(database_url)) as session:
        add_experiment(session, "earlier", suite, {config: {"exact_match": [1.0] * 20}},
                       latency={config: latency})  # fmt: skip
        (found,) = measured_throughput(session, ["h"])
    assert (found.generations, found.latency_s) == (20, 1.0)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """The median is SQL (window functions): both databases evalflow supports."""
    yield from sqlite_or_postgres(request.param, tmp_path / "results.db", "plan_medians")


def test_the_stored_median_is_pythons_on_odd_and_even_counts_across_experiments(url):
    """Per (host, config) over every experiment: the middle latency, or the mean of the
    two middle ones, exactly as ``statistics.median`` gives them."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.throughput import measured_throughput
    from tests.support.results_db import add_experiment, make_config, make_suite

    rng = random.Random(7)
    odd, even = make_config(temperature=0.0), make_config(temperature=0.7)
    runs = {  # experiment -> config -> latencies (one per case)
        "first": {odd: [rng.uniform(0.1, 9) for _ in range(6)], even: [1.3, 0.7]},
        "second": {odd: [rng.uniform(0.1, 9) for _ in range(5)], even: [0.1, 2.9]},
    }
    with session_scope(make_engine(url)) as session:
        for name, latency in runs.items():
            n = len(latency[odd])
            scores = {
                c: {"exact_match": [1.0] * len(x) + [MISSING] * (n - len(x))}
                for c, x in latency.items()
            }
            add_experiment(session, name, make_suite(n), scores, latency=latency)
        found = {m.config_hash: m for m in measured_throughput(session, ["h"])}
    for config in (odd, even):
        every = [x for latency in runs.values() for x in latency[config]]
        assert found[config.hash].generations == len(every)
        assert found[config.hash].latency_s == statistics.median(every)


def test_a_probe_reads_the_median_latency_as_stored_runs_do():
    """One slow request among a probe's three made its mean 3.7 s where the other two
    took 1 s; stored runs' figures are medians (``Measured``), so is the probe's."""
    results = [
        GenerationResult("x", "stop", latency_s=s, ttft_s=None, eval_count=t)
        for s, t in ((1.0, 10), (9.0, 30), (1.0, 20))
    ]
    probed = Probed.of(HostSpec("gpu-a", "http://a", slots=2), "m", results)
    assert (probed.latency_s, probed.mean_tokens, probed.generations) == (1.0, 20.0, 3)
    assert probed.slots == 2


def test_more_slots_than_measured_gives_the_duration_at_the_measured_slots_too():
    """Newcomer: `slots: 4` on llama-cpp-python's server (one request at a time), measured
    at 1 slot: plan said ≈ 11 min where the run takes ≈ 42 min, and nothing warned."""
    items = work("gemma3", 80)
    host = HostSpec("local", "http://127.0.0.1:18431", slots=4, kind="openai")
    result = estimate(items, [host], [measured(items[0], "local", 31.0, slots=1)], chunk_size=1)
    assert result.seconds == pytest.approx(20 * 31.0)
    assert result.measured_slots == {"local": 1}
    assert result.at_measured_slots == pytest.approx(80 * 31.0)
    lines = format_estimate(result, items, [host]).splitlines()
    assert lines[1] == "          local: 80 generations on 4 slots, ≈ 10 min"
    assert lines[2] == (
        "          ≈ 41 min instead if the hosts serve only as many requests at once as when "
        "measured: local 1 (spec: 4)"
    )
    assert "llama-cpp-python's runs one at a time: give it slots: 1" in lines[3]
    assert "at 1 slot then (4 now)" in lines[-1]
    same = estimate(items, [host], [measured(items[0], "local", 31.0, slots=4)])
    assert same.at_measured_slots is None and "instead if" not in format_estimate(
        same, items, [host]
    )


def map_reduce_work(model: str, words: list[int], chunk_size: int) -> list[WorkItem]:
    """A map_reduce config over cases whose documents have ``words`` words each."""
    own = {
        k: p.default
        for k, p in PARAMETERS.items()
        if k in ("unit", "mode", "map_prompt", "reduce_prompt", "refine_prompt")
    }
    config = Config(
        model,
        GenerationParams(chunk_size=chunk_size, chunk_overlap=0),
        PromptTemplate("default"),
        PipelineSetting.of("map_reduce", own),
    )
    return [
        WorkItem(config, Case(f"d{i}", "q", ("a",), metadata={"document": "w " * n}), "s")
        for i, n in enumerate(words)
    ]


def test_a_pipeline_config_unmeasured_is_a_single_calls_figure_times_its_calls_per_case():
    """A newcomer's map_reduce sweep was planned at 12 s from the model's single calls
    (0.93 s each) and took 88 s: 4.3 calls per case. Its figure from the model's other
    configs or a probe is now that times the calls its cases make (a call per chunk and
    the reduce), and says so; its own measurement (whole cases) is taken as it is."""
    single = work("m", 2)
    pipeline = map_reduce_work("m", [30, 90], chunk_size=30)  # 1 + 1 and 3 + 1 calls
    host = HostSpec("local", "http://a", slots=1)
    result = estimate(pipeline, [host], [measured(single[0], "local", 1.0, slots=1)])
    figure = result.figures[(pipeline[0].config.hash, "local")]
    assert figure.seconds == pytest.approx(3.0)
    assert figure.source.endswith(
        "; × 3.0 calls per case (a call per chunk and the reduce), a single call's figure"
    )
    assert result.seconds == pytest.approx(6.0)
    probed = estimate(pipeline, [host], [], [Probed("local", "m", 3, 0.5, 12.0, 1)])
    assert probed.seconds == pytest.approx(3.0)
    own = estimate(pipeline, [host], [measured(pipeline[0], "local", 4.0, slots=1)])
    assert own.seconds == pytest.approx(8.0)
    assert own.figures[(pipeline[0].config.hash, "local")].source.startswith("this config")


def test_a_pipeline_of_ones_own_gets_a_single_calls_figure_said_to_be_one():
    config = Config(
        "m",
        GenerationParams(),
        PromptTemplate("default"),
        PipelineSetting.of("tests.support.user_pipelines:thorough", {"passes": 2}),
    )
    items = [WorkItem(config, Case("c", "q", ("a",)), "s")]
    host = HostSpec("local", "http://a", slots=1)
    result = estimate(items, [host], [measured(work("m", 1)[0], "local", 1.0, slots=1)])
    figure = result.figures[(config.hash, "local")]
    assert figure.seconds == 1.0
    assert figure.source.endswith(
        "; a single call's figure: the calls per case of pipeline "
        "tests.support.user_pipelines:thorough are not known before it runs"
    )
