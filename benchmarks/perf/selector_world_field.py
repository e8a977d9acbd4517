"""``field``: a held-out world for the selector benchmark, written from a short
description of what local LLMs are observed to do, without reading the selector's code
or the family's other worlds (issue 50). Nothing may be tuned to it: ``--tune`` refuses it.

Five simulated models in two families (``family`` and ``quantization`` columns say which):
``fieldA-small:1b``, ``fieldA-large:8b`` (Q4_K_M) and ``fieldA-large:8b-q8`` (Q8_0), a
general family strong at summarization and generation; ``fieldB-medium:3b`` and
``fieldB-xl:14b`` (Q4_K_M), a code/reasoning family weak at free text. Each gets the
benchmark's full grid (4 temperatures x 2 top_p x 3 num_ctx x 2 num_predict x 4 templates).
Magnitudes are in points (0–100) of the task's metric:

- **Abilities by family and task type** (``BASE``, at Q8, default template, T = 0):
  no single global ability; e.g. code 16/38 (A 1B/8B) vs 40/60 (B 3B/14B), generation
  48/62 vs 42/55. Some configs tie within noise (classification: A-8B few-shot vs B-14B).
- **Temperature, per model and task** (top_p 0.3 acts as 0.6 x the temperature): exact
  answers (code, qa, classification) lose 2.5 / 2.0 / 1.0 points at T = 0.3 for an 8B
  model, x 1.4 (1B), 1.2 (3B), 0.8 (14B), family B's code x 1.2, growing as T^0.7 (x 2.3
  at T = 1); generation gains up to 1.5 points, peaking at T = 0.3 for 1B/3B (falling
  below T = 0 by T = 1) and at 0.7 for 8B/14B; summarization loses 0.8 x T.
- **Templates x model size** (``TEMPLATE``): chain-of-thought +3.5/+5.5 on qa and +2/+3
  on code for 8B/14B, −4.5/−2 and −3/−1.5 for 1B/3B, −2.5 on summarization and −1.5 on
  generation for all; its answers are 9–20x longer on qa/classification, 1.3x on code.
  Few-shot +7.5/+5.5/+1.5/+0.5 on classification (1B/3B/8B/14B) and adds example tokens
  to the prompt (qa 450, summarization 900, classification 420, generation 300, code
  1500). Concise +1 on qa, −2 on generation, 0.6x the output.
- **Context window**: a prompt (case tokens + 30 system + template tokens) beyond
  ``num_ctx`` is truncated silently; that case's quality collapses (x 0.35 qa, x 0.1 code,
  x 0.45 classification, x 0.6 summarization, x 0.7 generation). Prompt lengths are a fact
  per case (``prompt_tokens``); few-shot classification at 512 and few-shot code at 2048
  lose some cases, summarization at 512 nearly all.
- **num_predict**: an output longer than it is cut (lengths log-normal, sd 0.45 around the
  mean); a cut qa/classification/code answer scores 0, a cut summary or story loses half.
- **Quantisation**: Q4_K_M loses 2.0 qa, 2.5 code, 1.0 summarization and generation,
  0.5 classification points against Q8_0; decodes 1.6x and prefills 1.1x faster.
- **Latency**: mean = 0.12 s + prompt tokens processed / prefill speed (2500/1100/450/250
  tokens/s for 1B/3B/8B/14B) + expected output tokens / decode speed (90/45/22/13), decode
  slower with a larger num_ctx (+2% per doubling above 512). Output length grows with
  temperature (x (1 + 0.5 T) for 1B/3B, x (1 + 0.3 T) for 8B/14B) and template. Per call:
  a log-normal body (sd 0.22–0.32 by size), a host-day factor shared by 25 consecutive
  calls (log-normal sd 0.12; a (config, suite) run lands on one or two days) and stalls
  (1–4% of calls by size, 2 + Lomax(2.2) times slower: reloads, swapping).
- **Broken cases**: 2.5% of cases (by a hash of their prompt length) have a wrong
  reference: every config scores 0 there (continuous metrics 0.05).

The truth a query is judged against (``prompt_tokens`` None) is the expectation over the
task's cases as ``selector_benchmark.py`` draws them (two suites at 0.8x and 1.2x the
typical length, log-normal sd 0.2 per case), so truncation and broken cases count at the
share they occur; the typical prompt lengths are ``PROMPT_WORDS``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

# Sibling scripts are imported by name: their folder goes first on the path, so this works
# from any folder (`python benchmarks/perf/NAME.py` or `python -m benchmarks.perf.NAME`
# from the repository root, or imported from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from scipy.special import ndtr
from selector_worlds import LatencyShape, Model, World

from evaluation.backends._simulated_truth import TrueProfile
from evaluation.spec import GenerationParams

MODELS = {
    "fieldA-small:1b": Model("1.0B", "Q4_K_M", "fieldA"),
    "fieldA-large:8b": Model("8.0B", "Q4_K_M", "fieldA"),
    "fieldA-large:8b-q8": Model("8.0B", "Q8_0", "fieldA"),
    "fieldB-medium:3b": Model("3.0B", "Q4_K_M", "fieldB"),
    "fieldB-xl:14b": Model("14.0B", "Q4_K_M", "fieldB"),
}
TASKS = ("qa", "summarization", "classification", "generation", "code")
PROMPT_WORDS = {
    "qa": 120,
    "summarization": 450,
    "classification": 60,
    "generation": 40,
    "code": 220,
}
TOKENS_PER_WORD = 1.3  # as selector_benchmark turns a case's words into prompt tokens
SUITE_LENGTHS = (0.8, 1.2)  # selector_benchmark.SUITES: each suite's share of the typical length
CASE_SPREAD = 0.2  # selector_benchmark._case_words: log-normal sd of a case's length

# Quality at Q8_0, default template, T = 0, prompt within num_ctx: (family, size) -> task.
BASE = {
    ("fieldA", 1): {
        "qa": 40,
        "summarization": 36,
        "classification": 60,
        "generation": 48,
        "code": 16,
    },
    ("fieldA", 8): {
        "qa": 64,
        "summarization": 50,
        "classification": 80,
        "generation": 62,
        "code": 38,
    },
    ("fieldB", 3): {
        "qa": 50,
        "summarization": 34,
        "classification": 70,
        "generation": 42,
        "code": 40,
    },
    ("fieldB", 14): {
        "qa": 68,
        "summarization": 45,
        "classification": 82,
        "generation": 55,
        "code": 60,
    },
}
Q4_LOSS = {"qa": 2.0, "summarization": 1.0, "classification": 0.5, "generation": 1.0, "code": 2.5}
SIZES = (1, 3, 8, 14)
# Template delta in points by task, per size (1B, 3B, 8B, 14B).
TEMPLATE = {
    "default": {},
    "concise": {
        "qa": (1.0,) * 4,
        "classification": (0.5,) * 4,
        "summarization": (-1.0,) * 4,
        "generation": (-2.0,) * 4,
        "code": (-0.5,) * 4,
    },
    "cot": {
        "qa": (-4.5, -2.0, 3.5, 5.5),
        "code": (-3.0, -1.5, 2.0, 3.0),
        "classification": (-2.0, -1.0, 0.5, 1.0),
        "summarization": (-2.5,) * 4,
        "generation": (-1.5,) * 4,
    },
    "few_shot": {
        "classification": (7.5, 5.5, 1.5, 0.5),
        "qa": (2.5, 1.5, 0.5, 0.0),
        "code": (1.5, 1.0, 0.5, 0.0),
        "generation": (-1.0,) * 4,
    },
}
TEMPLATE_TOKENS = {
    "default": dict.fromkeys(TASKS, 0),
    "concise": dict.fromkeys(TASKS, 15),
    "cot": dict.fromkeys(TASKS, 40),
    "few_shot": {
        "qa": 450,
        "summarization": 900,
        "classification": 420,
        "generation": 300,
        "code": 1500,
    },
}
SYSTEM_TOKENS = 30
TRUNCATED = {
    "qa": 0.35,
    "summarization": 0.6,
    "classification": 0.45,
    "generation": 0.7,
    "code": 0.1,
}
OUTPUT_TOKENS = {
    "qa": 10,
    "summarization": 100,
    "classification": 3,
    "generation": 130,
    "code": 100,
}
OUTPUT_FACTOR = {
    "default": dict.fromkeys(TASKS, 1.0),
    "concise": dict.fromkeys(TASKS, 0.6),
    "cot": {"qa": 9, "summarization": 1.3, "classification": 20, "generation": 1.1, "code": 1.3},
    "few_shot": dict.fromkeys(TASKS, 1.0),
}
OUTPUT_SPREAD = 0.45
CUT_KEEPS = {"qa": 0.0, "summarization": 0.5, "classification": 0.0, "generation": 0.5, "code": 0.0}
EXACT_T_LOSS = {"code": 2.5, "qa": 2.0, "classification": 1.0}  # points at T = 0.3, 8B
SIZE_T = {1: 1.4, 3: 1.2, 8: 1.0, 14: 0.8}
PREFILL = {1: 2500.0, 3: 1100.0, 8: 450.0, 14: 250.0}  # tokens/s at Q4_K_M
DECODE = {1: 90.0, 3: 45.0, 8: 22.0, 14: 13.0}
WATTS = {1: 70.0, 3: 110.0, 8: 170.0, 14: 240.0}
OVERHEAD_S = 0.12
BROKEN_PER_MILLE = 25
BROKEN_SALT = {task: 7919 * (i + 1) for i, task in enumerate(TASKS)}
CONTINUOUS = ("summarization", "generation")


def _size(model: str) -> int:
    return round(float(MODELS[model].parameter_size.rstrip("B")))


def _effective_temperature(params: GenerationParams) -> float:
    """Nucleus sampling at top_p 0.3 keeps the likeliest tokens: about 0.6 x the heat."""
    return (params.temperature or 0.0) * (0.6 if params.top_p == 0.3 else 1.0)


def _temperature_points(model: str, task: str, t: float) -> float:
    size = _size(model)
    if task in EXACT_T_LOSS:
        per = EXACT_T_LOSS[task] * SIZE_T[size]
        if task == "code" and MODELS[model].family == "fieldB":
            per *= 1.2
        return -per * (t / 0.3) ** 0.7
    if task == "generation":
        peak, right = (0.3, 0.6) if size <= 3 else (0.7, 0.7)
        width = peak if t <= peak else right
        return 1.5 * (1 - ((t - peak) / width) ** 2)
    return -0.8 * t * SIZE_T[size]  # summarization


def _output_tokens(model: str, params: GenerationParams, template: str, task: str) -> float:
    """Mean output tokens before num_predict cuts them."""
    heat = 0.5 if _size(model) <= 3 else 0.3
    base = OUTPUT_TOKENS[task] * OUTPUT_FACTOR[template][task]
    return max(2.0, base * (1 + heat * _effective_temperature(params)))


def _cut(mean: float, limit: int) -> tuple[float, float]:
    """Share of outputs longer than ``limit`` and the mean output length after the cut
    (log-normal lengths of mean ``mean``)."""
    mu = math.log(mean) - OUTPUT_SPREAD**2 / 2
    z = (math.log(limit) - mu) / OUTPUT_SPREAD
    share = 1 - NormalDist().cdf(z)
    kept = mean * NormalDist().cdf(z - OUTPUT_SPREAD) + limit * share
    return share, kept


def _broken(task: str, tokens: np.ndarray) -> np.ndarray:
    return (tokens * 2654435761 + BROKEN_SALT[task]) % 1000 < BROKEN_PER_MILLE


def _case_tokens(task: str) -> tuple[np.ndarray, np.ndarray]:
    """Every prompt length (tokens) a case of ``task`` can have, with its probability
    (both suites, each half of the cases)."""
    tokens, weights = [], []
    for length in SUITE_LENGTHS:
        typical = PROMPT_WORDS[task] * length
        words = np.arange(
            max(5, math.floor(typical * math.exp(-6 * CASE_SPREAD))),
            math.ceil(typical * math.exp(6 * CASE_SPREAD)) + 1,
        )
        upper = ndtr(np.log((words + 0.5) / typical) / CASE_SPREAD)
        lower = ndtr(np.log(np.maximum(words - 0.5, 1e-9) / typical) / CASE_SPREAD)
        lower[0] = 0.0  # fewer than 5 words: drawn as 5
        tokens.append(np.ceil(words * TOKENS_PER_WORD))
        weights.append(0.5 * (upper - lower))
    return np.concatenate(tokens), np.concatenate(weights)


def field_profile(
    model: str,
    params: GenerationParams,
    template_name: str,
    task_type: str,
    *,
    prompt_tokens: int | None = None,
) -> TrueProfile:
    """The truth for one case of ``prompt_tokens`` case tokens, or (None) the expectation
    over the task's cases."""
    if prompt_tokens is None:
        tokens, weights = _case_tokens(task_type)
    else:
        tokens, weights = np.array([float(prompt_tokens)]), np.array([1.0])
    info, size = MODELS[model], _size(model)
    q8 = info.quantization == "Q8_0"
    t = _effective_temperature(params)
    points = BASE[(info.family, size)][task_type]
    points -= 0.0 if q8 else Q4_LOSS[task_type]
    points += TEMPLATE[template_name].get(task_type, (0.0,) * 4)[SIZES.index(size)]
    points += _temperature_points(model, task_type, t)
    mean_out = _output_tokens(model, params, template_name, task_type)
    cut_share, out = _cut(mean_out, params.num_predict)
    quality = points / 100 * (1 - (1 - CUT_KEEPS[task_type]) * cut_share)
    prompt = tokens + SYSTEM_TOKENS + TEMPLATE_TOKENS[template_name][task_type]
    truncated = prompt > params.num_ctx
    per_case = np.where(truncated, quality * TRUNCATED[task_type], quality)
    wrong = 0.05 if task_type in CONTINUOUS else 0.0  # a wrong reference: no one matches it
    per_case = np.where(_broken(task_type, tokens), wrong, per_case)
    prefill = PREFILL[size] / (1.1 if q8 else 1.0)
    decode = DECODE[size] / (1.6 if q8 else 1.0) / (1 + 0.02 * math.log2(params.num_ctx / 512))
    latency = OVERHEAD_S + np.minimum(prompt, params.num_ctx) / prefill + out / decode
    mean_latency = float(np.dot(weights, latency) / weights.sum())
    watts = WATTS[size] * (1.08 if q8 else 1.0)
    return TrueProfile(
        quality=float(np.clip(np.dot(weights, per_case) / weights.sum(), 0.0, 1.0)),
        latency_mean_s=mean_latency,
        latency_sd_s=mean_latency * 0.35,
        tokens_per_s=decode,
        energy_j_per_generation=watts * mean_latency,
        chatty_share=0.0,
        prompt_tokens=round(float(np.dot(weights, prompt) / weights.sum())),
        output_tokens=round(out),
    )


