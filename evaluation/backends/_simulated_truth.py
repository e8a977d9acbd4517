"""Ground truth of the simulated backend: what each model and setting truly does.

Every number here is documented in docs/simulated-backend.md (a test keeps the two in
step). ``true_profile`` is what the statistics and selection benchmarks compare their
findings with; the simulated backend draws its outputs and timings from the same
functions, so what a sweep measures converges to it.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from evaluation.spec import GenerationParams
from evaluation.suites import TaskType

TASK_TYPES: tuple[TaskType, ...] = ("qa", "summarization", "classification", "generation", "code")

# Ollama's defaults for options a request leaves unset.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.9
DEFAULT_NUM_CTX = 2048

LATENCY_SIGMA = 0.15  # log-normal spread of latency around its mean
DIFFICULTY_CORRELATION = 0.5  # share of the correctness latent that is the case's own


@dataclass(frozen=True)
class ModelProfile:
    """A simulated model. ``quality`` is per task type at temperature <= 0.3 with the
    default template; ``chatty`` is the share of correct answers it wraps in a phrase."""

    name: str
    size_b: float
    quality: dict[str, float]
    overhead_s: float
    prompt_tokens_per_s: float
    tokens_per_s: float
    watts: float
    chatty: float


def _profile(name: str, size_b: float, quality: tuple[float, ...], *rest: float) -> ModelProfile:
    return ModelProfile(name, size_b, dict(zip(TASK_TYPES, quality, strict=True)), *rest)


SIM_MODELS: dict[str, ModelProfile] = {
    p.name: p
    for p in (
        # name, size, quality (qa, summ., class., gen., code), overhead, prompt tok/s,
        # decode tok/s, watts, chatty
        _profile("sim-small:1b", 1.0, (0.55, 0.50, 0.70, 0.50, 0.35), 0.05, 4000, 120, 60, 0.30),
        _profile("sim-medium:3b", 3.0, (0.68, 0.62, 0.80, 0.62, 0.50), 0.08, 2500, 70, 110, 0.20),
        _profile("sim-large:8b", 8.0, (0.80, 0.72, 0.88, 0.74, 0.65), 0.12, 1200, 40, 200, 0.10),
        _profile("sim-xl:14b", 14.0, (0.84, 0.76, 0.90, 0.78, 0.72), 0.18, 700, 24, 300, 0.10),
    )
}

# How fast quality falls with temperature above 0.3, per task type.
TEMPERATURE_SENSITIVITY = {
    "qa": 0.5,
    "summarization": 0.4,
    "classification": 0.5,
    "generation": 0.25,
    "code": 0.8,
}


@dataclass(frozen=True)
class TemplateEffect:
    """What a prompt template does: quality added per task type, the factor on the
    model's chattiness, and whether it makes the model reason before answering."""

    quality_delta: dict[str, float]
    chatty_factor: float = 1.0
    reasons: bool = False


def _deltas(*values: float) -> dict[str, float]:
    return dict(zip(TASK_TYPES, values, strict=True))


TEMPLATE_EFFECTS = {
    "concise": TemplateEffect(_deltas(0.02, -0.04, 0.01, -0.03, 0.0), chatty_factor=0.0),
    "cot": TemplateEffect(_deltas(0.05, -0.02, 0.02, 0.0, 0.04), reasons=True),
    "few_shot": TemplateEffect(_deltas(0.03, 0.0, 0.04, 0.01, 0.02), chatty_factor=0.5),
}
_TEMPLATE_ALIASES = {"chain_of_thought": "cot", "step_by_step": "cot", "fewshot": "few_shot"}
NO_EFFECT = TemplateEffect(_deltas(0.0, 0.0, 0.0, 0.0, 0.0))

# Typical lengths in words, for profiles asked for without a specific case.
TYPICAL_PROMPT_WORDS = {
    "qa": 60,
    "summarization": 400,
    "classification": 50,
    "generation": 40,
    "code": 60,
}
TYPICAL_ANSWER_WORDS = {
    "qa": 4,
    "summarization": 60,
    "classification": 1,
    "generation": 120,
    "code": 80,
}
SHORT_ANSWER_TASKS = ("qa", "classification")
CHATTY_SHORT = "The answer is {answer}."
CHATTY_LONG = "Sure, here it is: {answer}"
REASONING_OPENING = "Let me think step by step."
REASONING_CLOSING = "So the answer is:"
REASONING_WORDS = 24  # words of the input the model "thinks aloud" with


def tokens(words: int) -> int:
    """Simulated token count of ``words`` words: ceil(1.3 × words), in integers."""
    return (words * 13 + 9) // 10


def words_within(token_budget: int) -> int:
    """The most words whose token count fits ``token_budget``."""
    return token_budget * 10 // 13


def template_effect(template_name: str) -> TemplateEffect:
    """The effect of a template by name (case and "-"/" " do not matter); unknown
    names have no effect."""
    key = re.sub(r"[-\s]+", "_", template_name.strip().lower())
    return TEMPLATE_EFFECTS.get(_TEMPLATE_ALIASES.get(key, key), NO_EFFECT)


