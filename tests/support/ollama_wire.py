"""Byte-level framing for the stand-in server: Ollama's NDJSON and the OpenAI-compatible
SSE dialect, raw ASGI send/receive helpers, and the exact error bodies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"

Counters = dict[str, int]  # Ollama's final-chunk counters, durations in integer ns


def not_found_message(model: str) -> str:
    return f'model "{model}" not found, try pulling it first'


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def dumps(payload: Any) -> bytes:
    """Compact JSON, as Go's encoder writes it."""
    return json.dumps(payload, separators=(",", ":")).encode()


def split_tokens(tokens: list[str], parts: int) -> list[str]:
    """Tokens joined into at most ``parts`` consecutive chunks."""
    if not tokens:
        return []
    parts = max(1, min(parts, len(tokens)))
    size, extra = divmod(len(tokens), parts)
    chunks, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        chunks.append("".join(tokens[start:end]))
        start = end
    return chunks


class OllamaDialect:
    """``/api/chat``: NDJSON chunks, a final chunk with counters; stream defaults on."""

    content_type = b"application/x-ndjson"
    stream_default = True

    @staticmethod
    def error(message: str, status: int) -> dict[str, Any]:
        return {"error": message}

    @staticmethod
    def num_predict(body: Mapping[str, Any]) -> int:
        return int((body.get("options") or {}).get("num_predict", -1))

    @staticmethod
    def stop(body: Mapping[str, Any]) -> list[str]:
        return list((body.get("options") or {}).get("stop") or [])

    @staticmethod
    def _message(model: str, content: str, done: bool) -> dict[str, Any]:
        message = {"role": "assistant", "content": content}
        return {"model": model, "created_at": now_rfc3339(), "message": message, "done": done}

    @classmethod
    def chunk(cls, model: str, piece: str) -> bytes:
        return dumps(cls._message(model, piece, False)) + b"\n"

    @staticmethod
    def error_line(message: str) -> bytes:
        return dumps({"error": message}) + b"\n"

    @classmethod
    def final(cls, model: str, text: str, reason: str, counters: Counters) -> dict[str, Any]:
        return {**cls._message(model, text, True), "done_reason": reason, **counters}

    @classmethod
    def final_stream(cls, model: str, reason: str, counters: Counters, body: Mapping) -> bytes:
        return dumps(cls.final(model, "", reason, counters)) + b"\n"

    @staticmethod
    def embeddings(model: str, vectors: list[list[float]], counters: Counters) -> dict[str, Any]:
        """An ``/api/embed`` answer."""
        keep = ("total_duration", "load_duration", "prompt_eval_count")
        return {"model": model, "embeddings": vectors, **{k: counters[k] for k in keep}}


