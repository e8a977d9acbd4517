"""OpenAI-compatible servers (vLLM, llama.cpp server, LM Studio, Ollama's ``/v1``) behind
the Backend interface: streamed ``/v1/chat/completions`` and ``/v1/models``.

Parameter mapping: ``num_predict`` → ``max_tokens`` (always sent); ``temperature``,
``top_p`` and ``seed`` are sent when set. ``top_k`` and ``num_ctx`` are not part of this
API and are ignored (not sent): the context size is the server's launch setting.
Counters come from ``usage`` (``stream_options.include_usage``); durations are 0 unless
the server adds llama.cpp's ``timings`` object.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx

from evaluation.backends._client import HttpBackend
from evaluation.backends._http import (
    IncompleteStream,
    StreamErrorLine,
    error_message,
    parse_json_object,
    raise_for_status,
)
from evaluation.backends._preflight import match_models
from evaluation.backends.base import (
    DoneReason,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
)
from evaluation.spec import GenerationParams

_DONE = "[DONE]"


def chat_completion_payload(request: GenerationRequest) -> dict[str, Any]:
    """The request body; see the module docstring for what is sent."""
    params: GenerationParams = request.params
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": params.num_predict,
    }
    for key in ("temperature", "top_p", "seed"):
        value = getattr(params, key)
        if value is not None:
            payload[key] = value
    return payload


class OpenAICompatBackend(HttpBackend):
    """One OpenAI-compatible server: ``OpenAICompatBackend(host, *, timeout_s=120.0,
    first_request_timeout_s=600.0, client=None)``; timeouts as in ``HttpBackend``."""

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """One streamed ``/v1/chat/completions`` call."""
        payload = chat_completion_payload(request)
        return await self._attempt(request.model, lambda timeout: self._stream(payload, timeout))

    async def _stream(self, payload: dict[str, Any], timeout: httpx.Timeout) -> GenerationResult:
        parts: list[str] = []
        ttft: float | None = None
        finish: str | None = None
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        latency: float | None = None
        start = time.perf_counter()
        async with self._client.stream(
            "POST", self._url("/v1/chat/completions"), json=payload, timeout=timeout
        ) as response:
            await raise_for_status(response)
            async for line in response.aiter_lines():
                if not line.startswith("data:") or latency is not None:
                    continue  # blank separators, SSE comments, event names
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
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        parts.append(content)
                    finish = choice.get("finish_reason") or finish
        if latency is None:
            raise IncompleteStream("the stream ended before 'data: [DONE]'")
        return GenerationResult(
            text="".join(parts),
            done_reason=_done_reason(finish),
            latency_s=latency,
            ttft_s=ttft,
            prompt_eval_count=int(usage.get("prompt_tokens") or 0),
            eval_count=int(usage.get("completion_tokens") or 0),
            prompt_eval_duration_ns=_ms_to_ns(timings.get("prompt_ms")),
            eval_duration_ns=_ms_to_ns(timings.get("predicted_ms")),
        )

    async def list_models(self) -> list[ModelInfo]:
        """The server's models (``/v1/models``); only names are known."""
        payload = await self._get_json("/v1/models")
        return [ModelInfo(name=str(entry.get("id", ""))) for entry in payload.get("data") or []]

    async def preflight(self, models: Iterable[str]) -> dict[str, ModelInfo]:
        """Each requested model → the server's entry (exact ids); ModelNotFound otherwise."""
        return match_models(self.host, models, await self.list_models())


def _done_reason(finish: str | None) -> DoneReason:
    if finish is None:
        return ""
    return "length" if finish == "length" else "stop"


def _ms_to_ns(value: Any) -> int:
    return round(float(value) * 1e6) if value else 0
