"""Backoff with jitter, retrying only what is retryable, never holding a slot asleep."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import pytest

from evaluation.backends import (
    GenerationRequest,
    GenerationResult,
    OllamaBackend,
    RetryPolicy,
    generate_with_retries,
)
from evaluation.errors import (
    BackendError,
    BackendOverloaded,
    BackendRejected,
    BackendServerError,
    BackendUnavailable,
)
from evaluation.spec import GenerationParams, HostSpec
from evaluation.suites import Message
from tests.support.standin_ollama import StandIn

pytestmark = pytest.mark.anyio

REQUEST = GenerationRequest("llama3", (Message("user", "say hello now"),), GenerationParams())
OK = GenerationResult(text="hello", done_reason="stop", latency_s=0.1, ttft_s=0.05)


class ScriptedBackend:
    """Fails with the scripted errors in order, then succeeds; logs into ``events``."""

    host = HostSpec(name="scripted", url="http://scripted")

    def __init__(self, errors: list[BackendError], events: list[str]) -> None:
        self.errors = list(errors)
        self.events = events
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self.calls += 1
        self.events.append("generate")
        if self.errors:
            raise self.errors.pop(0)
        return OK

    async def list_models(self) -> list:
        return []

    async def aclose(self) -> None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.delays: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.events.append("sleep")
        self.delays.append(seconds)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.events.append("enter")
        try:
            yield
        finally:
            self.events.append("exit")


def test_without_jitter_delays_double_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0, jitter=0.0)
    rng = random.Random(0)
    assert [policy.delay(n, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_proportional_jitter_stays_in_band_and_varies() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=100.0, jitter=0.5)
    rng = random.Random(42)
    for attempt in (1, 2, 3):
        cap = 2.0 ** (attempt - 1)
        draws = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in draws)
        assert len(set(draws)) == 200
        assert max(draws) - min(draws) > cap / 4  # spread across the band


def test_full_jitter_spans_zero_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=2.0, jitter=1.0)
    draws = [policy.delay(1, random.Random(seed)) for seed in range(300)]
    assert min(draws) < 0.1
    assert max(draws) > 1.9
    assert all(0.0 <= d <= 2.0 for d in draws)


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"jitter": 1.5}, {"jitter": -0.1}, {"base_delay_s": -1.0}]
)
def test_nonsense_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


async def test_transient_errors_are_retried_with_growing_jittered_delays() -> None:
    recorder = Recorder()
    errors: list[BackendError] = [
        BackendUnavailable("down"),
        BackendOverloaded("busy"),
        BackendServerError("oops"),
    ]
    backend = ScriptedBackend(errors, recorder.events)
    policy = RetryPolicy(max_attempts=4, base_delay_s=0.5, jitter=0.5)

    result, attempts = await generate_with_retries(
        backend, REQUEST, policy=policy, sleep=recorder.sleep, rng=random.Random(3)
    )

    assert result is OK
    assert attempts == 4
    assert backend.calls == 4
    assert len(recorder.delays) == 3
    assert recorder.delays == sorted(recorder.delays)  # bands [0.25,0.5], [0.5,1], [1,2]
    for n, delay in enumerate(recorder.delays, start=1):
        assert 0.5 * 2 ** (n - 1) / 2 <= delay <= 0.5 * 2 ** (n - 1)
    # jitter: the same failures with another seed wait differently
    again = Recorder()
    await generate_with_retries(
        ScriptedBackend(
            [BackendUnavailable("a"), BackendOverloaded("b"), BackendServerError("c")],
            again.events,
        ),
        REQUEST,
        policy=policy,
        sleep=again.sleep,
        rng=random.Random(4),
    )
    assert again.delays != recorder.delays


async def test_the_slot_is_held_for_each_attempt_and_never_while_sleeping() -> None:
    recorder = Recorder()
    backend = ScriptedBackend([BackendOverloaded("busy")] * 2, recorder.events)

    _, attempts = await generate_with_retries(
        backend,
        REQUEST,
        policy=RetryPolicy(),
        slot=recorder.slot,
        sleep=recorder.sleep,
        rng=random.Random(0),
    )

    assert attempts == 3
    assert recorder.events == [
        *["enter", "generate", "exit", "sleep"] * 2,
        "enter",
        "generate",
        "exit",
    ]


async def test_a_rejected_request_is_not_retried() -> None:
    recorder = Recorder()
    backend = ScriptedBackend([BackendRejected("bad option", status_code=400)], recorder.events)
    with pytest.raises(BackendRejected, match="bad option") as caught:
        await generate_with_retries(backend, REQUEST, policy=RetryPolicy(), sleep=recorder.sleep)
    assert caught.value.attempts == 1
    assert backend.calls == 1
    assert recorder.delays == []


async def test_when_attempts_run_out_the_last_error_is_raised() -> None:
    recorder = Recorder()
    errors: list[BackendError] = [BackendUnavailable(f"down {i}") for i in range(1, 4)]
    backend = ScriptedBackend(errors, recorder.events)
    with pytest.raises(BackendUnavailable, match="down 3") as caught:
        await generate_with_retries(
            backend, REQUEST, policy=RetryPolicy(max_attempts=3), sleep=recorder.sleep
        )
    assert caught.value.attempts == 3
    assert len(recorder.delays) == 2


async def test_a_dropped_stream_is_retried_against_the_real_server(standin: StandIn) -> None:
    standin.set_fault("drop", times=2)
    recorder = Recorder()
    async with OllamaBackend(standin.host()) as backend:
        result, attempts = await generate_with_retries(
            backend, REQUEST, policy=RetryPolicy(), sleep=recorder.sleep
        )
    assert attempts == 3
    assert result.text == "say hello now"
    assert standin.stats.requests == 3
    assert standin.stats.faults["drop"] == 2


async def test_a_4xx_from_the_real_server_fails_once_with_its_message(standin: StandIn) -> None:
    standin.set_fault("bad_request", message='option "num_ctx" must be positive')
    recorder = Recorder()
    async with OllamaBackend(standin.host()) as backend:
        with pytest.raises(BackendRejected) as caught:
            await generate_with_retries(
                backend, REQUEST, policy=RetryPolicy(), sleep=recorder.sleep
            )
    assert 'option "num_ctx" must be positive' in str(caught.value)
    assert caught.value.attempts == 1
    assert standin.stats.requests == 1
