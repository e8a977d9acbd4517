"""LLM-as-judge: a model on any host a sweep can use scores outputs against a rubric.

Each request is one non-streaming chat call constrained to a JSON schema, with
temperature 0 and a fixed seed: Ollama's ``/api/chat`` with the schema as ``format``, or
an OpenAI-compatible server's ``/v1/chat/completions`` with ``response_format``
(OpenAI's ``json_schema`` form, as vLLM and llama.cpp's server read it; a server that
refuses it with a 400/422, as llama-cpp-python's does, is asked with the
``{"type": "json_object", "schema": ...}`` form instead). Grades are bounded in the
schema both by ``minimum``/``maximum`` and by an ``enum`` of the allowed integers: some
grammar builders ignore the bounds (llama-cpp-python's does; a 270M judge answered
1e15), none ignores an enum. Output that is
still not the JSON asked for (truncated, out of range) is asked again with the next
seed (seed + 1, + 2, ... so a rerun repeats the same sequence), and so is a verdict whose
rationale is junk (:func:`junk_rationale`: no words, or a template placeholder such as
``[insert text here]``); after ``max_attempts``
it is recorded as unscored with the reason. Transient host errors (``BackendError.
retryable``) are retried the same way; a request the host rejects (4xx, unknown model)
raises, since every later request would fail alike.

Pairwise judging asks twice, with the outputs in both orders, to cancel position bias:
a verdict holds only when both orders agree, and a judge that prefers A in one order and
B in the other has contradicted itself (:func:`contradiction_rate`).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import httpx

from evaluation import bounded_json
from evaluation.backends._auth import auth_headers, credentials_sent
from evaluation.backends._client import OwnedClient
from evaluation.backends._http import parse_json_object, raise_for_status, translate_errors
from evaluation.backends.ollama import OllamaBackend
from evaluation.backends.openai_compat import OpenAICompatBackend
from evaluation.errors import BackendError
from evaluation.redact import redact_url
from evaluation.spec import HostSpec
from evaluation.storable_text import storable

JudgeKind = Literal["ollama", "openai"]
GRADES = (1, 2, 3, 4, 5)
PairChoice = Literal["first", "second", "tie"]
PAIR_CHOICES: tuple[str, ...] = ("first", "second", "tie")
# How long the judge waits for the host's model list before judging anything: a
# llama-cpp-python server answers it only between two generations (a minute and more
# when busy), as `run`'s request timeout waits for an answer.
PREFLIGHT_TIMEOUT_S = 120.0

DEFAULT_CRITERIA = MappingProxyType(
    {
        "accuracy": "Is every claim in the response correct (agreeing with the reference "
        "when there is one)? 5: fully correct; 1: wrong.",
        "completeness": "Does the response give everything the input asks for? "
        "5: nothing missing; 1: most of it missing.",
        "relevance": "Does the response stay on what was asked, without padding? "
        "5: entirely relevant; 1: mostly beside the point.",
    }
)


@dataclass(frozen=True)
class Rubric:
    """The criteria a judge scores, each 1–5, with what the grades mean."""

    criteria: Mapping[str, str] = field(default_factory=lambda: DEFAULT_CRITERIA)

    def schema(self) -> dict[str, Any]:
        """The JSON schema sent as ``format``: a rationale, then one integer per
        criterion (the rationale comes first so the model reasons before grading)."""
        grade = {"type": "integer", "minimum": 1, "maximum": 5, "enum": list(GRADES)}
        properties: dict[str, Any] = {"rationale": {"type": "string"}}
        properties.update({name: grade for name in self.criteria})
        return {"type": "object", "properties": properties, "required": list(properties)}

    def pair_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "rationale": {"type": "string"},
                "preference": {"type": "string", "enum": list(PAIR_CHOICES)},
            },
            "required": ["rationale", "preference"],
        }

    def system_prompt(self) -> str:
        lines = [
            "You are a strict, impartial evaluator of answers written by AI assistants.",
            "Grade the RESPONSE to the INPUT on each criterion with an integer from 1 "
            "(worst) to 5 (best):",
        ]
        lines += [f"- {name}: {text}" for name, text in self.criteria.items()]
        lines.append("Reply with JSON only: a short rationale, then the grades.")
        return "\n".join(lines)

    def pair_system_prompt(self) -> str:
        names = ", ".join(self.criteria)
        return (
            "You are a strict, impartial evaluator of answers written by AI assistants. "
            f"Compare the FIRST and SECOND responses to the INPUT on {names}. The order "
            "in which they are shown says nothing about their quality. Reply with JSON "
            'only: a short rationale, then "preference": "first", "second" or "tie".'
        )


@dataclass(frozen=True)
class JudgeScore:
    """Grades per criterion, or ``stars=None`` when unscored; ``reason`` is the judge's
    rationale when scored and why not otherwise."""

    stars: dict[str, int] | None
    reason: str
    attempts: int
    seed: int

    @property
    def scored(self) -> bool:
        return self.stars is not None


@dataclass(frozen=True)
class PairVerdict:
    """Both orders of a pairwise judgement. ``forward``: A shown first; ``backward``: B
    shown first (each "first"/"second"/"tie", None when unscored). ``preference`` is "A",
    "B" or "tie" when both orders agree, "tie" when they disagree, None when either is
    unscored; ``contradicted``: one order chose A and the other B."""

    forward: str | None
    backward: str | None
    preference: str | None
    contradicted: bool | None
    reason: str
    attempts: int


def to_side(choice: str | None, a_first: bool) -> str | None:
    """A pairwise choice as "A"/"B"/"tie", given whether A was shown first."""
    if choice is None or choice == "tie":
        return choice
    first = "A" if a_first else "B"
    second = "B" if a_first else "A"
    return first if choice == "first" else second


def combine_orders(forward: str | None, backward: str | None) -> tuple[str | None, bool | None]:
    """(preference, contradicted) from the choices of both orders."""
    a, b = to_side(forward, True), to_side(backward, False)
    if a is None or b is None:
        return None, None
    return (a if a == b else "tie"), {a, b} == {"A", "B"}


def contradiction_rate(verdicts: Sequence[PairVerdict]) -> tuple[float | None, int]:
    """Share of fully scored pairwise verdicts whose two orders chose opposite outputs,
    and how many verdicts that share is over (None when there are none)."""
    judged = [v.contradicted for v in verdicts if v.contradicted is not None]
    return (sum(judged) / len(judged) if judged else None), len(judged)


class Judge(OwnedClient):
    """A judge model on one host: ``Judge(url, model, *, kind="ollama", rubric, seed=0,
    max_attempts=3, num_predict=512, timeout_s=300.0, retry_delay_s=1.0, client=None,
    api_key_env=None)``; ``kind`` is the host's API and ``api_key_env`` the variable
    holding its key, as in a sweep spec's ``hosts:`` (``ollama`` or ``openai``). A
    client passed in is the caller's to close, and carries any key itself."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        rubric: Rubric | None = None,
        seed: int = 0,
        max_attempts: int = 3,
        num_predict: int = 512,
        timeout_s: float = 300.0,
        retry_delay_s: float = 1.0,
        client: httpx.AsyncClient | None = None,
        host_name: str | None = None,
        kind: JudgeKind = "ollama",
        api_key_env: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if kind not in ("ollama", "openai"):
            raise ValueError(f"a judge's host kind is ollama or openai, not {kind!r}")
        self.kind = kind
        self.model = model
        self.rubric = rubric or Rubric()
        self.seed = seed
        self.max_attempts = max_attempts
        self.num_predict = num_predict
        self.retry_delay_s = retry_delay_s
        self._base = url.rstrip("/")
        self._host = host_name or redact_url(url)  # it names the host in stored reasons
        self._spec = HostSpec(self._host, self._base, kind=kind, api_key_env=api_key_env)
        self._response_format = _json_schema_format  # json_object once a server refuses it
        self._owns_client = client is None
        headers = auth_headers(self._spec) if client is None else {}
        self._key = headers.get("Authorization", "").removeprefix("Bearer ")
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=10), headers=headers
        )

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.model}"

    async def preflight(self) -> None:
        """Check that the host answers and has the judge model, before judging anything
        (BackendUnavailable, or ModelNotFound listing the host's models), with the
        backend a sweep would use for this host."""
        backend = OllamaBackend if self.kind == "ollama" else OpenAICompatBackend
        waits = PREFLIGHT_TIMEOUT_S
        await backend(self._spec, client=self._client, timeout_s=waits).preflight([self.model])

    async def score(
        self, input_text: str, output: str, references: Sequence[str] = ()
    ) -> JudgeScore:
        """Grade one output on every criterion of the rubric."""
        user = _case_text(input_text, references) + f"\n\nRESPONSE:\n{output}"
        criteria = list(self.rubric.criteria)

        def parse(payload: dict[str, Any]) -> dict[str, int]:
            return {name: _grade(payload, name) for name in criteria}

        value, reason, attempts, seed = await self._ask(
            self.rubric.system_prompt(), user, self.rubric.schema(), parse
        )
        return JudgeScore(value, reason, attempts, seed)

    async def choose(
        self, input_text: str, first: str, second: str, references: Sequence[str] = ()
    ) -> tuple[str | None, str, int]:
        """One pairwise judgement in the order given: ("first"/"second"/"tie" or None
        when unscored, rationale or reason, attempts)."""
        user = _case_text(input_text, references)
        user += f"\n\nFIRST RESPONSE:\n{first}\n\nSECOND RESPONSE:\n{second}"

        def parse(payload: dict[str, Any]) -> str:
            choice = payload.get("preference")
            if choice not in PAIR_CHOICES:
                raise ValueError(f"preference {choice!r} is not one of {PAIR_CHOICES}")
            return str(choice)

        value, reason, attempts, _ = await self._ask(
            self.rubric.pair_system_prompt(), user, self.rubric.pair_schema(), parse
        )
        return value, reason, attempts

    async def compare(
        self, input_text: str, output_a: str, output_b: str, references: Sequence[str] = ()
    ) -> PairVerdict:
        """Judge A against B in both orders and combine (see :class:`PairVerdict`)."""
        forward, why_f, n_f = await self.choose(input_text, output_a, output_b, references)
        backward, why_b, n_b = await self.choose(input_text, output_b, output_a, references)
        preference, contradicted = combine_orders(forward, backward)
        reason = f"A first: {why_f} | B first: {why_b}"
        return PairVerdict(forward, backward, preference, contradicted, reason, n_f + n_b)

    async def _ask(
        self,
        system: str,
        user: str,
        schema: dict[str, Any],
        parse: Callable[[dict[str, Any]], Any],
    ) -> tuple[Any, str, int, int]:
        """(parsed value or None, rationale or why unscored, attempts, last seed)."""
        problems: list[str] = []
        seed = self.seed
        for attempt in range(self.max_attempts):
            seed = self.seed + attempt
            try:
                content = await self._chat(system, user, schema, seed)
            except BackendError as exc:
                if not exc.retryable:
                    raise
                problems.append(f"attempt {attempt + 1}: {exc}")
                if attempt + 1 < self.max_attempts:
                    await asyncio.sleep(self.retry_delay_s * (attempt + 1))
                continue
            try:
                # strict=False: a raw newline or tab inside a string (a common small-model
                # slip, "Invalid control character") is no reason to discard a verdict
                # that otherwise meets the schema.
                payload = bounded_json.loads(content, strict=False)
                if not isinstance(payload, dict):
                    raise ValueError("not a JSON object")
                value = parse(payload)
                junk = junk_rationale(payload.get("rationale"))
                if junk is not None:
                    raise ValueError(junk)
            except ValueError as exc:
                problems.append(
                    f"attempt {attempt + 1}: malformed judge output ({exc}): {content[:200]!r}"
                )
                continue
            # JSON in the reply: "\\ud800" or "\\u0000" in it is stored as U+FFFD
            rationale = storable(str(payload.get("rationale", "")))
            return value, rationale, attempt + 1, seed
        return None, "unscored: " + "; ".join(problems), self.max_attempts, seed

    def _translate_errors(self) -> AbstractContextManager[None]:
        """``translate_errors`` for the judge's host: its URL's password and its key
        masked, a 401/403 saying what was sent."""
        sent = credentials_sent(self._spec)
        return translate_errors(self._host, self.model, url=self._base, key=self._key, sent=sent)

    async def _chat(self, system: str, user: str, schema: dict[str, Any], seed: int) -> str:
        if self.kind == "openai":
            return await self._openai_chat(system, user, schema, seed)
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "stream": False,
            "format": schema,
            "options": {"temperature": 0, "seed": seed, "num_predict": self.num_predict},
        }
        with self._translate_errors():
            response = await self._client.post(self._base + "/api/chat", json=body)
            await raise_for_status(response)
            payload = parse_json_object(response.text)
        return str((payload.get("message") or {}).get("content") or "")

    async def _openai_chat(self, system: str, user: str, schema: dict[str, Any], seed: int) -> str:
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "stream": False,
            "temperature": 0,
            "seed": seed,
            "max_tokens": self.num_predict,
        }
        with self._translate_errors():
            while True:
                sent = self._response_format
                body["response_format"] = sent(schema)
                response = await self._client.post(self._base + "/v1/chat/completions", json=body)
                if sent is _json_object_format or not _refuses_format(response):
                    break
                # this server reads the other form (requests in flight may learn it too)
                self._response_format = _json_object_format
            await raise_for_status(response)
            payload = parse_json_object(response.text)
        choices = payload.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")


