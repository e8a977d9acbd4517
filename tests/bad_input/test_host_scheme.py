"""An https:// host URL where the server speaks plain HTTP: the TLS handshake fails
(OpenSSL's WRONG_VERSION_NUMBER), and `run` and `doctor` told the user to start the
server there, though it was running. They say to use http://, at the spec's url field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evaluation.backends import OpenAICompatBackend
from evaluation.errors import BackendRejected
from evaluation.run._doctor import check_host
from evaluation.run._preflight import check_before_run
from evaluation.spec import HostSpec
from tests.evaluation.test_preflight_hosts import sweep_on
from tests.support.standin_ollama import StandInConfig, running_standin

HINT = "the server answers plain HTTP, not TLS: use http:// in the host's url"


def test_an_https_url_of_a_plain_http_server_says_use_http(tmp_path: Path) -> None:
    with running_standin(StandInConfig(models=("gemma3-270m",), openai_only=True)) as server:
        url = server.url.replace("http://", "https://", 1)
        with pytest.raises(BackendRejected) as caught:
            check_before_run(sweep_on(tmp_path, url, "gemma3-270m"), timeout_s=5)
        backend = OpenAICompatBackend(HostSpec("llama-cpp", url, kind="openai"), timeout_s=5)
        try:
            doctor = asyncio.run(check_host(backend, ["gemma3-270m"], timeout_s=5))
        finally:
            asyncio.run(backend.aclose())
    said = str(caught.value)
    assert said.startswith(f"{tmp_path / 'spec.yaml'}:6:10: field 'hosts[0].url': llama-cpp: ")
    assert "WRONG_VERSION_NUMBER" in said and said.endswith(HINT)
    assert doctor.status == "fail" and doctor.detail.endswith(HINT), doctor.detail
    for text in (said, doctor.detail):
        assert "start the OpenAI-compatible server" not in text
