"""OpenAI-compatible servers (vLLM, llama.cpp server, LM Studio, Ollama's ``/v1``) behind
the Backend interface: streamed ``/v1/chat/completions``, ``/v1/embeddings`` and
``/v1/models``.

Parameter mapping (``openai=`` in ``evaluation.spec._params``): ``num_predict`` →
``max_tokens`` (always sent); ``temperature``, ``top_p`` and ``seed`` are sent when set.
``top_k`` and ``num_ctx`` are not part of this API and are ignored (not sent): the
context size is the server's launch setting.
Counters come from ``usage`` (``stream_options.include_usage``); durations are 0 unless
the server adds llama.cpp's ``timings`` object. A server that sends no ``usage`` at all
(llama-cpp-python's server) streams one delta per generated token, so the output's
token count is its number of content deltas and its decode time is estimated here, as
that count times the mean gap from the first delta to the stream's end; the prompt's
count is None (not reported), never a 0 that would read as an empty prompt.

A prompt that does not fit the server's context window (error code
``context_length_exceeded``) is ``PromptTooLong``: that generation fails, unretried.
llama-cpp-python's server checks the length only once a streamed request's response has
begun, then drops the connection (or answers 500) with no event; so a stream that breaks
before its first content is asked again once, unstreamed and for one token, for the
server's own error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from evaluation.backends._client import HttpBackend
from evaluation.backends._embeddings import checked_vectors
from evaluation.backends._http import (
    IncompleteStream,
    MalformedStream,
    StreamErrorLine,
    error_message,
    parse_json_object,
    raise_for_status,
)
from evaluation.backends._no_api import no_api_at_url, route_missing
from evaluation.backends._preflight import match_models
from evaluation.backends.base import (
    DoneReason,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
)
from evaluation.errors import BackendRejected, PromptTooLong
from evaluation.spec import GenerationParams

_DONE = "[DONE]"
_SHOWN = 120  # characters of an answer that is not a stream, said in its error
_CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"


def chat_completion_payload(request: GenerationRequest) -> dict[str, Any]:
    """The request body; see the module docstring for what is sent."""
    params: GenerationParams = request.params
    return {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        **params.to_openai_fields(),
    }


class OpenAICompatBackend(HttpBackend):
    """One OpenAI-compatible server: ``OpenAICompatBackend(host, *, timeout_s=120.0,
    first_request_timeout_s=600.0, client=None)``; timeouts as in ``HttpBackend``."""

    _context: int | None
    _context_asked = False

    async def context_window(self) -> int | None:
        """The server's context size where it says (llama.cpp's ``/props``:
        ``default_generation_settings.n_ctx``), asked once; None where it does not."""
        if not self._context_asked:
            self._context_asked, self._context = True, None
            try:
                response = await self._client.get(self._url("/props"), timeout=self._timeout)
                if response.status_code == 200:
                    body = response.json()
                    settings = body.get("default_generation_settings") or {}
                    n_ctx = settings.get("n_ctx", body.get("n_ctx"))
                    self._context = n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
        return self._context

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """One streamed ``/v1/chat/completions`` call."""
        payload = chat_completion_payload(request)
        return await self._attempt(request.model, lambda timeout: self._generate(payload, timeout))

    async def _generate(self, payload: dict[str, Any], timeout: httpx.Timeout) -> GenerationResult:
        deltas = _DeltaClock()
        try:
            return await self._stream(payload, timeout, deltas)
        except (httpx.RemoteProtocolError, httpx.HTTPStatusError, IncompleteStream) as exc:
            broke = not isinstance(exc, httpx.HTTPStatusError) or exc.response.status_code >= 500
            if broke and deltas.count == 0:
                await self._raise_what_an_unstreamed_ask_says(payload, timeout)
            raise

    async def _stream(
        self, payload: dict[str, Any], timeout: httpx.Timeout, deltas: _DeltaClock
    ) -> GenerationResult:
        parts: list[str] = []
        ttft: float | None = None
        finish: str | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        latency: float | None = None
        events = 0
        other = ""  # the start of what came that is not an event, said if no event came
        start = time.perf_counter()
        async with self._stream_post("/v1/chat/completions", payload, timeout) as (
            response,
            lines,
        ):
            if response.status_code == 400:
                await response.aread()
                _raise_if_prompt_too_long(response.text, self.host.name, payload["model"])
            await raise_for_status(response)
            async for line in lines:
                if not line.startswith("data:") or latency is not None:
                    if line and not events and len(other) <= _SHOWN:
                        other = f"{other} {line.strip()}".strip()
                    continue  # blank separators, SSE comments, event names
                events += 1
                data = line[len("data:") :].strip()
                if data == _DONE:
                    latency = time.perf_counter() - start
                    continue
                chunk = parse_json_object(data)
                if "error" in chunk or chunk.get("object") == "error":
                    raise StreamErrorLine(error_message(data))
                usage = chunk.get("usage") or usage
                timings = chunk.get("timings") or timings
                for choice in chunk.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content") or ""
                    if content:
                        now = time.perf_counter()
                        deltas.tick(now)
                        if ttft is None:
                            ttft = now - start
                        parts.append(content)
                    finish = choice.get("finish_reason") or finish
        if latency is None and not events and not _event_stream(response):
            raise IncompleteStream(_not_a_stream(response, other))
        if latency is None:
            raise IncompleteStream("the stream ended before 'data: [DONE]'")
        eval_count = int(usage.get("completion_tokens") or 0)
        eval_ns = _ms_to_ns(timings.get("predicted_ms"))
        if not usage:
            eval_count = deltas.count
            eval_ns = eval_ns or deltas.decode_ns(start + latency)
        return GenerationResult(
            text="".join(parts),
            done_reason=_done_reason(finish),
            latency_s=latency,
            ttft_s=ttft,
            prompt_eval_count=_reported(usage.get("prompt_tokens")),
            eval_count=eval_count,
            prompt_eval_duration_ns=_ms_to_ns(timings.get("prompt_ms")),
            eval_duration_ns=eval_ns,
        )

    async def _raise_what_an_unstreamed_ask_says(
        self, payload: dict[str, Any], timeout: httpx.Timeout
    ) -> None:
        """Ask again, unstreamed and for one token; ``PromptTooLong`` when the answer is
        ``context_length_exceeded``, and any other error status raised as such (a stream
        cut at once may hide the server's 500 with its reason, as llama-cpp-python's does
        for an embedding model asked to chat). A 2xx answer is ignored: the caller
        re-raises."""
        probe = {**payload, "stream": False, "max_tokens": 1}
        del probe["stream_options"]
        for _ in range(2):  # the first try may get the broken stream's closed connection
            try:
                response = await self._client.post(
                    self._url("/v1/chat/completions"), json=probe, timeout=timeout
                )
                break
            except httpx.TransportError:
                continue
        else:
            return
        if response.status_code == 400:
            _raise_if_prompt_too_long(
                response.text,
                self.host.name,
                payload["model"],
                how="(the stream broke; asked again unstreamed, for 1 token) ",
            )
        await raise_for_status(response)

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """One ``/v1/embeddings`` call for all ``texts``; the answer's ``data`` entries
        are put back in input order by their ``index``."""
        if not texts:
            return []
        payload = {"model": model, "input": list(texts), "encoding_format": "float"}

        async def call(timeout: httpx.Timeout) -> list[list[float]]:
            answer = await self._post_json("/v1/embeddings", payload, timeout)
            return checked_vectors(_in_input_order(answer.get("data")), len(texts))

        return await self._attempt(model, call)

    async def list_models(self) -> list[ModelInfo]:
        """The server's models (``/v1/models``); only names are known. A 404 there is no
        OpenAI-compatible API at the host's URL (``NoAPIAtURL``)."""
        try:
            payload = await self._get_json("/v1/models")
        except BackendRejected as exc:
            if route_missing(exc):
                raise no_api_at_url(exc, self.host) from exc
            raise
        return [
            ModelInfo(name=str(entry.get("id", "")), owned_by=str(entry.get("owned_by") or ""))
            for entry in payload.get("data") or []
        ]

    async def preflight(self, models: Iterable[str]) -> dict[str, ModelInfo]:
        """Each requested model → the server's entry (exact ids); ModelNotFound otherwise."""
        return match_models(self.host, models, await self.list_models())