async def detect_kind(
    url: str, *, timeout_s: float = 10.0, headers: Mapping[str, str] | None = None
) -> JudgeKind:
    """The API a host speaks, for a judge given only its URL: ``openai`` for a URL that
    ends in ``/v1``, or a server that answers Ollama's ``/api/version`` with anything but
    200 (Ollama always answers it) and then answers ``/v1/models``, or is still listing
    them after ``timeout_s`` (llama-cpp-python's server answers ``/v1/models`` only between
    two generations: a busy one took a minute); ``ollama`` otherwise (its preflight then
    says what is wrong). ``headers``: the host's key (a keyed server refuses both
    without it; one that refuses ``/v1/models`` the key is OpenAI-compatible)."""
    if url.rstrip("/").endswith("/v1"):
        return "openai"
    base = url.rstrip("/")
    async with httpx.AsyncClient(timeout=timeout_s, headers=headers) as client:
        try:
            if (await client.get(base + "/api/version")).status_code == 200:
                return "ollama"
        except httpx.HTTPError:
            return "ollama"
        try:
            # 401/403: a keyed OpenAI-compatible server refusing the key (or its absence):
            # its judge then says so, where Ollama's would say no API answers there
            listed = (await client.get(base + "/v1/models")).status_code in (200, 401, 403)
        except httpx.TimeoutException:
            return "openai"  # up, not Ollama, and slow to list: a busy OpenAI-compatible one
        except httpx.HTTPError:
            return "ollama"
    return "openai" if listed else "ollama"


