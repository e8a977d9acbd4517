"""A host's URL goes where it is shown (attacker of issue 43, defect 1): evalflow hands
httpx a URL it reads the same way (the user and password percent-encoded), or refuses
it, in one line naming where it came from, before any connection. Checked against real
listening sockets: the host the password's start would reach must see no connection."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from evaluation.settings import host_url_problem
from flows.cli import main
from tests.conftest import REPO


class Recorder(http.server.ThreadingHTTPServer):
    """An Ollama-like host that lists no models and records each request's
    Authorization header."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append(self.headers.get("Authorization", ""))
                body = json.dumps({"models": [], "version": "0.5.0"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


@pytest.fixture
def shown_host() -> Iterator[Recorder]:
    server = Recorder()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def other_host() -> Iterator[socket.socket]:
    """A listening socket nobody should connect to (accept() without waiting)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    yield listener
    listener.close()


def connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def spec(tmp_path: Path, hosts: list[dict] | None = None) -> Path:
    data = {
        "name": "reading",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": ["m:1b"],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data | ({"hosts": hosts} if hosts else {})))
    return path


def split_form(other: socket.socket, shown: int, scheme: str = "") -> str:
    """The attacker's URL: the password's start and the host httpx reads, then a path
    that looks like the rest of the password and the host evalflow shows."""
    return f"{scheme}u:Qx7a@127.0.0.1:{other.getsockname()[1]}/b:Kv9@127.0.0.1:{shown}"


@pytest.mark.parametrize("where", ["OLLAMA_HOST", "--url", "hosts[0].url"])
def test_a_url_httpx_reads_as_another_host_is_refused_before_connecting(
    where: str,
    tmp_path: Path,
    other_host: socket.socket,
    shown_host: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = f"sqlite:///{tmp_path / 'results.db'}"
    if where == "OLLAMA_HOST":
        monkeypatch.setenv("OLLAMA_HOST", split_form(other_host, shown_host.port))
        argv = ["--database", database, "plan", str(spec(tmp_path))]
    elif where == "--url":
        url = split_form(other_host, shown_host.port)
        argv = ["--database", database, "judge", "x", "--model", "m:1b", "--url", url]
    else:
        url = split_form(other_host, shown_host.port, "http://")
        argv = ["--database", database, "plan", str(spec(tmp_path, [{"name": "a", "url": url}]))]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse refuses --url itself
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert where in lines[0] and "another host than the one shown" in lines[0], err
    assert "Qx7a" not in err and "Kv9" not in err
    assert not connected(other_host) and shown_host.seen == []
    assert not (tmp_path / "results.db").exists()


def test_a_password_holding_a_hash_goes_whole_to_the_host_shown(
    tmp_path: Path,
    shown_host: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``u:Qx7q'b c@d#e:Kv9@127.0.0.1:PORT``: httpx alone would look up the host ``d``
    (a piece of the password); evalflow sends to the host it shows, the password whole."""
    password = "Qx7q'b c@d#e:Kv9"
    monkeypatch.setenv("OLLAMA_HOST", f"u:{password}@127.0.0.1:{shown_host.port}")
    main(["--database", f"sqlite:///{tmp_path / 'r.db'}", "doctor", str(spec(tmp_path))])
    out = capsys.readouterr()
    assert f"u:***@127.0.0.1:{shown_host.port}" in out.out, out
    basic = "Basic " + base64.b64encode(f"u:{password}".encode()).decode()
    assert shown_host.seen and set(shown_host.seen) == {basic}
    assert "Qx7q" not in out.out + out.err and "Kv9" not in out.out + out.err


@pytest.mark.parametrize("value", ["http://a b:11434", "http://[::1", "[::1:11434"])
def test_a_host_that_cannot_be_reached_as_written_is_refused_at_plan(
    value: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert main(["plan", str(spec(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "OLLAMA_HOST" in err, err


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434",
        "https://gpu.example.com",
        "http://TOKEN@gpu:1",
        "http://ana:p%2Fw%23x@gpu:1/v1",
        "http://ana:p w'x@y:z@gpu:1",
        "http://[::1]:11434",
        "http://[fe80::1%25eth0]:11434",
        "http://héllo.example:1",
    ],
)
def test_a_host_url_httpx_reads_as_shown_is_taken(url: str) -> None:
    assert host_url_problem(url) is None


@pytest.mark.parametrize("userinfo", ["sk-P1SECRET42", "sk-P1SECRET42:"])
@pytest.mark.parametrize("verb", ["plan", "doctor"])
def test_a_token_pasted_as_a_host_urls_user_name_is_never_printed(
    verb: str, userinfo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """httpx sends ``http://TOKEN@host``'s user name as Basic auth: `plan` and `doctor`
    printed it whole (newcomer ncreal's P1), where ``user:password@`` was masked; and
    ``TOKEN:@`` (an empty password, curl's ``-u KEY:``) too (the recheck's R1)."""
    host = {"name": "gw", "url": f"http://{userinfo}@127.0.0.1:1", "kind": "openai"}
    main([verb, str(spec(tmp_path, [host]))])
    out = capsys.readouterr()
    assert "http://***@127.0.0.1:1" in out.out + out.err
    assert "P1SECRET42" not in out.out + out.err


class Refusing(http.server.ThreadingHTTPServer):
    """A host that answers 401 to every request."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


@pytest.mark.parametrize("userinfo", ["sk-R6KEY333", "ana:sk-R6PW321"])
def test_the_verbose_traceback_masks_a_host_urls_key(
    userinfo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-v`'s traceback named httpx's URL with the key or password whole (the recheck's
    R6: "for url 'http://sk-...@127.0.0.1:28732/v1/models'"); the error line below it
    was masked. Both are now."""
    server = Refusing()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://{userinfo}@127.0.0.1:{server.port}/v1"
        host = {"name": "gw", "url": url, "kind": "openai"}
        assert main(["-v", "run", str(spec(tmp_path, [host]))]) == 2
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "401" in err
    assert "R6KEY333" not in err and "R6PW321" not in err
