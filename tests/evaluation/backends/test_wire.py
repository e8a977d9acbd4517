"""The HTTP backends' transport (evaluation/backends/_wire.py) against a scripted server
on a real socket: each framing of an answer, keep-alive, connections the server closed,
the pool's cap, and each failure as the httpx exception that httpx's own transport raises
(``_http.translate_errors`` maps those)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from evaluation.backends import GenerationRequest, OllamaBackend
from evaluation.backends._client import _stream_headers
from evaluation.backends._http import pool_limits, shared_tls_context
from evaluation.backends._machine_slots import LOCK_DIR_ENV
from evaluation.backends._wire import WireTransport
from evaluation.spec import GenerationParams, HostSpec
from evaluation.suites import Message
from tests.support.standin_ollama import StandIn

pytestmark = pytest.mark.anyio

Answer = Callable[[bytes], bytes | None]  # request head + body -> raw answer (None: close)


class Scripted:
    """Answers each request with the next of ``answers``; counts connections."""

    def __init__(self, *answers: Answer | bytes | None) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.answers.pop(0)
                answer = answer(request) if callable(answer) else answer
                if answer is None:  # close without answering
                    break
                if answer == b"silent":
                    await asyncio.sleep(3600)
                writer.write(answer)
                await writer.drain()
                if answer.startswith(b"HTTP/1.0") or b"Connection: close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(script: Scripted, tls: ssl.SSLContext | None = None) -> AsyncIterator[Scripted]:
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0, ssl=tls)
    script.server = server
    scheme = "https" if tls is not None else "http"
    script.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield script
    finally:
        server.close()


def client(
    limits: httpx.Limits | None = None, timeout: float = 5.0, verify: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    limits = limits or pool_limits(4)
    transport = WireTransport(limits, verify or shared_tls_context())
    return httpx.AsyncClient(transport=transport, timeout=timeout)


SIZED = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"6\r\nline 1\r\n7;ext=1\r\n\nline 2\r\n1\r\n\n\r\n0\r\nX-Trailer: t\r\n\r\n"
)
TO_THE_END = b"HTTP/1.0 200 OK\r\n\r\nuntil the end"


async def test_each_framing_is_read_whole_and_kept_alive_connections_are_used_again():
    async with (
        serving(Scripted(SIZED, CHUNKED, SIZED, TO_THE_END, SIZED)) as host,
        client() as http,
    ):
        assert (await http.get(host.url + "/a?q=1")).text == "hello"
        async with http.stream("POST", host.url + "/b", json={"x": 1}) as response:
            lines = [line async for line in response.aiter_lines()]
        assert lines == ["line 1", "line 2"]
        assert (await http.get(host.url)).text == "hello"
        assert host.connections == 1  # three requests, one connection
        assert (await http.get(host.url)).text == "until the end"
        assert (await http.get(host.url)).text == "hello"
        assert host.connections == 2  # the HTTP/1.0 answer ended its connection
    assert host.requests[0].startswith(b"GET /a?q=1 HTTP/1.1\r\n")
    assert host.requests[1].endswith(b'\r\n\r\n{"x":1}')
    assert b"content-length: 7" in host.requests[1].lower()


async def test_a_connection_the_server_closed_while_idle_is_not_used():
    closing = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    async with serving(Scripted(closing, SIZED)) as host, client() as http:
        assert (await http.get(host.url)).text == "ok"
        assert (await http.get(host.url)).text == "hello"
    assert host.connections == 2


async def test_a_request_on_a_kept_alive_connection_closed_unanswered_is_sent_again_on_another():
    """llama-server closes the connection after each streamed answer, though its head
    says Keep-Alive: a request sent on it before the close arrived went unanswered."""
    async with serving(Scripted(SIZED, None, SIZED)) as host, client() as http:
        assert (await http.get(host.url)).text == "hello"
        assert (await http.get(host.url)).text == "hello"
    assert host.connections == 2
    assert len(host.requests) == 3  # the second, sent again on a new connection


async def test_a_request_sent_again_fails_with_what_happened_to_it_first():
    """A host that took the request and went away before answering was reset: the port
    refusing the request sent again is not what happened to it (tests/flows/test_hung_host.py)."""

    def close_and_stop_listening(request: bytes) -> None:
        host.server.close()  # new connections are refused from here on

    async with serving(Scripted(SIZED, close_and_stop_listening)) as host, client() as http:
        assert (await http.get(host.url)).text == "hello"
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.get(host.url)
    assert host.connections == 1


@pytest.mark.parametrize(
    ("answer", "error", "said"),
    [
        (None, httpx.RemoteProtocolError, "Server disconnected without sending a response."),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhalf",
            httpx.RemoteProtocolError,
            "received 4 bytes, expected 10",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\nhal",
            httpx.RemoteProtocolError,
            "incomplete chunked read",
        ),
        (b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError, "not an HTTP/1 status line"),
    ],
)
async def test_an_answer_cut_short_or_not_http_is_a_protocol_error(answer, error, said):
    async with serving(Scripted(answer, SIZED)) as host, client() as http:
        with pytest.raises(error, match=said) as caught:
            await http.get(host.url)
        assert caught.value.request.url == httpx.URL(host.url)
        assert (await http.get(host.url)).text == "hello"  # on a new connection
    assert host.connections == 2


async def test_no_listener_is_a_connect_error_and_a_silent_host_a_read_timeout():
    async with serving(Scripted()) as host:
        closed = host.url
    async with client(timeout=0.2) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(closed)
    async with serving(Scripted(b"silent", SIZED)) as host, client(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await http.get(host.url)
        assert caught.value.request.extensions["timeout"]["read"] == 0.2
        assert (await http.get(host.url)).text == "hello"


async def test_the_pool_caps_connections_and_a_cancelled_request_drops_its_own():
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with serving(Scripted(CHUNKED, SIZED, b"silent", SIZED)) as host, client(limits) as http:
        held = await http.send(http.build_request("GET", host.url), stream=True)
        second = asyncio.ensure_future(http.get(host.url))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not second.done()  # waiting for the one connection
        assert [line async for line in held.aiter_lines()] == ["line 1", "line 2"]
        await held.aclose()
        assert (await second).text == "hello"
        assert host.connections == 1
        silent = asyncio.ensure_future(http.get(host.url))
        while len(host.requests) < 3:
            await asyncio.sleep(0.01)
        silent.cancel()
        with pytest.raises(asyncio.CancelledError):
            await silent
        assert (await http.get(host.url)).text == "hello"  # its own connection closed
        assert host.connections == 2
    with pytest.raises(httpx.PoolTimeout):
        async with (
            serving(Scripted(CHUNKED)) as host,
            client(limits, timeout=0.1) as http,
            http.stream("GET", host.url),  # holds the one connection
        ):
            await http.get(host.url)


async def test_a_many_slot_host_answers_every_concurrent_generation(
    standin: StandIn, tmp_path, monkeypatch
):
    """Through the real client: 64 generations at once on a 32-slot host, all answered,
    the host never past its slots, no more sockets than the client's limit."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    standin.reconfigure(slots=32, latency_ms=20.0)
    request = GenerationRequest(
        "llama3", (Message("user", "hello there"),), GenerationParams(num_predict=8)
    )
    async with OllamaBackend(standin.host(slots=32)) as backend:
        transport = backend._client._transport
        assert isinstance(transport, WireTransport)
        results = await asyncio.gather(*(backend.generate(request) for _ in range(64)))
        assert transport._open <= pool_limits(32).max_connections
    assert [r.text for r in results] == ["hello there"] * 64
    assert standin.stats.max_in_flight <= 32


