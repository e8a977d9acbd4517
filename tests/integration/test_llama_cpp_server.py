"""A real inference engine we did not write: llama.cpp, served by llama-cpp-python's
OpenAI-compatible server (``python -m llama_cpp.server``), driven through evalflow's
OpenAI-compatible backend and the real ``evaluate`` flow.

The model is a tiny llama-architecture GGUF with RANDOM weights that the test writes
itself (tests/support/tiny_gguf.py): its outputs are gibberish and say nothing about any
real model. What is real is the engine: its tokenizer, chat template, sampling, seeds,
streaming, context window and error bodies. Needs llama-cpp-python (the ``dev`` extra);
skipped, saying so, where it is not installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlmodel import Session, select

from evaluation.backends import GenerationRequest, OpenAICompatBackend
from evaluation.errors import PromptTooLong
from evaluation.spec import GenerationParams, HostSpec
from evaluation.storage.db import make_engine
from evaluation.storage.models import Generation
from evaluation.suites import Message
from tests.support.tiny_gguf import MODEL_NAME, write_tiny_llama

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")

pytestmark = [pytest.mark.integration, pytest.mark.anyio, pytest.mark.timeout(180)]

# The server's context window (--n_ctx), in tokens. llama.cpp rounds it up to a multiple
# of 256, and llama-cpp-python 0.3.36 sizes its own buffers by the unrounded value, so a
# smaller window crashes (500) instead of answering context_length_exceeded.
CONTEXT = 256
LONG_INPUT = "spell out every digit of pi you know " * 8  # ~315 tokens: one per character


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSpec]:
    """llama-cpp-python's server on the tiny random model, one request at a time."""
    folder = tmp_path_factory.mktemp("llama")
    model = write_tiny_llama(folder / "tiny-random.gguf")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--model_alias", MODEL_NAME, "--n_ctx", str(CONTEXT), "--n_threads", "1"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {(folder / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer within 60 s")
            time.sleep(0.2)
        yield HostSpec(name="llama-cpp", url=url, slots=1, kind="openai")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def request(prompt: str, **params) -> GenerationRequest:
    return GenerationRequest(MODEL_NAME, (Message("user", prompt),), GenerationParams(**params))


async def generate(host: HostSpec, prompt: str, **params):
    async with OpenAICompatBackend(host, timeout_s=30.0) as backend:
        return await backend.generate(request(prompt, **params))


async def test_streams_real_decoding_with_timing_and_counts(llama_server: HostSpec) -> None:
    result = await generate(llama_server, "count to five", num_predict=24, temperature=0.0)
    # The server's own count of the same greedy completion, without streaming.
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.post(
            f"{llama_server.url}/v1/chat/completions",
            json={
                "model": MODEL_NAME,
                "messages": [{"role": "user", "content": "count to five"}],
                "max_tokens": 24,
                "temperature": 0.0,
            },
        )
    body = response.json()
    assert result.text == body["choices"][0]["message"]["content"]
    assert result.eval_count == body["usage"]["completion_tokens"] > 0
    assert result.done_reason == (
        "length" if body["choices"][0]["finish_reason"] == "length" else "stop"
    )
    assert result.ttft_s is not None and 0 < result.ttft_s <= result.latency_s
    if result.eval_count >= 2:
        assert result.eval_duration_ns > 0
        assert result.tokens_per_s is not None and result.tokens_per_s > 0


async def test_models_are_listed_by_alias(llama_server: HostSpec) -> None:
    async with OpenAICompatBackend(llama_server) as backend:
        found = await backend.preflight([MODEL_NAME])
    assert found[MODEL_NAME].name == MODEL_NAME


async def test_same_seed_reproduces_and_other_seeds_differ(llama_server: HostSpec) -> None:
    prompt = "tell me a story"
    greedy = [
        await generate(llama_server, prompt, num_predict=20, temperature=0.0, seed=s)
        for s in (1, 2)
    ]
    assert greedy[0].text == greedy[1].text  # temperature 0: greedy, whatever the seed
    hot = {}
    for seed in (1, 2, 3, 1):
        result = await generate(llama_server, prompt, num_predict=20, temperature=1.5, seed=seed)
        hot.setdefault(seed, []).append(result.text)
    assert hot[1][0] == hot[1][1]  # same seed, same sample
    assert len({hot[1][0], hot[2][0], hot[3][0]}) == 3
    assert greedy[0].text not in {hot[2][0], hot[3][0]}


