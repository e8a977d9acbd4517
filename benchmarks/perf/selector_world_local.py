"""``local``: a second held-out world for the selector benchmark (issue 50 §4), written
from a list of phenomena of local LLMs without reading the selector's code or the other
worlds' numbers. Nothing may be tuned to it: ``--tune`` refuses it. Quality is a product
of factors with per-case events (greedy loops, truncation, wrong references), not a sum of
smooth effects; magnitudes below are relative (x) unless given in points (0–100).

Six models in two families (``family``, ``parameter_size``, ``quantization`` columns):
``kestrel:8b-q8`` (Q8_0), ``kestrel:8b`` (Q4_K_M) and ``kestrel:8b-q3`` (Q3_K_M), one
dense 8B at three quantizations; ``kestrel:30b-a3b`` (Q4_K_M), a mixture of experts, 30.5B
total and 3B active; ``basalt:3b-instruct`` and ``basalt:3b-text`` (Q4_K_M), a small family
whose text variant ignores system prompts and templates. Every config of the benchmark's
grid exists (4 temperatures x 2 top_p x 3 num_ctx x 2 num_predict x 4 templates).

- **Abilities** (``ABILITY``, at Q8, default template, T = 0, a short prompt, before
  loops, cuts and wrong references): the dense 8B leads (qa 66, code 52, classification
  82); the MoE's quality is that of its active size (qa 50, code 36, generation 55), a
  little above the 3B instruct model; the text variant is weak at exact tasks
  (classification 66) but fair at open generation (56).
- **Quantization** (``QUANT``, x on quality against Q8_0): Q4_K_M code x 0.91, qa x 0.94
  (arithmetic-heavy), summarization/generation x 0.985, classification x 0.995; Q3_K_M code
  x 0.72, qa x 0.82, open tasks x 0.95, classification x 0.985. Q3 is also 1.3x as
  temperature-sensitive, loops 1.6x as often and reads long contexts 1.2x worse. Decode
  24 / 38 / 43 tokens/s (Q8 / Q4 / Q3); the MoE 36 (a dense 30B: ~10), the 3B 88.
- **Temperature**: top_p narrows it: effective T = T x sqrt(top_p) (top_p 0.3: x 0.55).
  Exact tasks (qa, code, classification) lose k x s x T_eff^1.5 (k 0.13 / 0.20 / 0.05,
  s 1.0 for 8B, 1.25 MoE, 1.35 3B): code on the 8B x 0.97 at T = 0.3, x 0.82 at T = 1,
  x 0.92 at T = 1 with top_p 0.3. Open tasks (generation, summarization): greedy decoding
  loops: a looping answer runs to num_predict and keeps 0.3 (generation) / 0.35
  (summarization) of its quality; loop chance L x exp(−T_eff / 0.18), L = 0.38 / 0.22
  (3B, generation / summarization; the text variant x 1.2), 0.16 / 0.09 (MoE), 0.05 /
  0.03 (8B). At T = 0 the looping cases are fixed (greedy: a hash of the case), above it
  drawn. High temperature loses coherence, x (1 − 4c·max(0, T_eff − 0.55)²) (c 0.35 3B,
  0.30 MoE, 0.20 8B; x 0.6 on summarization); generation gains up to x 1.035 near
  T_eff = 0.6. So for 3B generation T = 0 is worst (x 0.73), T = 0.7 (x 1.01) and T = 1
  with top_p 0.3 (x 1.02) best, T = 1 with top_p 0.9 poor (x 0.78).
- **Templates** (``TEMPLATE``, instruct models, by size 8B / MoE / 3B): chain-of-thought
  qa x 1.12 / 1.03 / 0.93, code x 1.06 / 1.00 / 0.95, classification x 0.98, summarization
  x 0.96, generation x 0.97; few-shot classification x 1.03 / 1.07 / 1.12, qa x 1.01 / 1.03
  / 1.05; concise generation x 0.95, summarization x 0.97. The text variant moves only
  0.15 of the 3B's effect, keeps a chatty share of 38% on qa (45% with CoT; instruct models
  1–6%), and rambles: outputs x 2 whatever the template, CoT x 2 more, so its CoT
  answers to qa, classification and code are almost always cut (qa 3, code 2,
  classification 16 points).
- **num_predict**: output lengths are log-normal (sd 0.55) around the mean (``OUTPUT``:
  qa 22, summarization 120, classification 5, generation 170, code 110 tokens; concise x
  0.6, few-shot x 0.9, CoT qa x 6, classification x 22, code x 1.5; x (1 + 0.25 T_eff), 3B
  and MoE x (1 + 0.4 T_eff)); a cut exact answer scores 0 (the answer comes last), a cut
  summary or story keeps 0.55. At num_predict 256 that makes concise the best template
  for code, generation and qa by 0.3–2.5 points, CoT's gain on qa mostly lost to cuts.
- **Context**: the prompt is the case + 40 system tokens + the template's (few-shot
  examples: qa 700, summarization 1100, classification 450, generation 350, code 900).
  Lost in the middle: x (1 − m·w·ln(P / 600)) for P > 600 tokens in the window (m 0.06 8B,
  0.09 MoE, 0.11 3B; w 1 for qa and summarization, 0.5 code, 0.3 others). A prompt beyond
  num_ctx is truncated from the front, silently, and that case keeps x 0.25 (qa), 0.5
  (summarization), 0.45 (classification), 0.6 (generation), 0.12 (code) — and runs fast.
  A larger num_ctx than needed costs no quality. Summarization prompts are long (1400
  words typical): cut at num_ctx 512 all, at 2048 35% (few-shot all), at 4096 none
  (few-shot 4%); few-shot qa, classification and code at 512 all; default qa at 512 15%.
- **Latency** (truth: the warm, steady-state mean): 0.15 s + prefill + decode. Prefix
  caching: the system prompt and template (few-shot examples) repeat within a run and cost
  3% of their prefill (the first call's cold prefill is in its cold-load stall), unless
  the prompt was truncated (the front is cut, the cache misses, all num_ctx tokens are
  prefilled). Prefill 950 / 1000 / 930
  tokens/s (8B Q8 / Q4 / Q3), 520 (MoE), 2600 (3B); decode slows with the context used
  (/(1 + P/8000)) and 2% per doubling of num_ctx above 512 (MoE 6%: the cache pushes
  experts to the CPU); on the host's 10 GB of VRAM the 8B Q8 spills at num_ctx 4096
  (weights + KV + buffers 10.5 GB): decode 1.5x and prefill 1.25x slower.
- **Per call** (``SHAPES``, a factor of the mean): log-normal body (sd 0.14, 3B 0.18);
  a bimodal host: runs of 40 consecutive calls land on a slow host (1.7x) with chance 0.3;
  heavy tails: a share of calls (2–6%, most for the rambling text variant and the MoE)
  takes 1 + Lomax(1.7–2.6) times longer; the factor is scaled to mean 1. Cold load: the
  first call of every run (a ``draw``) adds a model load of 0.9x (3B) to 4x (MoE, 18.6 GB
  of weights) the mean call; the truth (and its p95) is the warm state, so short runs'
  measured p95 and mean overstate it.
- **Wrong references**: 3% of classification cases (a better answer scores worse: a
  wrong answer matches the wrong label 1 time in 3), 2% of qa and open tasks, 1.5% of code
  (nominal: a hash of the case's prompt length picks them, so the share among the lengths
  a task draws differs a little): qa/code score 0.02 there, summaries and stories 0.15.
- **Ties and flat tops** (true best config per model and template, points):
  classification 3B instruct few-shot 80.6, 8B Q8 few-shot 79.4, 8B Q4 few-shot 79.1
  (within noise of each other); generation 8B Q8 concise 59.4 vs few-shot 59.1; code on
  the 8B Q8 concise 51.2, few-shot 50.6, default 50.1 (by hand's best measured config is
  hard to beat); num_ctx 2048 vs 4096 and top_p at T = 0 change no quality where the
  prompt fits, only latency.

The truth a query is judged against (``prompt_tokens`` None) is the expectation over the
task's cases as ``selector_benchmark.py`` draws them (suites at 0.8x and 1.2x the typical
length, log-normal sd 0.2 per case, rounded to words): a sum over every prompt length with
its probability. Greedy loops and wrong references are a hash of the prompt length, so
the truth counts exactly the lengths that have them.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

# Sibling scripts are imported by name: their folder goes first on the path, so this works
# from any folder (`python benchmarks/perf/NAME.py` or `python -m benchmarks.perf.NAME`
# from the repository root, or imported from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from scipy.special import ndtr
from selector_worlds import LatencyShape, Model, World

from evaluation.backends._simulated_truth import TrueProfile
from evaluation.spec import GenerationParams


@dataclass(frozen=True)
class _Spec:
    """What a model does, beside its frame columns."""

    size: str  # "8b", "moe" or "3b": the class its template, loop and T effects follow
    instruct: bool
    prefill: float  # tokens/s
    decode: float  # tokens/s at num_ctx 512, nothing in the window
    watts: float
    tail: tuple[float, float]  # share of calls in the heavy tail, its Lomax alpha
    cold: float  # the first call of a run: + this many mean calls (model load)
    spills_at: int | None = None  # num_ctx from which the model no longer fits in VRAM


MODELS = {
    "kestrel:8b-q8": Model("8.0B", "Q8_0", "kestrel"),
    "kestrel:8b": Model("8.0B", "Q4_K_M", "kestrel"),
    "kestrel:8b-q3": Model("8.0B", "Q3_K_M", "kestrel"),
    "kestrel:30b-a3b": Model("30.5B", "Q4_K_M", "kestrel"),
    "basalt:3b-instruct": Model("3.2B", "Q4_K_M", "basalt"),
    "basalt:3b-text": Model("3.2B", "Q4_K_M", "basalt"),
}
SPECS = {
    "kestrel:8b-q8": _Spec("8b", True, 950, 24, 190, (0.03, 2.2), 1.8, spills_at=4096),
    "kestrel:8b": _Spec("8b", True, 1000, 38, 175, (0.025, 2.4), 1.2),
    "kestrel:8b-q3": _Spec("8b", True, 930, 43, 170, (0.025, 2.4), 1.0),
    "kestrel:30b-a3b": _Spec("moe", True, 520, 36, 150, (0.04, 2.0), 4.0),
    "basalt:3b-instruct": _Spec("3b", True, 2600, 88, 120, (0.02, 2.6), 0.9),
    "basalt:3b-text": _Spec("3b", False, 2600, 88, 120, (0.06, 1.7), 0.9),
}
TASKS = ("qa", "summarization", "classification", "generation", "code")
EXACT = ("qa", "classification", "code")
OPEN = ("summarization", "generation")
PROMPT_WORDS = {
    "qa": 260,
    "summarization": 1400,
    "classification": 90,
    "generation": 60,
    "code": 220,
}
SUITE_LENGTHS = (0.8, 1.2)  # selector_benchmark's two suites per task type
CASE_SPREAD = 0.2  # log-normal sd of a case's length around its suite's

ABILITY = {  # at Q8_0, default template, T = 0, short prompt; qa, summ, class, gen, code
    "kestrel:8b-q8": (0.66, 0.60, 0.82, 0.62, 0.52),
    "kestrel:8b": (0.66, 0.60, 0.82, 0.62, 0.52),
    "kestrel:8b-q3": (0.66, 0.60, 0.82, 0.62, 0.52),
    "kestrel:30b-a3b": (0.50, 0.53, 0.76, 0.55, 0.36),
    "basalt:3b-instruct": (0.47, 0.55, 0.77, 0.53, 0.33),
    "basalt:3b-text": (0.45, 0.47, 0.66, 0.56, 0.34),
}
QUANT = {
    "Q8_0": (1.0, 1.0, 1.0, 1.0, 1.0),
    "Q4_K_M": (0.94, 0.985, 0.995, 0.985, 0.91),
    "Q3_K_M": (0.82, 0.95, 0.985, 0.95, 0.72),
}
TEMPLATE = {  # instruct models, x on quality by size class (8b, moe, 3b)
    "default": {},
    "cot": {
        "qa": (1.12, 1.03, 0.93),
        "code": (1.06, 1.0, 0.95),
        "classification": (0.98,) * 3,
        "summarization": (0.96,) * 3,
        "generation": (0.97,) * 3,
    },
    "few_shot": {
        "classification": (1.03, 1.07, 1.12),
        "qa": (1.01, 1.03, 1.05),
        "code": (1.02,) * 3,
        "summarization": (0.99,) * 3,
    },
    "concise": {
        "qa": (1.01,) * 3,
        "summarization": (0.97,) * 3,
        "generation": (0.95,) * 3,
        "code": (0.99,) * 3,
    },
}
SIZE_COLUMN = {"8b": 0, "moe": 1, "3b": 2}
TEXT_TEMPLATE_SHARE = 0.15  # how much of the 3B's template effect the text variant shows
SYSTEM_TOKENS = 40
TEMPLATE_TOKENS = {"default": 15, "concise": 20, "cot": 35}
FEW_SHOT_TOKENS = {
    "qa": 700,
    "summarization": 1100,
    "classification": 450,
    "generation": 350,
    "code": 900,
}
CACHED_COST = 0.03  # prefill cost of a cached prefix, per token, against a cold one
OUTPUT = {"qa": 22, "summarization": 120, "classification": 5, "generation": 170, "code": 110}
OUTPUT_TEMPLATE = {
    "default": {},
    "concise": dict.fromkeys(TASKS, 0.6),
    "few_shot": dict.fromkeys(TASKS, 0.9),
    "cot": {
        "qa": 6.0,
        "summarization": 1.15,
        "classification": 22.0,
        "generation": 1.1,
        "code": 1.5,
    },
}
RAMBLE = 2.0  # the text variant's outputs; x RAMBLE again with CoT
OUTPUT_SD = 0.55
CUT_KEEPS = {"summarization": 0.55, "generation": 0.55}  # exact answers keep 0
CHATTY = {"default": 0.04, "concise": 0.01, "few_shot": 0.02, "cot": 0.06}
TEXT_CHATTY = {"default": 0.38, "concise": 0.37, "few_shot": 0.36, "cot": 0.45}
EXACT_T = {"qa": 0.13, "code": 0.20, "classification": 0.05}
SIZE_T = {"8b": 1.0, "moe": 1.25, "3b": 1.35}
LOOP = {"8b": (0.05, 0.03), "moe": (0.16, 0.09), "3b": (0.38, 0.22)}  # generation, summ
LOOP_T = 0.18
LOOP_KEEPS = {"generation": 0.3, "summarization": 0.35}
INCOHERENCE = {"8b": 0.20, "moe": 0.30, "3b": 0.35}
DIVERSITY = 0.035  # generation's gain near T_eff = 0.6
MIDDLE = {"8b": 0.06, "moe": 0.09, "3b": 0.11}
MIDDLE_TASK = {
    "qa": 1.0,
    "summarization": 1.0,
    "code": 0.5,
    "classification": 0.3,
    "generation": 0.3,
}
MIDDLE_FROM = 600
TRUNCATED_KEEPS = {
    "qa": 0.25,
    "summarization": 0.5,
    "classification": 0.45,
    "generation": 0.6,
    "code": 0.12,
}
WRONG_REFERENCE = {
    "qa": 0.02,
    "summarization": 0.02,
    "classification": 0.03,
    "generation": 0.02,
    "code": 0.015,
}
WRONG_SCORE = {"qa": 0.02, "code": 0.02, "summarization": 0.15, "generation": 0.15}
LABELS = 4  # classification: a wrong answer matches a wrong reference 1 time in LABELS − 1
OVERHEAD_S = 0.15
CONTEXT_DECODE = 8000  # decode slows by (1 + tokens in the window / this)
CTX_DOUBLING = {"8b": 0.02, "moe": 0.06, "3b": 0.02}
SPILL_DECODE, SPILL_PREFILL = 1.5, 1.25
Q3_EXTRA = 1.3  # Q3_K_M: temperature sensitivity; loops x 1.6, long context x 1.2


def _unit(*keys: int) -> float:
    """A uniform number in [0, 1) fixed by integer keys (splitmix64; not Python's hash,
    which changes per process)."""
    x = 0x9E3779B97F4A7C15
    for key in keys:
        x = (x ^ key) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x / 2**64


@dataclass(frozen=True)
class _Config:
    """Everything about a (model, params, template, task) that does not depend on the case."""

    task: str
    spec: _Spec
    quality: float  # before loops, context and cuts
    loop: float  # chance an open answer loops
    loop_fixed: bool  # greedy: the same cases loop on every call
    cut: float  # share of (non-looping) answers longer than num_predict
    output: float  # expected output tokens, cuts and loops counted
    chatty: float
    prefix: int  # system + template tokens before the case
    num_ctx: int
    middle: float  # lost-in-the-middle slope
    decode: float  # tokens/s before the context in the window slows it
    prefill: float


@functools.cache
def _config(model: str, params: GenerationParams, template: str, task: str) -> _Config:
    spec, quant = SPECS[model], MODELS[model].quantization
    col, i = SIZE_COLUMN[spec.size], TASKS.index(task)
    q3 = quant == "Q3_K_M"
    t = 0.8 if params.temperature is None else params.temperature
    t_eff = t * math.sqrt(0.9 if params.top_p is None else params.top_p)
    quality = ABILITY[model][i] * QUANT[quant][i]
    effect = TEMPLATE[template].get(task, (1.0,) * 3)[col]
    if not spec.instruct:
        effect = 1 + TEXT_TEMPLATE_SHARE * (TEMPLATE[template].get(task, (1.0,) * 3)[2] - 1)
    quality *= effect
    loop = 0.0
    if task in EXACT:
        quality *= 1 - EXACT_T[task] * SIZE_T[spec.size] * (Q3_EXTRA if q3 else 1) * t_eff**1.5
    else:
        scale = 0.6 if task == "summarization" else 1.0
        quality *= 1 - 4 * INCOHERENCE[spec.size] * scale * max(0.0, t_eff - 0.55) ** 2
        if task == "generation":
            quality *= 1 + DIVERSITY * math.exp(-(((t_eff - 0.6) / 0.25) ** 2))
        base = LOOP[spec.size][0 if task == "generation" else 1]
        base *= (1.6 if q3 else 1) * (1.0 if spec.instruct else 1.2)
        loop = min(0.95, base * math.exp(-t_eff / LOOP_T))
    stretch = OUTPUT_TEMPLATE[template].get(task, 1.0)
    if not spec.instruct:
        stretch = RAMBLE * (stretch * RAMBLE if template == "cot" else 1.0)
    mean = OUTPUT[task] * stretch * (1 + (0.25 if spec.size == "8b" else 0.4) * t_eff)
    limit = params.num_predict
    mu = math.log(mean) - OUTPUT_SD**2 / 2
    z = (math.log(limit) - mu) / OUTPUT_SD
    cut = 1 - float(ndtr(z))
    kept = mean * float(ndtr(z - OUTPUT_SD)) + limit * cut  # E[min(length, num_predict)]
    output = (1 - loop) * kept + loop * limit
    chatty = (CHATTY if spec.instruct else TEXT_CHATTY)[template] if task == "qa" else 0.0
    examples = FEW_SHOT_TOKENS[task] if template == "few_shot" else TEMPLATE_TOKENS[template]
    prefix = SYSTEM_TOKENS + examples
    num_ctx = 2048 if params.num_ctx is None else params.num_ctx
    decode = spec.decode / (1 + CTX_DOUBLING[spec.size] * math.log2(num_ctx / 512))
    prefill = spec.prefill
    if spec.spills_at is not None and num_ctx >= spec.spills_at:
        decode, prefill = decode / SPILL_DECODE, prefill / SPILL_PREFILL
    middle = MIDDLE[spec.size] * MIDDLE_TASK[task] * (1.2 if q3 else 1)
    return _Config(
        task=task,
        spec=spec,
        quality=quality,
        loop=loop,
        loop_fixed=t == 0,
        cut=cut,
        output=output,
        chatty=chatty,
        prefix=prefix,
        num_ctx=num_ctx,
        middle=middle,
        decode=decode,
        prefill=prefill,
    )


def _case(c: _Config, tokens: np.ndarray, looped: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """(quality, latency mean) of cases of ``tokens`` prompt tokens; ``looped`` and ``wrong``
    are 0/1 per case, or ``looped`` the loop chance where looping is drawn per call."""
    full = tokens + c.prefix
    truncated = full > c.num_ctx
    window = np.minimum(full, c.num_ctx)
    middle = np.clip(1 - c.middle * np.log(np.maximum(window, MIDDLE_FROM) / MIDDLE_FROM), 0, 1)
    quality = c.quality * middle
    if c.task in OPEN:  # linear in ``looped``: its chance gives the expectation
        unlooped = 1 - c.cut * (1 - CUT_KEEPS[c.task])
        quality = quality * (looped * LOOP_KEEPS[c.task] + (1 - looped) * unlooped)
    else:
        quality = quality * (1 - c.cut)
    quality = np.clip(np.where(truncated, quality * TRUNCATED_KEEPS[c.task], quality), 0.01, 0.99)
    # a wrong label is matched by a wrong answer 1 time in LABELS − 1
    classify = c.task == "classification"
    on_wrong = (1 - quality) / (LABELS - 1) if classify else WRONG_SCORE[c.task]
    quality = (1 - wrong) * quality + wrong * on_wrong
    prefilled = np.where(truncated, c.num_ctx, tokens + CACHED_COST * c.prefix)
    decode = c.decode / (1 + window / CONTEXT_DECODE)
    latency = OVERHEAD_S + prefilled / c.prefill + c.output / decode
    return np.stack([quality, latency])


@functools.cache
def _cases(task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every prompt length the benchmark can draw for ``task`` (words log-normal around
    each suite's length, rounded, at least 5; tokens ceil(1.3 x words)), its probability,
    and whether such a case loops greedily and has a wrong reference."""
    words = np.arange(5, round(PROMPT_WORDS[task] * max(SUITE_LENGTHS) * math.exp(6 * CASE_SPREAD)))
    upper = np.log((words + 0.5) / PROMPT_WORDS[task])
    lower = np.log(np.maximum(words - 0.5, 1e-9) / PROMPT_WORDS[task])
    lower[0] = -np.inf  # fewer than 5 words count as 5
    probability = np.zeros(len(words))
    for length in SUITE_LENGTHS:
        shift = math.log(length)
        probability += ndtr((upper - shift) / CASE_SPREAD) - ndtr((lower - shift) / CASE_SPREAD)
    probability /= probability.sum()
    tokens = np.array([math.ceil(w * 1.3) for w in words])
    return tokens, probability, _greedy_loop(task, tokens), _wrong(task, tokens)