def _unit(*parts: str) -> float:
    """A stable number in [0, 1) from strings (sha256, not Python's salted hash())."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)b(?![a-z])")


@cache
def model_profile(model: str) -> ModelProfile:
    """The profile of a model: the table for the sim-* models; for any other name, the
    table interpolated at the size the name states ("llama3.1:8b" -> 8B) or, without
    one, a size drawn from the name's hash (log-uniform 0.5-20B), with small hash-drawn
    offsets (quality ±0.03 per task, decode speed ±10%)."""
    if model in SIM_MODELS:
        return SIM_MODELS[model]
    stated = _SIZE.search(model.lower())
    if stated and float(stated.group(1)) > 0:
        size = float(stated.group(1))
    else:
        size = math.exp(math.log(0.5) + _unit(model, "size") * math.log(20 / 0.5))
    rows = sorted(SIM_MODELS.values(), key=lambda p: p.size_b)
    at = np.log([p.size_b for p in rows])
    x = math.log(size)

    def interp(values: list[float]) -> float:
        return float(np.interp(x, at, values))

    def quality(task: str) -> float:
        offset = 0.06 * (_unit(model, task) - 0.5)
        return min(0.97, max(0.05, interp([p.quality[task] for p in rows]) + offset))

    speed = math.exp(interp([math.log(p.tokens_per_s) for p in rows]))
    return ModelProfile(
        name=model,
        size_b=size,
        quality={task: quality(task) for task in TASK_TYPES},
        overhead_s=interp([p.overhead_s for p in rows]),
        prompt_tokens_per_s=math.exp(interp([math.log(p.prompt_tokens_per_s) for p in rows])),
        tokens_per_s=speed * (1 + 0.2 * (_unit(model, "speed") - 0.5)),
        watts=interp([p.watts for p in rows]),
        chatty=interp([p.chatty for p in rows]),
    )


def true_quality(model: str, params: GenerationParams, template_name: str, task_type: str) -> float:
    """Probability that a case is answered correctly (see the docs for the formula)."""
    profile = model_profile(model)
    task = task_type if task_type in TASK_TYPES else "generation"
    temperature = DEFAULT_TEMPERATURE if params.temperature is None else params.temperature
    factor = math.exp(-TEMPERATURE_SENSITIVITY[task] * max(0.0, temperature - 0.3) ** 2)
    if task == "summarization":
        top_p = DEFAULT_TOP_P if params.top_p is None else params.top_p
        num_ctx = DEFAULT_NUM_CTX if params.num_ctx is None else params.num_ctx
        factor *= 1 - 0.2 * max(0.0, 0.5 - top_p)
        factor *= math.sqrt(min(1.0, max(num_ctx, 1) / 1024))
    quality = profile.quality[task] * factor + template_effect(template_name).quality_delta[task]
    return min(1.0, max(0.0, quality))


def chatty_share(model: str, template_name: str) -> float:
    """Share of answers a model wraps in a phrase (which exact_match then fails)."""
    effect = template_effect(template_name)
    return 1.0 if effect.reasons else model_profile(model).chatty * effect.chatty_factor


def context_factor(params: GenerationParams) -> float:
    """Mild slow-down with a larger context window: 1 + 0.04·log2(num_ctx / 2048)."""
    num_ctx = DEFAULT_NUM_CTX if params.num_ctx is None else params.num_ctx
    return max(0.9, 1 + 0.04 * math.log2(max(num_ctx, 1) / DEFAULT_NUM_CTX))


def _typical_output_words(model: str, template_name: str, task: str) -> float:
    answer = TYPICAL_ANSWER_WORDS[task]
    if template_effect(template_name).reasons:
        opening, closing = len(REASONING_OPENING.split()), len(REASONING_CLOSING.split())
        return answer + opening + REASONING_WORDS + closing
    wrapper = CHATTY_SHORT if task in SHORT_ANSWER_TASKS else CHATTY_LONG
    return answer + chatty_share(model, template_name) * (len(wrapper.split()) - 1)


@dataclass(frozen=True)
class TrueProfile:
    """The truth about a configuration on a task type.

    ``quality``: probability that a case is answered correctly (contains/accuracy
    converge to it; exact_match to about quality × (1 − chatty_share)).
    Latency is for ``prompt_tokens`` in and ``output_tokens`` out (the task's typical
    lengths unless given); ``tokens_per_s`` is the median observed decode speed.
    """

    quality: float
    latency_mean_s: float
    latency_sd_s: float
    tokens_per_s: float
    energy_j_per_generation: float
    chatty_share: float
    prompt_tokens: int
    output_tokens: int


def true_profile(
    model: str,
    params: GenerationParams,
    template_name: str,
    task_type: str,
    *,
    prompt_tokens: int | None = None,
    output_tokens: int | None = None,
) -> TrueProfile:
    """The ground truth for ``model`` with ``params`` and a template on a task type."""
    profile = model_profile(model)
    task = task_type if task_type in TASK_TYPES else "generation"
    if prompt_tokens is None:
        prompt_tokens = tokens(TYPICAL_PROMPT_WORDS[task])
    if output_tokens is None:
        output_tokens = tokens(round(_typical_output_words(model, template_name, task)))
    if params.num_predict >= 0:
        output_tokens = min(output_tokens, params.num_predict)
    slow = context_factor(params)
    mean = slow * (
        profile.overhead_s
        + prompt_tokens / profile.prompt_tokens_per_s
        + output_tokens / profile.tokens_per_s
    )
    return TrueProfile(
        quality=true_quality(model, params, template_name, task),
        latency_mean_s=mean,
        latency_sd_s=mean * math.sqrt(math.expm1(LATENCY_SIGMA**2)),
        tokens_per_s=profile.tokens_per_s / slow,
        energy_j_per_generation=profile.watts * mean,
        chatty_share=chatty_share(model, template_name),
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
    )
