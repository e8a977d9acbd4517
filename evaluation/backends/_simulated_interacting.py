"""A second simulated world, "interacting": effects that depend on each other, as in
real models. Documented in docs/simulated-backend.md ("The interacting world"); it is
separate from the demo's truth (:mod:`evaluation.backends._simulated_truth`), which it
leaves unchanged, and is used by benchmarks/perf/selector_benchmark.py (``--world``).

What differs from the demo world:

- templates interact with model size: chain-of-thought helps large models and hurts
  small ones, few-shot helps small models most;
- temperature sensitivity differs by model (small models degrade faster);
- a prompt longer than ``num_ctx`` is silently truncated (as Ollama does), so quality
  falls off a cliff for long-input tasks at small contexts, and the truncated prompt is
  processed faster.

Models, speeds, chattiness and output lengths are the demo world's.
"""

from __future__ import annotations

import math

from evaluation.backends._simulated_truth import (
    DEFAULT_NUM_CTX,
    DEFAULT_TEMPERATURE,
    LATENCY_SIGMA,
    TASK_TYPES,
    TEMPERATURE_SENSITIVITY,
    TrueProfile,
    _typical_output_words,
    chatty_share,
    context_factor,
    model_profile,
    tokens,
)
from evaluation.spec import GenerationParams

TYPICAL_PROMPT_WORDS = {
    "qa": 60,
    "summarization": 1200,
    "classification": 50,
    "generation": 40,
    "code": 300,
}
"""Longer inputs than the demo's for summarization and code, so num_ctx matters."""
REASONING_TASKS = ("qa", "classification", "code")
"""Where chain-of-thought changes quality at full strength (half elsewhere)."""


def size_position(size_b: float) -> float:
    """log2(size / 3B): −1.58 at 1B, 0 at 3B, 1.42 at 8B, 2.22 at 14B."""
    return math.log2(max(size_b, 0.1) / 3.0)


def template_delta(template_name: str, size_b: float, task: str) -> float:
    """Quality added by a template for a model of ``size_b`` billion parameters."""
    name = template_name.strip().lower().replace("-", "_").replace(" ", "_")
    s = size_position(size_b)
    strength = 1.0 if task in REASONING_TASKS else 0.5
    if name in ("cot", "chain_of_thought", "step_by_step"):
        return strength * 0.05 * s  # 1B −0.079, 3B 0, 8B +0.071, 14B +0.111
    if name in ("few_shot", "fewshot"):
        return 0.08 * min(1.0, max(0.0, 1.0 - s / 2.2))  # 1B +0.08, 3B +0.08, 8B +0.029, 14B 0
    if name == "concise":
        return {"qa": 0.02, "summarization": -0.04, "classification": 0.01}.get(task, -0.02)
    return 0.0


def temperature_multiplier(size_b: float) -> float:
    """How much more temperature-sensitive than the demo world: 2.0 at 1B … 0.5 at 14B."""
    return min(2.0, max(0.5, 1.25 - 0.5 * size_position(size_b)))


def kept_share(prompt_tokens: int, params: GenerationParams) -> float:
    """The share of the prompt the model sees: num_ctx / prompt tokens, at most 1."""
    num_ctx = DEFAULT_NUM_CTX if params.num_ctx is None else params.num_ctx
    return min(1.0, max(num_ctx, 1) / max(prompt_tokens, 1))


def true_quality(
    model: str, params: GenerationParams, template_name: str, task_type: str, prompt_tokens: int
) -> float:
    """base × T × kept² + template delta, clipped to [0, 1] (see the docs)."""
    profile = model_profile(model)
    task = task_type if task_type in TASK_TYPES else "generation"
    t = DEFAULT_TEMPERATURE if params.temperature is None else params.temperature
    k = TEMPERATURE_SENSITIVITY[task] * temperature_multiplier(profile.size_b)
    factor = math.exp(-k * max(0.0, t - 0.3) ** 2) * kept_share(prompt_tokens, params) ** 2
    quality = profile.quality[task] * factor + template_delta(template_name, profile.size_b, task)
    return min(1.0, max(0.0, quality))


def true_profile(
    model: str,
    params: GenerationParams,
    template_name: str,
    task_type: str,
    *,
    prompt_tokens: int | None = None,
    output_tokens: int | None = None,
) -> TrueProfile:
    """The ground truth of the interacting world (same fields as the demo world's)."""
    profile = model_profile(model)
    task = task_type if task_type in TASK_TYPES else "generation"
    if prompt_tokens is None:
        prompt_tokens = tokens(TYPICAL_PROMPT_WORDS[task])
    if output_tokens is None:
        output_tokens = tokens(round(_typical_output_words(model, template_name, task)))
    if params.num_predict >= 0:
        output_tokens = min(output_tokens, params.num_predict)
    seen = math.ceil(prompt_tokens * kept_share(prompt_tokens, params))
    slow = context_factor(params)
    mean = slow * (
        profile.overhead_s
        + seen / profile.prompt_tokens_per_s
        + output_tokens / profile.tokens_per_s
    )
    return TrueProfile(
        quality=true_quality(model, params, template_name, task, prompt_tokens),
        latency_mean_s=mean,
        latency_sd_s=mean * math.sqrt(math.expm1(LATENCY_SIGMA**2)),
        tokens_per_s=profile.tokens_per_s / slow,
        energy_j_per_generation=profile.watts * mean,
        chatty_share=chatty_share(model, template_name),
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
    )
