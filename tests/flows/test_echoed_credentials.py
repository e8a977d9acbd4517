"""A server that repeats its request's credentials in an error (attacker of issue 43,
defect 2): a host answers every generation with HTTP 400 saying the Authorization header
it got and the ``user:password`` that header carries. The host's URL holds a password
with ``/``, a quote, a space, ``@``, ``#``, ``:`` and ``€``, percent-encoded as a URL
must; the run's output, ``show``, every stored row and the export must hold none of it:
not decoded, not encoded, not the Basic header's base64."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest

from flows.cli import main
from tests.flows.cli.test_failure_reasons import spec_for
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

PASSWORD = "Qx7e/'x y@z#w:€Kv9"
BASIC = base64.b64encode(f"u:{PASSWORD}".encode()).decode()
MARKERS = ("Qx7e", "Kv9", BASIC[:12], quote(PASSWORD, safe="")[:12])


def leaks(text: str) -> list[str]:
    return [marker for marker in MARKERS if marker in text]


def test_credentials_a_server_echoes_are_never_printed_or_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "results.db"
    database = f"sqlite:///{db}"
    with running_standin(StandInConfig(slots=2)) as standin:
        standin.set_fault(
            "bad_request", times=1000, message="denied: {authorization} as {credentials}"
        )
        url = standin.url.replace("http://", f"http://u:{quote(PASSWORD, safe='')}@")
        spec = spec_for(tmp_path, url)
        code = main(["--database", database, "run", str(spec), "--limit", "2", "-q"])
        assert standin.stats.requests >= 2  # the server did answer, with the echo
    run = capsys.readouterr()
    assert code == 1 and "\n  2 x " in run.out and "BackendRejected" not in run.out, run.out
    assert "denied: Basic *** as u:***" in run.out  # what the server said, credentials masked
    assert main(["--database", database, "show", "host-fails"]) == 0
    show = capsys.readouterr().out
    assert "denied: Basic *** as u:***" in show
    out = tmp_path / "export"
    assert main(["--database", database, "export", "host-fails", "--out", str(out)]) == 0
    exported = "\n".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert "denied" in exported  # the failure reasons are exported
    with sqlite3.connect(db) as connection:
        tables = [
            t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        rows = "\n".join(
            str(row) for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')
        )
    assert "denied: Basic *** as u:***" in rows
    for text in (run.out, run.err, show, exported, rows):
        assert not leaks(text), leaks(text)
