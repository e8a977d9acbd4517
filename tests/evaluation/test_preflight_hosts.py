"""`run`'s check of its hosts: against a server busy with another client (it took the
connection but does not answer: llama-cpp-python serves one request at a time), and
where in the spec a host it refuses is."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from evaluation.errors import BackendError, BackendUnavailable, HostBusy, ModelNotFound
from evaluation.run._doctor import DoctorReport, check_host
from evaluation.run._preflight import check_before_run, preflight_hosts
from evaluation.run._sweep import prepare_sweep
from tests.conftest import REPO
from tests.support.standin_ollama import StandIn, StandInConfig, running_standin

BUSY = "connected but no answer within 0.5 s (busy with another request?)"


def sweep_on(tmp_path: Path, url: str, model: str = "smollm2-135m", kind: str = "openai"):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: t\nsuite: {REPO / 'benchmarks/suites/qa-short.jsonl'}\n"
        f"models: [{model}]\n"
        "hosts:\n"
        "  - name: llama-cpp\n"
        f"    url: '{url}'\n"
        + (f"    kind: {kind}\n" if kind != "ollama" else "")
        + "    slots: 1\n"
    )
    return prepare_sweep(spec)


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def server():
    with running_standin(StandInConfig(models=("gemma3-270m",), openai_only=True)) as standin:
        yield standin


def test_a_busy_host_is_waited_for_then_its_models_are_checked(tmp_path: Path, server: StandIn):
    """It was refused as unreachable ("no answer within 3 s"), exit 2; idle, the same
    spec gets the right error: the host does not have the model."""
    said: list[str] = []

    def say(line: str) -> None:  # the other client's request ends once we wait
        said.append(line)
        server.hang_listings(0)

    server.hang_listings(10**6)
    with pytest.raises(ModelNotFound, match="does not have 'smollm2-135m'; it has: gemma3-270m"):
        check_before_run(sweep_on(tmp_path, server.url), timeout_s=0.5, busy_wait_s=30, say=say)
    assert said == [
        f"waiting up to 30 s for busy host 'llama-cpp' ({server.url}): "
        "connected, no answer within 0.5 s"
    ]


def test_a_host_busy_all_along_is_refused_as_busy_not_down(tmp_path: Path, server: StandIn):
    """Refused as HostBusy: the command exits 75, try later (it was 2, as bad input)."""
    from flows.cli.app import error_line

    server.hang_listings(10**6)
    said: list[str] = []
    with pytest.raises(HostBusy) as caught:
        check_before_run(
            sweep_on(tmp_path, server.url), timeout_s=0.5, busy_wait_s=0.5, say=said.append
        )
    assert len(said) == 1
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'spec.yaml'}:6:10: field 'hosts[0].url': no host")
    assert f"GET {server.url}/v1/models: {BUSY}" in message
    assert "start the OpenAI-compatible server" not in message  # it is running
    assert error_line(caught.value)[0] == 75


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_a_host_that_answers_overloaded_is_refused_for_now_not_unreachable(
    tmp_path: Path, kind: str
) -> None:
    """A host answering its model listing 503 (Ollama's "server busy") was "cannot reach
    any host ... start Ollama there", exit 2: it is there and said it is overloaded. Now
    the line says so and to run again later, exit 75."""
    from flows.cli.app import error_line

    config = StandInConfig(models=("smollm2-135m",), openai_only=kind == "openai")
    with running_standin(config) as standin:
        standin.overload_listings(10**6)
        with pytest.raises(HostBusy) as caught:
            check_before_run(sweep_on(tmp_path, standin.url, kind=kind), busy_wait_s=0.5)
    code, line = error_line(caught.value)
    path = "/api/tags" if kind == "ollama" else "/v1/models"
    assert code == 75
    assert "field 'hosts[0].url': the host of model 'smollm2-135m' answered: overloaded (" in line
    assert f"GET {standin.url}{path}: HTTP 503: server busy, please try again." in line
    assert "run the same command again when the server is free" in line
    assert "cannot reach" not in line and "start " not in line


def test_a_refused_connection_is_unreachable_at_once(tmp_path: Path) -> None:
    said: list[str] = []
    with pytest.raises(BackendUnavailable, match=r"connection refused at 127\.0\.0\.1:") as caught:
        check_before_run(
            sweep_on(tmp_path, closed_url()), timeout_s=30, busy_wait_s=30, say=said.append
        )
    assert said == [] and "busy" not in str(caught.value)
    assert not isinstance(caught.value, HostBusy)  # exit 2: its URL to fix


def test_a_host_left_out_is_said_in_words_not_by_its_error_class(server: StandIn) -> None:
    # The run's warning read "host down left out of this run: BackendUnavailable: down:
    # connection refused at ...": the class name, and the host named twice.
    from evaluation.backends import OpenAICompatBackend
    from evaluation.spec import HostSpec

    url = closed_url()
    hosts = [HostSpec("up", server.url, kind="openai"), HostSpec("down", url, kind="openai")]

    async def checks():
        backends = {h.name: OpenAICompatBackend(h, timeout_s=5) for h in hosts}
        try:
            return await preflight_hosts(backends, ["gemma3-270m"])
        finally:
            await asyncio.gather(*(b.aclose() for b in backends.values()))

    by_host = asyncio.run(checks())
    assert by_host["up"].up
    assert by_host["down"].error == f"connection refused at {url.removeprefix('http://')}"


def test_doctor_reports_a_silent_host_busy_only_while_a_run_of_ours_uses_it(
    server: StandIn,
) -> None:
    from evaluation.backends import make_backend
    from evaluation.spec import Limits

    server.hang_listings(10**6)

    async def check(in_use_by):
        backend = make_backend(server.host("llama-cpp", kind="openai"), Limits())
        try:
            return await check_host(backend, ["gemma3-270m"], timeout_s=0.5, in_use_by=in_use_by)
        finally:
            await backend.aclose()

    result = asyncio.run(check("nightly"))
    busy = "connected but no answer within 0.5 s: busy with experiment 'nightly', which runs on it"
    assert (result.status, result.detail) == ("busy", f"{server.url}: {busy}")
    report = DoctorReport((result,))
    assert report.healthy  # not counted as down
    assert report.render_text().splitlines()[0].startswith("BUSY  host llama-cpp")
    # no run of ours on it: "busy" was a guess that called a hung server healthy
    alone = asyncio.run(check(None))
    assert alone.status == "fail" and not DoctorReport((alone,)).healthy
    assert alone.detail.startswith(f"{server.url}: not answering: connected but no answer")


@pytest.mark.parametrize(
    ("case", "where", "says"),
    [
        ("wrong url", "6:10: field 'hosts[0].url'", "cannot reach any host for model"),
        ("wrong model", "3:10: field 'models[0]'", "host 'llama-cpp'"),
        ("wrong kind", "5:5: field 'hosts[0].kind'", "llama-cpp: GET http://127.0.0.1:"),
    ],
)
def test_a_refused_host_is_placed_in_the_spec(tmp_path: Path, server: StandIn, case, where, says):
    """Host errors had no file:line:col, unlike every other spec error."""
    url = closed_url() if case == "wrong url" else server.url
    model = "gemma3-270m" if case != "wrong model" else "smollm2-135m"
    sweep = sweep_on(tmp_path, url, model, kind="ollama" if case == "wrong kind" else "openai")
    with pytest.raises(BackendError) as caught:
        check_before_run(sweep, timeout_s=30)
    assert str(caught.value).startswith(f"{tmp_path / 'spec.yaml'}:{where}: {says}")


def test_a_metrics_embedding_model_the_host_lacks_is_placed_on_the_metric(
    tmp_path: Path, server: StandIn
):
    """The newcomer's F13: semantic_similarity's default embedding model missing blamed
    hosts[0] and said "fix the spec's models"; the fix is the metric's embed_model."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: t\nsuite: {REPO / 'benchmarks/suites/qa-short.jsonl'}\n"
        "models: [gemma3-270m]\n"
        "metrics: [semantic_similarity]\n"
        "hosts: [{name: llama-cpp, url: '" + server.url + "', kind: openai, slots: 1}]\n"
    )
    with pytest.raises(ModelNotFound) as caught:
        check_before_run(prepare_sweep(spec), timeout_s=30)
    message = str(caught.value)
    assert message.startswith(f"{spec}:4:11: field 'metrics[0]': host 'llama-cpp'")
    assert "does not have 'nomic-embed-text'; it has: gemma3-270m" in message
    assert message.endswith(
        "give semantic_similarity an embedding model the host has: "
        "`metrics: [{semantic_similarity: {embed_model: NAME}}]`"
    )
    assert "fix the spec's models" not in message


