"""Hosts whose address accepts connections and then fails them, on real sockets: what
the error says (it read `ReadError: ReadError`), which outcome an attempt records, and
what preflight and `doctor` advise (it was "start Ollama there", for a server that is
there)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evaluation.backends import OllamaBackend, RetryPolicy
from evaluation.backends.retry import ON_ATTEMPT_FAILED, FailedAttempt, list_models_with_retries
from evaluation.errors import BackendUnavailable
from evaluation.run._doctor import check_host
from evaluation.run._preflight import check_before_run
from evaluation.spec import HostSpec
from tests.evaluation.test_preflight_hosts import closed_url, sweep_on
from tests.support.silent_socket import failing_server


async def _list_models(url: str) -> BackendUnavailable:
    backend = OllamaBackend(HostSpec("gpu", url), timeout_s=0.3, first_request_timeout_s=0.3)
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await backend.list_models()
    finally:
        await backend.aclose()
    return caught.value


def test_each_failure_says_what_happened_in_words_and_records_its_outcome() -> None:
    with failing_server("reset") as reset_host, failing_server("silent") as silent_host:
        reset = asyncio.run(_list_models(reset_host.url))
        silent = asyncio.run(_list_models(silent_host.url))
    refused = asyncio.run(_list_models(closed_url()))
    assert str(reset) == "gpu: the connection was reset or closed before the answer came"
    assert (reset.outcome, reset.connected) == ("reset", True)
    assert str(silent) == "gpu: no answer within 0.3 s"
    assert (silent.outcome, silent.connected) == ("timeout", True)
    assert str(refused).startswith("gpu: connection refused at 127.0.0.1:")
    assert (refused.outcome, refused.connected) == ("unreachable", False)


def test_a_host_that_accepts_and_resets_is_not_told_to_start_ollama(tmp_path: Path) -> None:
    """Preflight and `doctor` on an address where something listens but drops every
    request: check what listens there, not "start Ollama there"."""
    with failing_server("reset") as host:
        url = host.url
        with pytest.raises(BackendUnavailable) as caught:
            check_before_run(sweep_on(tmp_path, url, kind="ollama"), timeout_s=2, busy_wait_s=2)
        backend = OllamaBackend(HostSpec("gpu", url), timeout_s=2)
        try:
            doctor = asyncio.run(check_host(backend, ["smollm2-135m"], timeout_s=5))
        finally:
            asyncio.run(backend.aclose())
    for said in (str(caught.value), doctor.detail):
        assert "start Ollama there" not in said and "ReadError: ReadError" not in said
        assert "the connection was reset or closed before the answer came" in said
        assert "ReadError" not in said  # newcomer N8: no class names in a user's line
        assert "something accepts connections there but drops the requests" in said
    with pytest.raises(BackendUnavailable, match="start Ollama there"):  # nothing there
        check_before_run(sweep_on(tmp_path, closed_url(), kind="ollama"), timeout_s=2)


def test_each_timeout_is_logged_as_it_happens_and_told_with_its_outcome(caplog) -> None:
    """A host that accepts and never answers stalled a run with no line saying so."""
    told: list[FailedAttempt] = []

    async def ask(url: str) -> None:
        backend = OllamaBackend(HostSpec("gpu", url), timeout_s=0.3, first_request_timeout_s=0.3)
        token = ON_ATTEMPT_FAILED.set(told.append)
        try:
            policy = RetryPolicy(max_attempts=2, base_delay_s=0.0)
            with pytest.raises(BackendUnavailable):
                await list_models_with_retries(backend, policy=policy)
        finally:
            ON_ATTEMPT_FAILED.reset(token)
            await backend.aclose()

    with failing_server("silent") as host, caplog.at_level("WARNING"):
        asyncio.run(ask(host.url))
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [
        "attempt 1/2 for the host's model list failed (gpu: no answer within "
        "0.3 s); retrying in 0.00 s",
        "attempt 2/2 for the host's model list failed (gpu: no answer within 0.3 s); giving up",
    ]
    assert [(t.host, t.attempt, t.outcome) for t in told] == [
        ("gpu", 1, "timeout"),
        ("gpu", 2, "timeout"),
    ]
    assert all(t.reason == "gpu: no answer within 0.3 s" for t in told)