async def test_a_backend_reaches_its_host_directly_whatever_proxy_the_environment_names(
    monkeypatch,
):
    """docs/running-for-real.md: model servers are reached directly. A proxy variable in
    the environment (here one that refuses every connection) stays out of the requests."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with serving(Scripted(SIZED)) as host:
        backend = OllamaBackend(HostSpec("h", host.url))
        try:
            assert (await backend._client.get(host.url + "/api/version")).text == "hello"
        finally:
            await backend.aclose()
    assert host.requests[0].startswith(b"GET /api/version HTTP/1.1\r\n")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, signed by its own key: (certificate, key) files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "host.pem", folder / "host.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_an_https_host_is_verified_and_answers_over_tls(tmp_path):
    """A host behind TLS: answered when its certificate is trusted, a ConnectError that
    says why when it is not (as httpx's own transport raised)."""
    cert_file, key_file = _self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert_file, key_file)
    trusting = ssl.create_default_context(cafile=str(cert_file))
    async with serving(Scripted(SIZED, CHUNKED), tls=served) as host:
        async with client(verify=trusting) as http:
            assert (await http.get(host.url)).text == "hello"
            async with http.stream("GET", host.url) as response:
                assert [line async for line in response.aiter_lines()] == ["line 1", "line 2"]
        assert host.connections == 1
        async with client() as http:  # the system's authorities: not this certificate
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(host.url)