def _greedy_loop(task: str, tokens: np.ndarray) -> np.ndarray:
    return np.array([_unit(1, TASKS.index(task), int(n)) for n in tokens])


def _wrong(task: str, tokens: np.ndarray) -> np.ndarray:
    share = WRONG_REFERENCE[task]
    return np.array([float(_unit(2, TASKS.index(task), int(n)) < share) for n in tokens])


def _profile(c: _Config, quality: float, latency: float, tokens: int) -> TrueProfile:
    return TrueProfile(
        quality=quality,
        latency_mean_s=latency,
        latency_sd_s=0.35 * latency,
        tokens_per_s=c.decode,
        energy_j_per_generation=latency * c.spec.watts,
        chatty_share=c.chatty,
        prompt_tokens=tokens,
        output_tokens=round(c.output),
    )


@functools.lru_cache(maxsize=64)
def _table(model: str, params: GenerationParams, template: str, task: str) -> np.ndarray:
    """(quality, latency mean) of a config at every prompt length of ``_cases``."""
    c = _config(model, params, template, task)
    tokens, _, greedy, wrong = _cases(task)
    looped = (greedy < c.loop).astype(float) if c.loop_fixed else c.loop
    return _case(c, tokens, looped, wrong)


def local_profile(
    model: str,
    params: GenerationParams,
    template_name: str,
    task_type: str,
    *,
    prompt_tokens: int | None = None,
) -> TrueProfile:
    """The truth of a config on one case (``prompt_tokens``), or its expectation over the
    task's cases."""
    c = _config(model, params, template_name, task_type)
    tokens, probability, _, _ = _cases(task_type)
    table = _table(model, params, template_name, task_type)
    if prompt_tokens is None:
        quality, latency = table @ probability
        return _profile(c, float(quality), float(latency), round(PROMPT_WORDS[task_type] * 1.3))
    i = int(np.searchsorted(tokens, prompt_tokens))
    if i < len(tokens) and tokens[i] == prompt_tokens:
        quality, latency = table[:, i]
    else:  # a length too rare to be in the table
        case = np.array([prompt_tokens])
        greedy = _greedy_loop(task_type, case)
        looped = (greedy < c.loop).astype(float) if c.loop_fixed else c.loop
        quality, latency = _case(c, case, looped, _wrong(task_type, case))[:, 0]
    return _profile(c, float(quality), float(latency), prompt_tokens)


