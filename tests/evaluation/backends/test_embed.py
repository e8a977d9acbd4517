"""``Backend.embed`` on Ollama, OpenAI-compatible and simulated hosts: the wire format,
order, errors mapped as generate's, retries, and the stand-in counting what it embedded."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from evaluation.backends import (
    OllamaBackend,
    OpenAICompatBackend,
    RetryPolicy,
    embed_with_retries,
)
from evaluation.backends._simulated_embed import (
    EMBED_DIM,
    SIM_EMBED_MODELS,
    simulated_embedding,
)
from evaluation.backends.simulated import SimulatedBackend
from evaluation.content_words import content_words
from evaluation.errors import (
    BackendOverloaded,
    BackendRejected,
    BackendServerError,
    BackendUnavailable,
    ModelNotFound,
)
from evaluation.spec import HostSpec
from tests.support.standin_ollama import StandIn

pytestmark = pytest.mark.anyio

TEXTS = [
    "Revenue rose to 4.2 million euros in 2023.",
    "The board appointed Maria Lind as chief financial officer.",
    "Revenues rose again: 4.2 million euros.",
]
SIM = HostSpec("sim", "sim://local", kind="simulated")


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_http_backends_embed_each_text_in_order(standin: StandIn, kind: str) -> None:
    backend_class = OllamaBackend if kind == "ollama" else OpenAICompatBackend
    async with backend_class(standin.host(kind=kind)) as backend:
        vectors = await backend.embed("llama3:latest", TEXTS)
    # the stand-in serves the simulated vectors, so each one is known exactly
    assert vectors == [simulated_embedding("llama3:latest", t) for t in TEXTS]
    assert standin.stats.embed_requests == 1
    assert standin.stats.embedded == {t: 1 for t in TEXTS}
    assert standin.stats.requests == 0  # no generation was asked for
    sent = standin.stats.last_request
    assert sent is not None and sent["input"] == TEXTS and sent["model"] == "llama3:latest"


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_no_texts_sends_no_request(standin: StandIn, kind: str) -> None:
    backend_class = OllamaBackend if kind == "ollama" else OpenAICompatBackend
    async with backend_class(standin.host(kind=kind)) as backend:
        assert await backend.embed("llama3:latest", []) == []
    assert standin.stats.embed_requests == 0


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_unknown_embedding_model_is_model_not_found(standin: StandIn, kind: str) -> None:
    backend_class = OllamaBackend if kind == "ollama" else OpenAICompatBackend
    async with backend_class(standin.host(kind=kind)) as backend:
        with pytest.raises(ModelNotFound, match='model "nomic-ghost" not found'):
            await backend.embed("nomic-ghost", TEXTS)


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("busy", BackendOverloaded),
        ("server_error", BackendServerError),
        ("bad_request", BackendRejected),
        ("drop", BackendUnavailable),
    ],
)
async def test_embedding_faults_map_like_generation_faults(
    standin: StandIn, kind: str, error: type
) -> None:
    standin.set_fault(kind, embed=True)
    async with OllamaBackend(standin.host()) as backend:
        with pytest.raises(error) as caught:
            await backend.embed("llama3", TEXTS)
    assert type(caught.value) is error


async def test_embedding_faults_leave_generation_alone(standin: StandIn) -> None:
    standin.set_fault("server_error", embed=True)
    assert standin._next_fault("llama3:latest") is None  # a generation request
    assert standin._next_fault("llama3:latest", embed=True) is not None


async def test_retries_recover_from_transient_embedding_faults(standin: StandIn) -> None:
    standin.set_fault("busy", embed=True)
    standin.set_fault("server_error", embed=True)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with OllamaBackend(standin.host()) as backend:
        vectors, attempts = await embed_with_retries(
            backend, "llama3", TEXTS[:1], policy=RetryPolicy(max_attempts=4), sleep=sleep
        )
    assert attempts == 3 and len(waits) == 2
    assert vectors == [simulated_embedding("llama3:latest", TEXTS[0])]


async def test_unknown_model_is_not_retried(standin: StandIn) -> None:
    async with OllamaBackend(standin.host()) as backend:
        with pytest.raises(ModelNotFound) as caught:
            await embed_with_retries(backend, "ghost", TEXTS, policy=RetryPolicy(max_attempts=4))
    assert caught.value.attempts == 1


def _mock(kind: str, payload: object) -> OllamaBackend | OpenAICompatBackend:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(payload).encode())

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    host = HostSpec(name="m", url="http://m", kind=kind)  # type: ignore[arg-type]
    backend_class = OllamaBackend if kind == "ollama" else OpenAICompatBackend
    return backend_class(host, client=client)


async def test_openai_answers_are_put_back_in_input_order() -> None:
    data = [
        {"object": "embedding", "embedding": [0.0, 1.0], "index": 1},
        {"object": "embedding", "embedding": [1.0, 0.0], "index": 0},
    ]
    backend = _mock("openai", {"object": "list", "data": data})
    assert await backend.embed("e", ["first", "second"]) == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("ollama", {"embeddings": [[1.0, 0.0]]}),  # one vector for two texts
        ("ollama", {"embeddings": [[1.0, 0.0], [1.0]]}),  # ragged
        ("ollama", {"embeddings": [[1.0, "x"], [1.0, 0.0]]}),  # not a number
        ("ollama", {"error": "nothing"}),
        ("openai", {"data": "nope"}),
    ],
)
async def test_a_malformed_answer_is_a_retryable_server_error(kind: str, payload: object) -> None:
    backend = _mock(kind, payload)
    with pytest.raises(BackendServerError) as caught:
        await backend.embed("e", ["a", "b"])
    assert caught.value.retryable


async def test_a_vector_per_token_is_refused_once_with_the_fix() -> None:
    """Newcomers' P3: a chat GGUF served with `"embedding": true` by llama-cpp-python
    answers one vector per token (no pooling); every rag case failed after its retries
    with "an embedding holds a non-number: float() argument must be ... not 'list'"."""
    data = [{"object": "embedding", "embedding": [[0.5, 0.1, 0.2]] * 4, "index": 0}]
    backend = _mock("openai", {"object": "list", "data": data})
    with pytest.raises(BackendRejected) as caught:
        await embed_with_retries(
            backend, "smol-embed", ["hello world"], policy=RetryPolicy(max_attempts=4)
        )
    assert not caught.value.retryable and caught.value.attempts == 1
    said = str(caught.value)
    assert "one vector per token (4 of 3 numbers for an input), not one per input" in said
    assert "Serve an embedding model" in said and "--pooling mean" in said


async def test_simulated_embeddings_are_deterministic_unit_vectors() -> None:
    backend = SimulatedBackend(SIM)
    first = await backend.embed("nomic-embed-text", TEXTS)
    again = await SimulatedBackend(SIM, seed=7).embed("nomic-embed-text", TEXTS)
    assert first == again
    assert all(len(v) == EMBED_DIM for v in first)
    assert all(np.linalg.norm(v) == pytest.approx(1.0) for v in first)
    other_model = await backend.embed("sim-embed", TEXTS)
    assert other_model != first


async def test_simulated_texts_sharing_content_words_are_closer() -> None:
    revenue, board, revenue_again = await SimulatedBackend(SIM).embed("nomic-embed-text", TEXTS)
    assert cosine(revenue, revenue_again) > 0.6
    assert abs(cosine(revenue, board)) < 0.3
    assert cosine(revenue, revenue_again) > cosine(revenue, board) + 0.4
    same_words = simulated_embedding("m", "euros million revenue")
    assert cosine(same_words, simulated_embedding("m", "Revenues: million EUROS.")) == (
        pytest.approx(1.0)
    )


def test_content_words_drop_stop_words_and_plurals() -> None:
    assert content_words("The revenues of the group were 1,250.5 units") == [
        "revenue",
        "group",
        "1,250.5",
        "unit",
    ]


async def test_a_text_without_content_words_still_gets_a_unit_vector() -> None:
    (vector,) = await SimulatedBackend(SIM).embed("nomic-embed-text", ["the of and"])
    assert np.linalg.norm(vector) == pytest.approx(1.0)


async def test_simulated_hosts_list_their_embedding_models() -> None:
    names = {m.name for m in await SimulatedBackend(SIM).list_models()}
    assert set(SIM_EMBED_MODELS) <= names


async def test_simulated_host_refuses_a_model_it_does_not_serve() -> None:
    host = HostSpec("sim", "sim://local", kind="simulated", models=("sim-small:1b",))
    with pytest.raises(ModelNotFound):
        await SimulatedBackend(host).embed("nomic-embed-text", TEXTS)
