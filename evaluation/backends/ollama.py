"""Ollama's native API over httpx: streamed ``/api/chat``, ``/api/embed``, ``/api/tags``
preflight, ``/api/version`` and ``/api/ps`` for doctor and telemetry.

``generate`` and ``embed`` make one attempt and raises errors from ``evaluation.errors`` (mapped in
``_http``); retrying is ``retry.generate_with_retries``'s job.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from evaluation.backends._client import HttpBackend
from evaluation.backends._embeddings import checked_vectors
from evaluation.backends._http import (
    IncompleteStream,
    StreamErrorLine,
    parse_json_object,
    raise_for_status,
)
from evaluation.backends._no_api import no_api_at_url, route_missing, what_answered
from evaluation.backends._preflight import match_models, ollama_name_key
from evaluation.backends.base import GenerationRequest, GenerationResult, ModelInfo
from evaluation.errors import BackendRejected, EvalError, NotOllamaAPI
from evaluation.redact import PASSWORD_NOTE
from evaluation.spec import HostSpec, default_hosts

T = TypeVar("T")


@dataclass(frozen=True)
class LoadedModel:
    """A model the host has in memory now (``/api/ps``)."""

    name: str
    size_vram: int
    size: int
    context_length: int | None
    expires_at: str


def _kind_hint(host: HostSpec) -> str:
    """How to make ``host`` an OpenAI-compatible one in the spec. A spec that names no
    hosts has the implicit 'local' (``default_hosts``: $OLLAMA_HOST's server): "set
    `kind: openai` on host 'local'" sent a newcomer looking for a host not in the file."""
    try:
        implicit = host == default_hosts()[0]
    except EvalError:  # $OLLAMA_HOST unreadable: this host is not from it
        implicit = False
    if implicit:
        return (
            "the spec names no hosts (host 'local' is $OLLAMA_HOST's server): add "
            f'`hosts: [{{name: local, url: "{host.shown_url}", kind: openai, slots: 1}}]` '
            f"to the spec{PASSWORD_NOTE * (host.shown_url != host.url)}"
        )
    return f"set `kind: openai` on host '{host.name}' in the spec"


class OllamaBackend(HttpBackend):
    """One Ollama host: ``OllamaBackend(host, *, timeout_s=120.0,
    first_request_timeout_s=600.0, client=None)``; timeouts as in ``HttpBackend``."""

    async def _hint_if_not_ollama(self, call: Awaitable[T]) -> T:
        """Await ``call``; a 404 that names no model (the route itself is missing) is
        re-raised as what the server is: OpenAI-compatible when it answers
        ``/v1/models`` (set ``kind: openai``), maybe so when it does not answer in time,
        and no model API at all when that 404s too (``NoAPIAtURL``: fix the URL). A 401/403
        there is its ``KeyRefused``: a keyed server (vLLM, llama.cpp) guards ``/v1`` only, so
        its ``/api/...`` 404 says nothing of the key, which is what to fix first."""
        try:
            return await call
        except BackendRejected as exc:
            if not route_missing(exc):
                raise
            try:
                answer = await self._client.get(self._url("/v1/models"), timeout=self._timeout)
                if answer.status_code in (401, 403):  # an OpenAI-compatible server's key
                    with self._translate_errors():
                        await raise_for_status(answer)
                openai: bool | None = answer.status_code == 200
            except httpx.TimeoutException:
                openai = None  # busy (llama-cpp-python lists only between generations)
            except httpx.HTTPError:
                openai = False
            if openai is False:
                raise no_api_at_url(exc, self.host, also="/v1/models") from exc
            hint = (
                "the server answers /v1/models: it is OpenAI-compatible"
                if openai
                else "the server may be OpenAI-compatible (llama.cpp, vLLM): it did not "
                "list /v1/models in time"
            )
            detail = f"{exc.host}: {what_answered(exc, self.host.url)}; not Ollama's API: {hint}"
            raise NotOllamaAPI(
                f"{detail}; {_kind_hint(self.host)}",
                detail=detail,
                openai_compatible=bool(openai),
                host=exc.host,
                model=exc.model,
                status_code=exc.status_code,
            ) from exc

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """One streamed ``/api/chat`` call; ``num_predict`` is always in ``options``."""
        payload = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "options": request.params.to_ollama_options(),
        }
        return await self._hint_if_not_ollama(
            self._attempt(request.model, lambda timeout: self._stream_chat(payload, timeout))
        )

    async def _stream_chat(
        self, payload: dict[str, Any], timeout: httpx.Timeout
    ) -> GenerationResult:
        parts: list[str] = []
        ttft: float | None = None
        final: dict[str, Any] | None = None
        latency = 0.0
        start = time.perf_counter()
        async with self._stream_post("/api/chat", payload, timeout) as (response, lines):
            await raise_for_status(response)
            # Read to the end of the body even after the final chunk, so the connection
            # goes back to the pool instead of being closed.
            async for line in lines:
                if not line.strip() or final is not None:
                    continue
                chunk = parse_json_object(line)
                if "error" in chunk:
                    raise StreamErrorLine(str(chunk["error"]))
                content = (chunk.get("message") or {}).get("content") or ""
                if content:
                    if ttft is None:
                        ttft = time.perf_counter() - start
                    parts.append(content)
                if chunk.get("done"):
                    latency = time.perf_counter() - start
                    final = chunk
        if final is None:
            raise IncompleteStream("the stream ended before its final chunk (done: true)")
        return GenerationResult(
            text="".join(parts),
            done_reason=final.get("done_reason") or "",
            latency_s=latency,
            ttft_s=ttft,
            prompt_eval_count=_reported(final, "prompt_eval_count"),
            eval_count=_count(final, "eval_count"),
            load_duration_ns=_count(final, "load_duration"),
            prompt_eval_duration_ns=_count(final, "prompt_eval_duration"),
            eval_duration_ns=_count(final, "eval_duration"),
            total_duration_ns=_count(final, "total_duration"),
        )

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """One ``/api/embed`` call for all ``texts`` (Ollama truncates each to the
        model's context, its default)."""
        if not texts:
            return []
        payload = {"model": model, "input": list(texts)}

        async def call(timeout: httpx.Timeout) -> list[list[float]]:
            answer = await self._post_json("/api/embed", payload, timeout)
            return checked_vectors(answer.get("embeddings"), len(texts))

        return await self._hint_if_not_ollama(self._attempt(model, call))

    async def list_models(self) -> list[ModelInfo]:
        """The host's models (``/api/tags``)."""
        payload = await self._hint_if_not_ollama(self._get_json("/api/tags"))
        models = []
        for entry in payload.get("models") or []:
            details = entry.get("details") or {}
            models.append(
                ModelInfo(
                    name=entry.get("name") or entry.get("model") or "",
                    digest=entry.get("digest") or "",
                    family=details.get("family") or "",
                    parameter_size=details.get("parameter_size") or "",
                    quantization=details.get("quantization_level") or "",
                    size_bytes=entry.get("size"),
                )
            )
        return models

    async def preflight(self, models: Iterable[str]) -> dict[str, ModelInfo]:
        """Each requested model → the host's entry, matched as Ollama matches names
        ("llama3" is "llama3:latest"); ModelNotFound lists what the host has."""
        return match_models(self.host, models, await self.list_models(), key=ollama_name_key)

    async def version(self) -> str:
        """The server's version (``/api/version``)."""
        return str((await self._get_json("/api/version")).get("version", ""))

    async def loaded_models(self) -> list[LoadedModel]:
        """Models in memory now (``/api/ps``)."""
        payload = await self._get_json("/api/ps")
        return [
            LoadedModel(
                name=entry.get("name") or entry.get("model") or "",
                size_vram=_count(entry, "size_vram"),
                size=_count(entry, "size"),
                context_length=entry.get("context_length"),
                expires_at=entry.get("expires_at") or "",
            )
            for entry in payload.get("models") or []
        ]


def _reported(payload: dict[str, Any], key: str) -> int | None:
    """A counter the server may leave out (Ollama omits ``prompt_eval_count`` when the
    whole prompt came from its cache): None when absent, never a made-up 0."""
    value = payload.get(key)
    return None if value is None else int(value)


def _count(payload: dict[str, Any], key: str) -> int:
    """An integer counter from the server; absent or null is 0."""
    return int(payload.get(key) or 0)
