"""A race whose cases cluster by source without declared groups (issue 30): the clustering
is found in the case metadata, or estimated from the suite's order, and the bound holds;
where neither can see it (a shuffled suite) the race says its bound does not cover it."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from evaluation.adaptive import Race, RaceSettings, case_clustering, race_schedule

N_SOURCES, PER_SOURCE = 30, 10
TRUE_MEANS = np.array([0.60, 0.59, 0.58, 0.55, 0.50, 0.45])
"""Config 0 is the truly best; its nearest rivals are 1 and 2 points behind."""
SOURCE_SD, CASE_SD = 0.15, 0.05
"""Each config does better or worse on a whole source (document): differences between
configs cluster by source (intra-class correlation ~0.9, 10 cases per source)."""
TRIALS = 60


INSTRUCTION = "Answer the question from the passage, in one short sentence."


def passage(source: int) -> str:
    return f"Document {source} tells of the river town and its mill. It was built in {source}."


Suite = Literal["metadata", "passages", "in order", "shuffled"]


def clustered_race(seed: int, suite: Suite) -> Race:
    """A 300-case suite of 30 sources that declares no groups: "in order", a source's
    cases sit together in the suite, as in one written document by document; "metadata",
    the suite is shuffled but each case carries its source in its metadata; "passages",
    shuffled, but each case's input repeats its source's passage; "shuffled", none of
    these."""
    rng = np.random.default_rng(seed)
    source = np.repeat(np.arange(N_SOURCES), PER_SOURCE)
    if suite != "in order":
        source = rng.permutation(source)
    on_source = rng.normal(size=(N_SOURCES, TRUE_MEANS.size))[source] * SOURCE_SD
    noise = rng.normal(size=(source.size, TRUE_MEANS.size)) * CASE_SD
    scores = np.clip(TRUE_MEANS + on_source + noise, 0, 1)
    ids = [f"case-{i:03d}" for i in range(source.size)]
    meta = None
    if suite == "metadata":
        meta = [{"source": f"doc-{s}", "difficulty": "hard"} for s in source]
    inputs = [f"{INSTRUCTION}\nQuestion {i}?" for i in range(source.size)]
    if suite == "passages":
        inputs = [f"{INSTRUCTION}\n{passage(s)}\nQuestion {i}?" for i, s in enumerate(source)]
    clustering = case_clustering(ids, [None] * len(ids), meta, inputs)
    names = [f"config-{k}" for k in range(TRUE_MEANS.size)]
    schedule = race_schedule(ids, list(clustering.groups), seed=seed, suite="docs")
    race = Race(names, schedule, RaceSettings(score_type="continuous"), clustering)
    means = pd.DataFrame(scores, index=ids, columns=names)
    while race.next_round() is not None:
        race.close_round(means)  # no groups passed: as replay does for a suite without them
    return race


def best_eliminated(suite: Suite) -> float:
    races = [clustered_race(seed, suite) for seed in range(TRIALS)]
    return float(np.mean(["config-0" not in race.outcome.survivors for race in races]))


def test_a_race_that_finds_the_sources_in_the_metadata_or_the_order_keeps_its_bound():
    # Where neither shows the sources (a shuffled suite), the truly best config is
    # eliminated far more often than alpha = 5%, as it was everywhere before the race
    # looked for them: 9 of 60 seeded trials.
    assert best_eliminated("shuffled") > 0.10
    assert best_eliminated("metadata") <= 0.05
    assert best_eliminated("passages") <= 0.05
    assert best_eliminated("in order") <= 0.05


def test_a_race_says_what_its_bound_assumes():
    by_text = clustered_race(0, "passages")
    assert "the passages their inputs share (30 sources)" in by_text.bound_text
    found = clustered_race(0, "metadata")
    assert "metadata field 'source' (30 values)" in found.bound_text
    by_order = clustered_race(0, "in order")
    assert "runs of 18 consecutive cases in the suite's order (17 runs)" in by_order.bound_text
    assert "NOT if the suite was shuffled" in by_order.bound_text
    topics = [{"topic": "ab"[i % 2]} for i in range(40)]
    coarse = case_clustering([f"c{i}" for i in range(40)], [None] * 40, topics)
    assert "with 2 clusters its clustered tests have 1 degree of freedom" in coarse.text
    assert "of freedom" not in found.bound_text
    few = case_clustering([f"c{i}" for i in range(9)], [None] * 9)
    assert few.basis == "none" and "NOT promised" in few.text
    ten = case_clustering([f"c{i}" for i in range(10)], [None] * 10)
    assert (ten.basis, ten.run_length, ten.n_groups) == ("order", 4, 3)


def test_clustering_comes_from_declared_groups_then_metadata_then_ids():
    ids = [f"report-{i // 3}/q{i % 3}" for i in range(12)]
    declared = case_clustering(ids, ["a", "a", "b", "b"] * 3)
    assert declared.basis == "declared" and declared.n_groups == 2
    meta = [{"document_id": f"d{i // 4}", "difficulty": i % 2} for i in range(12)]
    by_field = case_clustering(ids, [None] * 12, meta)
    assert (by_field.basis, by_field.field, by_field.n_groups) == ("metadata", "document_id", 3)
    by_id = case_clustering(ids, [None] * 12, [{"difficulty": "easy"}] * 12)
    assert (by_id.basis, by_id.field, by_id.n_groups) == ("case id", "/", 4)
    # a field with a value per case, or a field that is not a source, clusters nothing:
    # the suite's order is what is left, runs of ceil(sqrt(12)) = 4 cases
    unique = [{"source": f"s{i}"} for i in range(12)]
    by_order = case_clustering([f"case-{i}" for i in range(12)], [None] * 12, unique)
    assert (by_order.basis, by_order.run_length) == ("order", 4)
    assert by_order.groups == tuple(f"run-{i // 4}" for i in range(12))


def test_passages_shared_by_inputs_are_sources_and_instructions_every_case_repeats_are_not():
    common = "Read the passage below and answer the question that follows it."
    doc = {
        "a": "The mill on the river was built in 1820 and burnt down in 1871.",
        "b": "The ferry crossed the river twice a day until the bridge opened.",
        "c": "A second mill was built downstream after the fire of that year.",
    }
    inputs = [f"{common}\n{doc[d]} Question {i}?" for i, d in enumerate("aabbccaabb")]
    found = case_clustering([f"q{i}" for i in range(10)], [None] * 10, None, inputs)
    assert found.basis == "text" and found.n_groups == 3
    assert found.groups[0] == found.groups[6] != found.groups[2] == found.groups[9]
    # a sentence two documents share makes them one source (coarser is still valid)
    inputs[4] = inputs[4].replace(doc["c"], doc["c"] + " " + doc["a"])
    merged = case_clustering([f"q{i}" for i in range(10)], [None] * 10, None, inputs)
    assert merged.n_groups == 2 and merged.groups[4] == merged.groups[5] == merged.groups[0]
    # only the instruction in common: nothing found in the texts, the order is what is left
    alone = [f"{common}\nQuestion {i}?" for i in range(10)]
    assert case_clustering([f"q{i}" for i in range(10)], [None] * 10, None, alone).basis == "order"
