"""A host's key against a server evalflow did not write: llama-cpp-python's server
started with an ``api_key`` (as ``--api_key``), SmolLM2 alone. A sweep whose host names
the variable holding the key runs its generations; the same sweep without the key, or
with another, is refused in one line before anything is stored, and the key is nowhere
in what the run stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.errors import KeyRefused
from evaluation.run._preflight import check_before_run
from evaluation.run._sweep import prepare_sweep
from tests.real_models.conftest import SUITES, run_sweep, write_spec
from tests.support.real_models import SMOLLM2, RealServer, serving

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

KEY = "sk-llama-Vq3k8"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    with serving(tmp_path_factory.mktemp("llama-keyed"), api_key=KEY) as server:
        yield server


def keyed_spec(folder: Path, server: RealServer) -> Path:
    host = server.host() | {"api_key_env": "LLAMA_KEY"}
    return write_spec(
        folder, server, SUITES / "qa-short.jsonl", name="keyed", models=[SMOLLM2], hosts=[host]
    )


@pytest.mark.usefixtures("prefect_harness")
def test_the_key_is_sent_and_stored_nowhere(keyed_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LLAMA_KEY", KEY)
    database = tmp_path / "keyed.db"
    summary = run_sweep(keyed_spec(tmp_path, keyed_server), f"sqlite:///{database}", limit=3)
    assert (summary["generated"], summary["failed"]) == (3, 0), summary
    with sqlite3.connect(database) as connection:
        listed = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = [name for (name,) in listed]
        rows = [repr(r) for t in tables for r in connection.execute(f'SELECT * FROM "{t}"')]
    assert len(rows) > 10 and not [r for r in rows if KEY in r]


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (None, "llama-cpp: HTTP 401 "),
        ("sk-not-the-key", "the host refused the key from $LLAMA_KEY"),
    ],
)
def test_no_key_or_another_is_refused_in_one_line(
    keyed_server, tmp_path, monkeypatch, key, said
) -> None:
    spec = keyed_spec(tmp_path, keyed_server)
    if key is None:  # the host as a spec without api_key_env has it
        spec.write_text(spec.read_text().replace("  api_key_env: LLAMA_KEY\n", ""))
    else:
        monkeypatch.setenv("LLAMA_KEY", key)
    with pytest.raises(KeyRefused) as refused:
        check_before_run(prepare_sweep(spec))
    message = str(refused.value)
    assert said in message and "\n" not in message, message
    assert message.startswith(f"{spec}:"), message  # where in the spec
    if key is None:
        assert "the host wants a key and none was sent" in message