@dataclass(frozen=True)
class _Tail:
    body: float  # log-normal sd of a call
    stalls: float  # share of calls that stall


TAILS = {1: _Tail(0.22, 0.01), 3: _Tail(0.25, 0.015), 8: _Tail(0.30, 0.025), 14: _Tail(0.32, 0.04)}
DAY_SD = 0.12
DAY_CALLS = 25
STALL_ALPHA = 2.2


def _field_shape(tail: _Tail) -> LatencyShape:
    """Log-normal body x host-day factor (one per 25 consecutive calls) x stalls
    (2 + Lomax(2.2) times slower), scaled to mean 1."""
    stall_mean = 2 + 1 / (STALL_ALPHA - 1)

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        days = rng.lognormal(-(DAY_SD**2) / 2, DAY_SD, -(-n // DAY_CALLS))
        day = np.repeat(days, DAY_CALLS)[:n]
        body = rng.lognormal(-(tail.body**2) / 2, tail.body, n)
        stall = np.where(rng.random(n) < tail.stalls, 2 + rng.pareto(STALL_ALPHA, n), 1.0)
        return day * body * stall / (1 + tail.stalls * (stall_mean - 1))

    return LatencyShape(f"field body {tail.body} stalls {tail.stalls}", draw)


SHAPES = {size: _field_shape(tail) for size, tail in TAILS.items()}


FIELD = World(
    "field",
    field_profile,
    PROMPT_WORDS,
    # Approximate: truncation and cuts multiply quality, so no additive form is exact.
    "quality ~ C(model) * C(temperature) * C(top_p) + C(model) * C(template) * C(num_ctx)"
    " + C(template) * C(temperature) * C(num_predict) + C(suite)",
    latency_shape=lambda model: SHAPES[_size(model)],
    models=MODELS,
)
"""The held-out world, registered in ``selector_benchmark.WORLDS`` as ``field``."""
