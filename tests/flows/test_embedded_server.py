"""The embedded Prefect server keeps its own output out of the command's terminal: it
goes to a log file under evalflow's home, which a failure to start names."""

from __future__ import annotations

import os

import pytest

from flows import embedded_server
from flows.embedded_server import EmbeddedServer, EmbeddedServerError


def test_a_server_that_fails_logs_to_its_file_and_the_error_names_it(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    # A database the server cannot open: its start-up fails with a traceback.
    missing = tmp_path / "no-such-folder" / "prefect.db"
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{missing}")
    server = EmbeddedServer()
    server.start()
    try:
        with pytest.raises(EmbeddedServerError) as failed:
            server.wait_ready(timeout_s=120)
    finally:
        server.stop()

    log = tmp_path / "home" / "logs" / "prefect-server.log"
    assert server.log_path == log
    assert str(log) in str(failed.value)
    text = log.read_text()
    assert text.startswith(f"--- evalflow process {os.getpid()}: ")
    assert "Traceback" in text and "unable to open database file" in text
    terminal = capfd.readouterr()
    assert terminal.out == "" and terminal.err == "", terminal


def test_a_log_past_its_size_starts_afresh_keeping_the_last_one(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_server, "LOG_KEEP_BYTES", 10)
    log = tmp_path / "logs" / "prefect-server.log"
    log.parent.mkdir()
    log.write_text("x" * 11)
    with embedded_server._open_log(log) as out:
        out.write("new\n")
    assert log.read_text() == "new\n"
    assert log.with_name("prefect-server.log.1").read_text() == "x" * 11
    with embedded_server._open_log(log) as out:  # under the limit: appended
        out.write("more\n")
    assert log.read_text() == "new\nmore\n"


def test_servers_starting_together_on_a_fresh_home_all_start(tmp_path, monkeypatch, capfd):
    """Runs started together on a new machine each start a server on one fresh Prefect
    home; the first creates and migrates its database while the others wait for it
    (without the start-up lock, 2 of 3 exited with half-migrated tables)."""
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    servers = [EmbeddedServer() for _ in range(3)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout_s=300)
    finally:
        for server in servers:
            server.stop()
    assert capfd.readouterr() == ("", "")