async def test_a_prompt_beyond_the_context_window_is_prompt_too_long(
    llama_server: HostSpec,
) -> None:
    with pytest.raises(PromptTooLong) as caught:
        await generate(llama_server, LONG_INPUT, num_predict=16)
    message = str(caught.value)
    assert "\n" not in message
    assert f"maximum context length is {CONTEXT} tokens" in message  # the server's words
    assert "not retried" in message
    assert not caught.value.retryable


def write_sweep(folder: Path, host: HostSpec) -> Path:
    cases = [
        {"id": "short-1", "input": "name a colour", "references": ["blue"]},
        {"id": "short-2", "input": "name a fruit", "references": ["apple"]},
        {"id": "too-long", "input": LONG_INPUT, "references": ["3.14"]},
    ]
    suite = folder / "tiny.jsonl"
    suite.write_text("".join(json.dumps(c) + "\n" for c in cases))
    (folder / "tiny.suite.yaml").write_text(
        "name: tiny-random\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
    )
    spec = {
        "name": "llama-cpp-random-weights",
        "suite": str(suite),
        "models": [MODEL_NAME],
        "grid": {"temperature": [0.0, 1.0], "seed": [7], "num_predict": [12]},
        "hosts": [{"name": host.name, "url": host.url, "slots": 1, "kind": "openai"}],
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.usefixtures("prefect_harness")
def test_evaluate_flow_runs_a_sweep_on_the_real_engine(
    llama_server: HostSpec, tmp_path: Path, database_url: str
) -> None:
    from flows.evaluate import evaluate

    spec = write_sweep(tmp_path, llama_server)
    summary = asyncio.run(evaluate(spec_path=str(spec), database=database_url))
    assert (summary["generated"], summary["failed"]) == (4, 2)
    assert summary["simulated"] is False  # a real engine; its random weights are the test's
    with Session(make_engine(database_url)) as session:
        rows = session.exec(select(Generation)).all()
    failed = [r for r in rows if r.status == "failed"]
    assert sorted(r.case_uid for r in failed) == ["tiny-random/too-long"] * 2
    for row in failed:  # one line each; the sweep went on; not retried
        assert row.error.startswith("PromptTooLong: ")
        assert "\n" not in row.error and "not retried" in row.error
        assert row.attempts == 1
    ok = [r for r in rows if r.status == "ok"]
    assert len(ok) == 4
    for row in ok:
        assert 0 < row.eval_count <= 12
        assert row.ttft_s is not None and row.latency_s is not None
        if row.eval_count >= 2:
            # the engine's speed as the client timed its deltas, from the first to the
            # stream's end: the window it is judged by, so reported whatever the machine's
            # load (CI: a 0.27 s wait for the first token, 12 deltas read in one burst)
            window = row.latency_s - row.ttft_s
            assert row.tokens_per_s == pytest.approx((row.eval_count - 1) / window, rel=1e-3)


async def test_max_tokens_trimmed_to_the_context_is_flagged_as_a_context_cut(
    llama_server: HostSpec,
) -> None:
    """Issue 27.3 on the real engine: with prompt + max_tokens beyond the context,
    llama.cpp trims max_tokens to what is left and stops on "length" early; evalflow flags
    the call as cut by the context window, not as an ordinary length stop."""
    from evaluation.backends.retry import RetryPolicy
    from evaluation.run._pipelines import CaseRoute, run_case
    from evaluation.run._work import WorkItem
    from evaluation.spec import Config, PromptTemplate
    from evaluation.suites import Case, Suite

    suite = Suite("s", "1", "qa", ("contains",), ())
    near_full = "digits " * 30  # ~210 of the 256 tokens, one per character
    config = Config(
        MODEL_NAME, GenerationParams(num_predict=64, temperature=0.0), PromptTemplate("d")
    )
    work = WorkItem(config, Case("c", near_full, ("x",)), "s")
    async with OpenAICompatBackend(llama_server, timeout_s=30.0) as backend:
        result, _, trace = await run_case(work, suite, CaseRoute(backend, RetryPolicy()))
    if result.done_reason != "length":
        pytest.skip(f"the random model stopped by itself after {result.eval_count} tokens")
    assert result.eval_count < 64  # trimmed (llama-cpp-python reports no prompt count)
    assert trace.stages[0].context_truncated