def _refuses_format(response: httpx.Response) -> bool:
    """Whether the server rejected the request's ``response_format`` itself: a 4xx, or
    the 500 llama-cpp-python answers with (its validation error names the field)."""
    status = response.status_code
    return (400 <= status < 500 or status == 500) and "response_format" in response.text


def _json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "judgement", "schema": schema}}


def _json_object_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_object", "schema": schema}


def _case_text(input_text: str, references: Sequence[str]) -> str:
    text = f"INPUT:\n{input_text}"
    if references:
        text += "\n\nREFERENCE ANSWER:\n" + "\n---\n".join(references)
    return text


# A template the model copied instead of reasoning: "[insert text here]", "<reason>".
_PLACEHOLDER = re.compile(
    r"\[\s*insert\b[^\]]*\]"
    r"|<\s*(?:reason|rationale|explanation|insert\b[^>]*|your\b[^>]*)\s*>",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]{2,}")  # two or more letters (any script)


def junk_rationale(rationale: object) -> str | None:
    """Why a verdict's rationale is no reason at all, or None when it is one. Kept
    conservative: junk is a rationale with no word of two or more letters (``][``,
    ``...``, ``5``) or with a template placeholder (``[insert ...]``, ``<reason>``); a
    one-word rationale such as "Correct." is kept. A missing rationale is the schema's
    business, not this check's."""
    if rationale is None:
        return None
    text = str(rationale)
    if _PLACEHOLDER.search(text):
        return "the rationale is a template placeholder"
    if not _WORD.search(text):
        return "the rationale has no words"
    return None


def _grade(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise ValueError(f"{name}: {value!r} is not an integer grade")
    if not 1 <= int(value) <= 5:
        raise ValueError(f"{name}: {value!r} is outside 1–5")
    return int(value)