@pytest.mark.parametrize("used", ["rag", "metric"])
def test_an_embedding_model_that_pools_nothing_is_refused_before_any_case(
    tmp_path: Path, used: str
):
    """Newcomers' P3 at preflight: a chat GGUF served for embeddings (a vector per token)
    was refused only once a case ran (the rag pipeline's first embedding; a metric's
    after every generation); one embedding asked before the run stops it with the same
    words, at the spec's field that names the model (exit 2), nothing generated."""
    from evaluation.errors import BackendRejected
    from flows.cli.app import error_line

    config = StandInConfig(
        models=("gemma3-270m", "smol-embed"), openai_only=True, unpooled=frozenset({"smol-embed"})
    )
    suites = REPO / "benchmarks/suites"
    if used == "rag":
        uses = (
            f"suite: {suites / 'rag-reports.jsonl'}\n"
            "pipeline:\n"
            "  name: rag\n"
            f"  corpus: {suites / 'corpora/rag-reports.jsonl'}\n"
            "  embed_model: smol-embed\n"
        )
        where = "6:16: field 'pipeline.embed_model'"
    else:
        uses = (
            f"suite: {suites / 'qa-short.jsonl'}\n"
            "metrics: [{semantic_similarity: {embed_model: smol-embed}}]\n"
        )
        where = "3:11: field 'metrics[0]'"
    with running_standin(config) as server:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            f"name: t\n{uses}models: [gemma3-270m]\n"
            "hosts: [{name: llama-cpp, url: '" + server.url + "', kind: openai, slots: 1}]\n"
        )
        with pytest.raises(BackendRejected) as caught:
            check_before_run(prepare_sweep(spec), timeout_s=30)
        assert (server.stats.requests, server.stats.embed_requests) == (0, 1)
    message = str(caught.value)
    assert message.startswith(f"{spec}:{where}: ")
    assert "the server answered one vector per token (3 of 384 numbers for an input)" in message
    assert "Serve an embedding model" in message and "--pooling mean" in message
    assert error_line(caught.value)[0] == 2