def _chat_chunks(*chunks: bytes) -> bytes:
    """A streamed /api/chat answer whose body arrives in ``chunks`` (chunked framing)."""
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"


async def test_a_streamed_generation_goes_to_the_transport_as_httpx_would_send_it():
    """The backend's own transport gets streamed calls straight (``_stream_post``): the
    same request httpx's client sends but for Accept-Encoding (the answer is not
    decoded), and the answer's lines split from its bytes, a line cut across reads and
    ``\\r\\n`` endings included; the connection is used again."""
    answer = _chat_chunks(
        '{"message":{"content":"Ré"}}\r\n{"message":{"con'.encode(),
        b'tent":"sum\xc3',
        b'\xa9"}}\n\n',
        b'{"message":{"content":""},"done":true,"done_reason":"stop","eval_count":3}',
    )
    async with serving(Scripted(answer, answer)) as script:
        host = HostSpec("h", script.url, slots=2)
        request = GenerationRequest(
            model="m", messages=[Message("user", "hé")], params=GenerationParams()
        )
        async with OllamaBackend(host) as backend:
            first = await backend.generate(request)
            second = await backend.generate(request)
        async with httpx.AsyncClient() as plain:
            sent_by_httpx = plain.build_request("POST", script.url + "/api/chat", json={"a": 1})
    assert first.text == second.text == "Résumé"
    assert (first.done_reason, first.eval_count) == ("stop", 3)
    assert script.connections == 1
    head, _, body = script.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/chat HTTP/1.1"
    sent = dict(line.split(b": ", 1) for line in lines[1:])
    expected = {k.encode(): v.encode() for k, v in sent_by_httpx.headers.items()}
    del expected[b"accept-encoding"]
    expected[b"content-length"] = str(len(body)).encode()
    assert {k.lower(): v for k, v in sent.items()} == expected
    assert body.decode().startswith('{"model":"m","messages":[{"role":"user","content":"hé"}]')


def test_credentials_in_a_host_url_are_sent_as_httpx_sends_them():
    """``http://user:password@host``: streamed calls skip httpx's auth flow, so the headers
    carry the Basic auth that flow would add (without it a host behind a password
    answered 401/400 to every generation)."""
    url = httpx.URL("http://u%40x:p%C3%A9%3Aw@127.0.0.1:9/api/chat")
    flow = httpx.BasicAuth(url.username, url.password).auth_flow(httpx.Request("POST", url))
    expected = next(flow).headers["Authorization"]
    with_credentials = _stream_headers(httpx.AsyncClient(), url)
    assert with_credentials["Authorization"] == expected
    assert with_credentials["Host"] == "127.0.0.1:9"
    assert "Authorization" not in _stream_headers(httpx.AsyncClient(), httpx.URL("http://h/x"))