class OpenAIDialect:
    """``/v1/chat/completions``: SSE ``data:`` chunks ending ``data: [DONE]``; stream
    defaults off; usage only with ``stream_options.include_usage``."""

    content_type = b"text/event-stream"
    stream_default = False

    @staticmethod
    def error(message: str, status: int) -> dict[str, Any]:
        kind = "invalid_request_error" if 400 <= status < 500 else "api_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    @staticmethod
    def num_predict(body: Mapping[str, Any]) -> int:
        value = body.get("max_tokens", body.get("max_completion_tokens"))
        return -1 if value is None else int(value)

    @staticmethod
    def stop(body: Mapping[str, Any]) -> list[str]:
        value = body.get("stop") or []
        return [value] if isinstance(value, str) else list(value)

    @staticmethod
    def _envelope(model: str, obj: str, choices: list, **extra: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-standin",
            "object": obj,
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": choices,
            **extra,
        }

    @staticmethod
    def _sse(payload: Any) -> bytes:
        return b"data: " + dumps(payload) + b"\n\n"

    @classmethod
    def _delta(cls, model: str, piece: str, finish: str | None) -> bytes:
        delta = {"role": "assistant", "content": piece}
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return cls._sse(cls._envelope(model, "chat.completion.chunk", [choice]))

    @classmethod
    def chunk(cls, model: str, piece: str) -> bytes:
        return cls._delta(model, piece, None)

    @classmethod
    def error_line(cls, message: str) -> bytes:
        return cls._sse(cls.error(message, 500))

    @staticmethod
    def _usage(counters: Counters) -> dict[str, int]:
        prompt, completion = counters["prompt_eval_count"], counters["eval_count"]
        total = prompt + completion
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}

    @classmethod
    def final(cls, model: str, text: str, reason: str, counters: Counters) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": reason}
        return cls._envelope(model, "chat.completion", [choice], usage=cls._usage(counters))

    @classmethod
    def final_stream(cls, model: str, reason: str, counters: Counters, body: Mapping) -> bytes:
        out = cls._delta(model, "", reason)
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = cls._usage(counters)
            out += cls._sse(cls._envelope(model, "chat.completion.chunk", [], usage=usage))
        return out + b"data: [DONE]\n\n"

    @staticmethod
    def embeddings(model: str, vectors: list[list[float]], counters: Counters) -> dict[str, Any]:
        """A ``/v1/embeddings`` answer."""
        data = [
            {"object": "embedding", "embedding": vector, "index": i}
            for i, vector in enumerate(vectors)
        ]
        tokens = counters["prompt_eval_count"]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": model, "usage": usage}


Dialect = type[OllamaDialect] | type[OpenAIDialect]


def model_details(model: str) -> dict[str, Any]:
    family = model.split(":")[0].split("/")[-1].rstrip("0123456789.").lower() or "llama"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_K_M",
    }


def tag_entry(model: str) -> dict[str, Any]:
    """An ``/api/tags`` entry, with a digest derived from the name."""
    return {
        "name": model,
        "model": model,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 4_920_753_328,
        "digest": hashlib.sha256(model.encode()).hexdigest(),
        "details": model_details(model),
    }


def ps_entry(model: str) -> dict[str, Any]:
    """An ``/api/ps`` entry for a resident model."""
    tag = tag_entry(model)
    keep = {k: tag[k] for k in ("name", "model", "size", "digest", "details")}
    return {
        **keep,
        "expires_at": "2099-01-01T00:00:00Z",
        "size_vram": tag["size"],
        "context_length": 4096,
    }


def openai_model_entry(model: str) -> dict[str, Any]:
    """A ``/v1/models`` entry."""
    return {"id": model, "object": "model", "created": 0, "owned_by": "library"}


def show_body(model: str) -> dict[str, Any]:
    """An ``/api/show`` answer."""
    return {
        "license": "",
        "modelfile": f"FROM {model}",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "system": "",
        "details": model_details(model),
        "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
        "capabilities": ["completion"],
        "modified_at": "2025-01-01T00:00:00Z",
    }


async def respond(send: Callable, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Callable, status: int, payload: Any) -> None:
    await respond(send, status, dumps(payload), b"application/json; charset=utf-8")


async def start_stream(send: Callable, content_type: bytes) -> None:
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def send_part(send: Callable, data: bytes, *, last: bool = False) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": not last})


async def read_json(receive: Callable, send: Callable, dialect: Dialect) -> dict | None:
    """The request body as a JSON object, or None after answering 400 as Ollama does
    (or after the client went away)."""
    raw = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    if not raw:
        await respond_json(send, 400, dialect.error("missing request body", 400))
        return None
    try:
        body = json.loads(raw)
    except ValueError as exc:
        await respond_json(send, 400, dialect.error(str(exc), 400))
        return None
    if not isinstance(body, dict):
        await respond_json(send, 400, dialect.error("request body must be a JSON object", 400))
        return None
    return body


async def sleep_unless_gone(seconds: float, receive: Callable) -> bool:
    """Sleep, unless the client disconnects first (then False)."""
    gone = asyncio.ensure_future(wait_disconnect(receive))
    done, _ = await asyncio.wait({gone}, timeout=seconds)
    gone.cancel()
    return not done


async def wait_disconnect(receive: Callable) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