class _DeltaClock:
    """When the content deltas of a stream arrived: their count and decode-time estimate."""

    def __init__(self) -> None:
        self.count = 0
        self._first = 0.0

    def tick(self, now: float) -> None:
        if self.count == 0:
            self._first = now
        self.count += 1

    def decode_ns(self, end: float) -> int:
        """``count`` x the mean gap from the first delta to ``end``, the stream's end (its
        n - 1 gaps and the tail after the last); 0 with fewer than two deltas. Timed to
        the end, it spans the window its speed is judged by (``base.decode_window``): the
        client's own figure is never impossible, where deltas read in one burst after a
        stall (a loaded machine) spanned microseconds of a window of a second."""
        if self.count < 2:
            return 0
        return round((end - self._first) / (self.count - 1) * self.count * 1e9)


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _event_stream(response: httpx.Response) -> bool:
    """Whether the answer says it is a stream of events (it may still break)."""
    return _content_type(response) == "text/event-stream"


def _not_a_stream(response: httpx.Response, start: str) -> str:
    """What came where a stream of ``data:`` events was asked (``stream: true``): a proxy
    or server that answers the whole reply as one JSON body said "the stream ended
    before [DONE]", as if a stream had broken."""
    kind = _content_type(response)
    what = f"a{'n' * (kind[:1] in 'aeiou')} {kind} body" if kind else "a body, no content type,"
    body = repr(start[:_SHOWN]) + ("…" if len(start) > _SHOWN else "") if start else "empty"
    return (
        f"no event stream: the server answered {what} ({body}) where a stream of 'data:' "
        "events was asked (stream: true)"
    )


def _raise_if_prompt_too_long(body: str, host: str, model: str, *, how: str = "") -> None:
    """Raise ``PromptTooLong`` when a 400's body carries ``context_length_exceeded``."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return
    if isinstance(error, dict) and error.get("code") == _CONTEXT_LENGTH_EXCEEDED:
        raise PromptTooLong(
            f"{host}: HTTP 400 for model '{model}': prompt too long for the server's "
            f"context window; this generation fails and is not retried: "
            f"{how}{error_message(body)}",
            host=host,
            model=model,
            status_code=400,
        )


def _in_input_order(data: Any) -> list[Any]:
    """The ``embedding`` of each ``data`` entry, sorted by ``index`` (entries without one
    keep their place)."""
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise MalformedStream("the answer has no list of embedding objects in 'data'")
    ordered = sorted(enumerate(data), key=lambda pair: pair[1].get("index", pair[0]))
    return [entry.get("embedding") for _, entry in ordered]


def _done_reason(finish: str | None) -> DoneReason:
    if finish is None:
        return ""
    return "length" if finish == "length" else "stop"


def _reported(value: Any) -> int | None:
    """A token count the server reported, or None when it reported none."""
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ms_to_ns(value: Any) -> int:
    return round(float(value) * 1e6) if value else 0