BODY_SD = {"8b": 0.14, "moe": 0.14, "3b": 0.18}
HOST_RUN = 40  # consecutive calls on one host
SLOW_HOST, SLOW_SHARE = 1.7, 0.3


def _shape(model: str) -> LatencyShape:
    spec = SPECS[model]
    sd = BODY_SD[spec.size]
    share, alpha = spec.tail
    scale = 1 / ((1 - SLOW_SHARE + SLOW_SHARE * SLOW_HOST) * (1 + share / (alpha - 1)))

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        body = rng.lognormal(-(sd**2) / 2, sd, n)
        phase = rng.integers(HOST_RUN)
        hosts = np.where(rng.random(n // HOST_RUN + 2) < SLOW_SHARE, SLOW_HOST, 1.0)
        host = hosts[(np.arange(n) + phase) // HOST_RUN]
        tail = 1 + np.where(rng.random(n) < share, rng.pareto(alpha, n), 0.0)
        factor = body * host * tail * scale
        if n:
            factor[0] += spec.cold
        return factor

    return LatencyShape(f"local {model}", draw)


SHAPES = {model: _shape(model) for model in MODELS}

LOCAL = World(
    "local",
    local_profile,
    PROMPT_WORDS,
    "quality ~ C(model) * C(template) + C(model) * C(temperature) * C(top_p)"
    " + C(template) * C(num_ctx) + C(template) * C(num_predict) + C(suite)",
    latency_shape=SHAPES.__getitem__,
    models=MODELS,
)
