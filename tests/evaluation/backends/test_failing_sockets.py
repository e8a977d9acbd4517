"""Hosts whose address accepts connections and then fails them, on real sockets: what
the error says (it read `ReadError: ReadError`), which outcome an attempt records, and
what preflight and `doctor` advise (it was "start Ollama there", for a server that is
there)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evaluation.backends import OllamaBackend
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
    with failing_server("reset") as reset_url, failing_server("silent") as silent_url:
        reset = asyncio.run(_list_models(reset_url))
        silent = asyncio.run(_list_models(silent_url))
    refused = asyncio.run(_list_models(closed_url()))
    assert str(reset) == "gpu: ReadError: the connection was reset or closed before the answer came"
    assert (reset.outcome, reset.connected) == ("reset", True)
    assert str(silent) == "gpu: ReadTimeout: no answer within 0.3 s"
    assert (silent.outcome, silent.connected) == ("timeout", True)
    assert str(refused).startswith("gpu: ConnectError: ")
    assert (refused.outcome, refused.connected) == ("unreachable", False)


def test_a_host_that_accepts_and_resets_is_not_told_to_start_ollama(tmp_path: Path) -> None:
    """Preflight and `doctor` on an address where something listens but drops every
    request: check what listens there, not "start Ollama there"."""
    with failing_server("reset") as url:
        with pytest.raises(BackendUnavailable) as caught:
            check_before_run(sweep_on(tmp_path, url, kind="ollama"), timeout_s=2, busy_wait_s=2)
        backend = OllamaBackend(HostSpec("gpu", url), timeout_s=2)
        try:
            doctor = asyncio.run(check_host(backend, ["smollm2-135m"], timeout_s=5))
        finally:
            asyncio.run(backend.aclose())
    for said in (str(caught.value), doctor.detail):
        assert "start Ollama there" not in said and "ReadError: ReadError" not in said
        assert "ReadError: the connection was reset or closed before the answer came" in said
        assert "something accepts connections there but drops the requests" in said
    with pytest.raises(BackendUnavailable, match="start Ollama there"):  # nothing there
        check_before_run(sweep_on(tmp_path, closed_url(), kind="ollama"), timeout_s=2)
