"""What every backend speaks: one request in, one result out, errors from errors.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from evaluation.storable_text import storable

if TYPE_CHECKING:  # annotations: storage reads DECODE_WALL_FACTOR without the spec's YAML
    from evaluation.spec import GenerationParams, HostSpec
    from evaluation.suites import Message

DoneReason = Literal["stop", "length", "load", "unload", "error", ""]

# A server's decode speed is taken only up to this many times its request's own wall
# rate (output tokens / the request's decode window, ``decode_window``): decoding takes
# part of that window, never less than a thousandth of it in practice. A llama.cpp
# server once said 6 tokens took 0.12 ms of a 5.6 s request: 50,262 tokens/s, 47,000
# times the wall rate. The window starts at the first token where the client saw one
# before the end (a stream): the time to it (queueing, the prompt) is no decoding, and a
# request that waited 0.27 s for it and decoded 12 tokens in 0.25 ms of the ~1 ms left
# is possible (a tiny model on a loaded machine, a busy server's queue).
DECODE_WALL_FACTOR = 1000


def decode_window(latency_s: float, ttft_s: float | None) -> float:
    """The part of a request's ``latency_s`` its decoding can have taken: from the first
    token to the end where the client saw one before the end (``0 < ttft_s <
    latency_s``: a stream), else the whole request. In plain Python: the record writer
    judges every generation it stores by it (``GenerationResult.tokens_per_s``)."""
    if ttft_s is not None and 0 < ttft_s < latency_s:
        return latency_s - ttft_s
    return latency_s


def possible_decode_rate(tokens_per_s: Any, eval_count: Any, latency_s: Any, ttft_s: Any) -> Any:
    """Whether a decode speed can be true of its request (elementwise on arrays):
    ``tokens_per_s · decode_window ≤ DECODE_WALL_FACTOR · eval_count``; true where the
    latency was not measured. Readers of stored generations drop the others, so a
    value stored before this rule is ignored as a new one is never stored. The window
    is never longer than the request, so no speed the latency alone allowed is dropped."""
    import numpy as np  # on first use: a reader of stored results may need none

    ttft = np.asarray(ttft_s, dtype=float)  # None: not measured, NaN
    with np.errstate(invalid="ignore"):
        streamed = np.greater(ttft, 0) & np.less(ttft, latency_s)
        window = np.where(streamed, np.subtract(latency_s, ttft), latency_s)
        beyond = np.greater(np.multiply(tokens_per_s, window), DECODE_WALL_FACTOR * eval_count)
        return np.logical_not(np.greater(latency_s, 0) & beyond)


def _made_storable(made: object, *names: str) -> None:
    """The text fields ``names`` of a frozen dataclass that holds what a server said,
    made storable (``storable_text.storable``: a lone surrogate, which JSON's
    ``"\\ud800"`` decodes to, becomes U+FFFD), in place."""
    for name in names:
        text = getattr(made, name)
        if isinstance(text, str) and (kept := storable(text)) is not text:
            object.__setattr__(made, name, kept)


@dataclass(frozen=True)
class ModelInfo:
    """A model a host has (Ollama ``/api/tags`` entry, or ``/v1/models`` for OpenAI)."""

    name: str
    digest: str = ""
    family: str = ""
    parameter_size: str = ""  # Ollama's string, e.g. "8.0B"
    quantization: str = ""  # e.g. "Q4_K_M"
    size_bytes: int | None = None
    owned_by: str = ""  # an OpenAI-compatible ``/v1/models`` entry's: which server says it

    def __post_init__(self) -> None:
        names = ("name", "digest", "family", "parameter_size", "quantization", "owned_by")
        _made_storable(self, *names)


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. ``case_id`` and ``sample_index`` identify the work item; real
    backends ignore them, the simulated backend uses them to look up the case and to
    stay deterministic per sample."""

    model: str
    messages: tuple[Message, ...]
    params: GenerationParams
    case_id: str = ""
    sample_index: int = 0


@dataclass(frozen=True)
class GenerationResult:
    """One completed generation with the server's counters and client-side timings.

    Durations from the server are integer nanoseconds (0 when the server did not say).
    ``simulated`` is True only for the simulated backend, so nothing it made can pass
    for real model output.
    """

    text: str
    done_reason: DoneReason
    # client-side, request sent -> last byte (simulated: the simulated one); None: not
    # measured (a pipeline case mixing simulated and real calls, _pipelines.latency_s)
    latency_s: float | None
    ttft_s: float | None  # client-side, request sent -> first content token
    prompt_eval_count: int | None = None  # None: the server did not report it
    eval_count: int = 0
    load_duration_ns: int = 0
    prompt_eval_duration_ns: int = 0
    eval_duration_ns: int = 0
    total_duration_ns: int = 0
    simulated: bool = False
    # What a pipeline recorded with its output (e.g. ``retrieved_spans`` of ``rag``);
    # metrics such as ``retrieval_recall_at_k`` read it. Empty for a single call.
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        _made_storable(self, "text")  # a reply's "\\ud800" (newcomer S2)

    @property
    def tokens_per_s(self) -> float | None:
        """The server's decode speed: eval_count / eval_duration; None when not reported,
        or when impossible for the request's decode window (``possible_decode_rate``)."""
        if self.eval_duration_ns <= 0 or self.eval_count <= 0:
            return None
        rate = self.eval_count / self.eval_duration_ns * 1e9
        # ``possible_decode_rate`` of one value, in plain Python: the record writer asks it
        # of every generation it stores (numpy's scalar calls: ~25 us a record, and
        # numpy's import in the writer process)
        latency = self.latency_s
        if (
            latency is not None
            and latency > 0
            and rate * decode_window(latency, self.ttft_s) > DECODE_WALL_FACTOR * self.eval_count
        ):
            return None
        return rate

    @property
    def truncated(self) -> bool:
        """The output hit num_predict (done_reason "length")."""
        return self.done_reason == "length"


class Backend(Protocol):
    """A model server. ``generate`` and ``embed`` make ONE attempt; retrying is the
    caller's job (see ``retry.generate_with_retries`` / ``retry.embed_with_retries``) so
    that a slot is never held while waiting."""

    host: HostSpec

    async def list_models(self) -> list[ModelInfo]: ...

    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, from embedding model ``model`` (no request
        for no texts). Errors as ``generate``'s: an unknown model is ModelNotFound."""
        ...

    async def aclose(self) -> None: ...
