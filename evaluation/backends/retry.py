"""Retrying one generation (or one embedding request) on transient faults, with
exponential backoff and jitter.

The caller's slot (a host's concurrency limit) is taken around each attempt only, so a
request waiting to retry never keeps a GPU slot from other work.

Each failed attempt is told to whoever listens (``ON_ATTEMPT_FAILED``: a case records
them with its generation) and a timeout is logged as it happens, in one line: a host
that accepts connections and never answers otherwise stalled a run in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from evaluation.backends.base import Backend, GenerationRequest, GenerationResult, ModelInfo
from evaluation.errors import BackendError

log = logging.getLogger(__name__)
T = TypeVar("T")
# The backoff's jitter where the caller brings no generator: one for the process (a new
# one per call seeded itself from os.urandom, ~50 us: 5% of a 64-slot run's lanes' CPU).
_JITTER = random.Random()


@dataclass(frozen=True)
class FailedAttempt:
    """One attempt at a model call that failed: which, where, what happened
    (``BackendError.outcome``) and why (the error's message)."""

    model: str
    host: str
    attempt: int  # 1-based, among this call's attempts
    outcome: str
    reason: str
    seconds: float  # from the request's start (its slot held) to its failure


# Told of every failed attempt of the calls made in its context (None: nobody listens).
ON_ATTEMPT_FAILED: contextvars.ContextVar[Callable[[FailedAttempt], None] | None] = (
    contextvars.ContextVar("evalflow_on_attempt_failed", default=None)
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    The delay after failed attempt ``n`` (1-based) is ``min(max_delay_s, base_delay_s *
    2**(n-1))`` scaled down by a random fraction of up to ``jitter``: 0 is no jitter,
    1 is "full jitter" (uniform between 0 and the cap), 0.5 keeps each delay within its
    doubling band so delays still grow while clients spread out.
    """

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must not be negative")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return cap * (1.0 - self.jitter * rng.random())


async def generate_with_retries(
    backend: Backend,
    request: GenerationRequest,
    *,
    policy: RetryPolicy,
    slot: Callable[[], contextlib.AbstractAsyncContextManager] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[GenerationResult, int]:
    """Generate, retrying retryable ``BackendError``s; returns (result, attempts used).

    A non-retryable error, or the last one when attempts run out, is re-raised with the
    number of attempts made in its ``attempts`` attribute.
    """
    return await _with_retries(
        lambda: backend.generate(request), request.model, policy, slot, sleep, rng
    )


async def embed_with_retries(
    backend: Backend,
    model: str,
    texts: Sequence[str],
    *,
    policy: RetryPolicy,
    slot: Callable[[], contextlib.AbstractAsyncContextManager] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[list[list[float]], int]:
    """``backend.embed`` retried as ``generate_with_retries`` retries a generation;
    returns (vectors, attempts used)."""
    return await _with_retries(lambda: backend.embed(model, texts), model, policy, slot, sleep, rng)


HOST_CHECK_POLICY = RetryPolicy(max_attempts=3, base_delay_s=0.25, max_delay_s=1.0)
"""Asking a host for its models before a run (or in `doctor`): a dropped connection is
tried again, as a generation's would be, before the host is called down (~0.4 s more
for a host that really is down)."""


MODEL_LIST = "(its model list)"  # what a host is asked for before a run, not a model


async def list_models_with_retries(
    backend: Backend,
    *,
    policy: RetryPolicy = HOST_CHECK_POLICY,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> list[ModelInfo]:
    """``backend.list_models`` retried on retryable errors (connection reset, 5xx)."""
    models, _ = await _with_retries(backend.list_models, MODEL_LIST, policy, None, sleep, None)
    return models


async def _with_retries(
    call: Callable[[], Awaitable[T]],
    model: str,
    policy: RetryPolicy,
    slot: Callable[[], contextlib.AbstractAsyncContextManager] | None,
    sleep: Callable[[float], Awaitable[object]],
    rng: random.Random | None,
) -> tuple[T, int]:
    rng = rng or _JITTER
    attempt = 1
    while True:
        started = None
        try:
            async with slot() if slot is not None else contextlib.nullcontext():
                started = time.perf_counter()
                return await call(), attempt
        except BackendError as exc:
            exc.attempts = attempt
            _tell(exc, model, attempt, started)
            last = not exc.retryable or attempt >= policy.max_attempts
            wait = 0.0 if last else policy.delay(attempt, rng)
            then = "giving up" if last else f"retrying in {wait:.2f} s"
            # A timeout is a warning as it happens, the last one too: the wait behind it
            # was long and silent. Other failures are told when retried, as before.
            if exc.outcome == "timeout" or not last:
                log.log(
                    logging.WARNING if exc.outcome == "timeout" else logging.INFO,
                    "attempt %d/%d for %s failed (%s); %s",
                    attempt,
                    policy.max_attempts,
                    "the host's model list" if model == MODEL_LIST else f"model {model}",
                    exc,
                    then,
                )
            if last:
                raise
            await sleep(wait)
            attempt += 1


def _tell(exc: BackendError, model: str, attempt: int, started: float | None) -> None:
    if (listener := ON_ATTEMPT_FAILED.get()) is not None:
        seconds = time.perf_counter() - started if started is not None else 0.0
        listener(FailedAttempt(model, exc.host, attempt, exc.outcome, str(exc), seconds))
