"""semantic_similarity: cosines against hand-computed values, the metric's names and
options, the Embedder's once-per-text cache over a real HTTP stand-in, SIMULATED
labelling, and the refusals before a run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from evaluation.backends._simulated_embed import simulated_embedding
from evaluation.embeddings import Embedder, stored_hosts
from evaluation.errors import BackendUnavailable, MetricError, ModelNotFound, SpecError
from evaluation.metrics import (
    DEFAULT_EMBED_MODEL,
    embed_model_of,
    get_metric,
    name_with_options,
    with_embedder,
)
from evaluation.run._preflight import check_before_run
from evaluation.run._scoring import score_generations_detailed
from evaluation.run._sweep import prepare_sweep
from evaluation.spec import HostSpec, parse_spec
from evaluation.suites import Case, Suite
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin


class KnownVectors:
    """An embedder with vectors written by hand; records what it was asked."""

    def __init__(self, table: dict[str, list[float]], simulated: bool = False) -> None:
        self.table = table
        self.asked: list[str] = []
        self._simulated = simulated

    def vectors(self, model: str, texts: Sequence[str]) -> np.ndarray:
        self.asked.extend(texts)
        return np.array([self.table[t] for t in texts], dtype=float).reshape(len(texts), -1)

    def simulated(self, model: str) -> bool:
        return self._simulated


CASES = [
    Case("a", "q", ("ref one",)),
    Case("b", "q", ("ref one", "ref two")),
    Case("c", "q"),  # no reference
    Case("d", "q", ("ref two",)),
]
TABLE = {
    "ref one": [1.0, 0.0, 0.0],
    "ref two": [0.0, 3.0, 4.0],  # not unit length: the metric normalises
    "out a": [1.0, 1.0, 0.0],
    "out b": [0.0, 0.0, 2.0],
    "out c": [5.0, 5.0, 5.0],
}


def semantic(embedder, name: str = "semantic_similarity"):
    return with_embedder(get_metric(name), embedder)


def test_values_are_the_hand_computed_cosines() -> None:
    embedder = KnownVectors(TABLE)
    scored = semantic(embedder).score_details(["out a", "out b", "out c", "  "], CASES)
    # a: (1,1,0)·(1,0,0) / √2 = 1/√2
    # b: best of (0,0,2)·(1,0,0) = 0 and (0,0,2)·(0,3,4) / (2·5) = 0.8
    # c: no reference -> NaN, and its output is never embedded
    # d: an empty output scores 0 without being sent
    assert scored.values[0] == pytest.approx(1 / math.sqrt(2))
    assert scored.values[1] == pytest.approx(0.8)
    assert math.isnan(scored.values[2])
    assert scored.values[3] == 0.0
    assert "out c" not in embedder.asked and "  " not in embedder.asked
    assert embedder.asked.count("ref one") == 1  # each reference asked once per call
    assert scored.details == (None, None, None, None)


def test_scores_from_simulated_vectors_say_so() -> None:
    scored = semantic(KnownVectors(TABLE, simulated=True)).score_details(["out a"], CASES[:1])
    assert scored.details == (f"SIMULATED embeddings ({DEFAULT_EMBED_MODEL})",)


def test_an_embedding_failure_leaves_scores_missing_with_the_reason() -> None:
    class Down(KnownVectors):
        def vectors(self, model, texts):
            raise BackendUnavailable("gpu-a: ConnectError: refused", host="gpu-a", model=model)

    scored = semantic(Down(TABLE)).score_details(["out a", "out b"], CASES[:2])
    assert np.isnan(scored.values).all()
    assert all("embedding with 'nomic-embed-text' failed" in d for d in scored.details)


def test_unbound_metric_refuses_to_score() -> None:
    with pytest.raises(MetricError, match="needs an embedding model's host"):
        get_metric("semantic_similarity").score(["x"], CASES[:1])


def test_names_and_options() -> None:
    assert embed_model_of("semantic_similarity") == DEFAULT_EMBED_MODEL
    assert embed_model_of("semantic_similarity@mxbai-embed-large:latest") == (
        "mxbai-embed-large:latest"
    )
    assert embed_model_of("semantic_similarity@") is None
    assert embed_model_of("rougeL") is None
    metric = get_metric("semantic_similarity@all-minilm")
    assert metric.embed_model == "all-minilm" and metric.name == "semantic_similarity@all-minilm"
    assert metric.higher_is_better and metric.score_type == "continuous"
    assert metric.serves("generation") and not metric.serves("classification")
    assert name_with_options("semantic_similarity", {"embed_model": "m"}) == "semantic_similarity@m"
    assert (
        name_with_options("semantic_similarity", {}) == f"semantic_similarity@{DEFAULT_EMBED_MODEL}"
    )
    for options, message in [
        ({"model": "m"}, "unknown option 'model'"),
        ({"embed_model": 3}, "embed_model must be"),
        ({"embed_model": "a@b"}, "embed_model must be"),
        ("m", "expected a mapping"),
    ]:
        with pytest.raises(MetricError, match=message):
            name_with_options("semantic_similarity", options)
    with pytest.raises(MetricError, match="takes no options"):
        name_with_options("rougeL", {"embed_model": "m"})


def test_a_spec_writes_options_as_a_mapping(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.jsonl"
    suite.write_text('{"id": "a", "input": "2+2?", "references": ["4"]}\n')
    data = {
        "name": "t",
        "suite": str(suite),
        "models": ["m"],
        "metrics": ["exact_match", {"semantic_similarity": {"embed_model": "all-minilm"}}],
    }
    assert parse_spec(data).metrics == ("exact_match", "semantic_similarity@all-minilm")
    data["metrics"] = [{"semantic_similarity": {"embed_model": "m"}, "rougeL": None}]
    with pytest.raises(SpecError, match="one metric name with its options"):
        parse_spec(data)


def test_embedder_asks_each_text_once_and_batches(tmp_path: Path) -> None:
    config = StandInConfig(models=("nomic-embed-text",), slots=2)
    with running_standin(config) as server:
        embedder = Embedder([server.host()], batch_size=2)
        texts = ["alpha revenue", "beta profit", "gamma staff", "alpha revenue"]
        first = embedder.vectors("nomic-embed-text", texts)
        again = embedder.vectors("nomic-embed-text", ["beta profit", "delta board"])
        stats = server.stats
    assert stats.embedded == {t: 1 for t in dict.fromkeys([*texts, "delta board"])}
    assert stats.embed_requests == 3  # 3 new texts in batches of 2, then 1 new text
    assert embedder.requests == 3
    expected = np.array(simulated_embedding("nomic-embed-text", "beta profit"))
    assert first[1] == pytest.approx(expected) and again[0] == pytest.approx(expected)
    assert np.linalg.norm(first, axis=1) == pytest.approx(np.ones(4))
    assert not embedder.simulated("nomic-embed-text")


def test_embedder_moves_on_from_a_host_that_is_down() -> None:
    down = HostSpec("down", "http://127.0.0.1:9", kind="ollama")
    sim = HostSpec("sim", "simulated://local", kind="simulated")
    from evaluation.spec import Limits

    embedder = Embedder([down, sim], Limits(max_attempts=1, request_timeout_s=2.0))
    vectors = embedder.vectors("nomic-embed-text", ["revenue rose"])
    assert vectors[0] == pytest.approx(simulated_embedding("nomic-embed-text", "revenue rose"))
    assert embedder.simulated("nomic-embed-text")


def test_embedder_refuses_a_model_no_host_serves() -> None:
    host = HostSpec("sim", "simulated://local", kind="simulated", models=("sim-small:1b",))
    with pytest.raises(BackendUnavailable, match="no host serves embedding model 'x'"):
        Embedder([host]).vectors("x", ["text"])


def test_scoring_on_the_simulated_backend_is_labelled_simulated() -> None:
    suite = Suite("s", "1", "generation", ("rougeL",), tuple(CASES))
    generations = pd.DataFrame(
        {"case_id": ["a", "b"], "output": ["ref one", "something else entirely"]}
    )
    embedder = Embedder([HostSpec("sim", "simulated://local", kind="simulated")])
    scored = score_generations_detailed(
        generations, suite, [get_metric("semantic_similarity")], embedder=embedder
    )["semantic_similarity"]
    assert scored.values[0] == pytest.approx(1.0)  # the output is the reference
    assert scored.values[1] < 0.5
    assert scored.details == ("SIMULATED embeddings (nomic-embed-text)",) * 2


def test_stored_hosts_round_trip() -> None:
    hosts = (
        HostSpec("a", "http://a:11434", 4, "ollama", ("m", "nomic-embed-text")),
        HostSpec("b", "simulated://b", 1, "simulated", None),
        HostSpec("c", "http://c:8000", 1, "openai", None, api_key_env="VLLM_KEY"),
    )
    from dataclasses import asdict

    from evaluation.redact import redact_values

    stored = redact_values({"hosts": [asdict(h) for h in hosts]})  # as the spec is stored
    assert stored_hosts(stored) == hosts


def _spec(tmp_path: Path, url: str, **changes) -> Path:
    data = {
        "name": "semantic",
        "suite": str(REPO / "benchmarks/suites/write-constrained.jsonl"),
        "models": ["llama3.2:3b"],
        "metrics": ["constraints", "semantic_similarity"],
        "hosts": [{"name": "gpu-a", "url": url, "kind": "ollama"}],
    } | changes
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_missing_embedding_model_is_refused_before_the_run(tmp_path: Path) -> None:
    with running_standin(StandInConfig(models=("llama3.2:3b",))) as server:
        sweep = prepare_sweep(_spec(tmp_path, server.url))
        assert sweep.required_models == ("llama3.2:3b", DEFAULT_EMBED_MODEL)
        with pytest.raises(ModelNotFound, match=r"does not have 'nomic-embed-text'.*ollama pull"):
            check_before_run(sweep)
        assert server.stats.requests == 0 and server.stats.embed_requests == 0


def test_a_suite_default_needing_an_unserved_embedding_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"id": "a", "input": "2+2?", "references": ["4"]}\n')
    (tmp_path / "s.suite.yaml").write_text(
        "name: s\nversion: '1'\ntask_type: qa\ndefault_metrics: [semantic_similarity]\n"
    )
    host = {"name": "sim", "url": "simulated://local", "kind": "simulated", "models": ["m"]}
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump({"name": "t", "suite": "s.jsonl", "models": ["m"], "hosts": [host]})
    )
    with pytest.raises(SpecError, match="embedding model 'nomic-embed-text'") as caught:
        prepare_sweep(spec)
    assert caught.value.field == "metrics"


def test_doctor_checks_the_embedding_model_on_the_hosts(tmp_path: Path) -> None:
    import asyncio

    from evaluation.run._doctor import check_spec

    with running_standin(StandInConfig(models=("llama3.2:3b",))) as server:
        checks = asyncio.run(check_spec(_spec(tmp_path, server.url), timeout_s=5.0))
    [host] = [c for c in checks if c.status == "fail"]
    assert "nomic-embed-text" in host.detail
