"""A family of simulated worlds for the selector benchmark, each with its own structure.

The selector was tuned on two worlds (the simulated backend's additive truth and the
"interacting" one) and learned their structure rather than how to choose. The worlds
here differ in what decides quality and latency, so that a change which helps one and
hurts another shows up:

- ``additive``: the simulated backend's own truth (templates add a fixed delta; top_p
  and num_ctx matter only for summarization; temperature 0 and 0.3 are the same);
- ``interacting``: templates × model size, temperature sensitivity by model, prompts
  beyond num_ctx truncated (``evaluation.backends._simulated_interacting``);
- ``cliff``: long-document QA and code, a prompt beyond num_ctx loses the part that
  holds the answer (quality × 0.2, a cliff, not a slope), few-shot examples and
  chain-of-thought instructions lengthen the prompt (template × context interaction);
- ``tails``: the additive world's quality with latencies that are not log-normal:
  bimodal for the small models (a fifth of calls ~3× slower: a reload, a cache miss),
  Pareto-tailed for the large ones;
- ``flat``: ceiling and floor effects and a task with no signal: classification near
  1 (errors a quarter of the additive world's), code near 0 (a quarter of its quality
  squared), generation the same 0.55 for every config;
- ``sampling``: temperature 0 and 0.3 differ (code and QA prefer 0, generation 0.3,
  low top_p hurts generation), and output length grows with temperature and top_p, so
  latency depends on sampling settings, and num_predict cuts long answers (quality of
  a cut answer falls with the share cut);
- ``uneven``: the interacting world with few configs for some models (sim-medium: 4,
  sim-xl: 24) and all 192 for the others.

Seeds: ``TUNE_SEEDS`` are the ones selector settings may be tuned on; ``REPORT_SEEDS``
are only reported on. Both were fixed here, before any tuning on this family
(2026-11-24); a figure in the README says which it used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from evaluation.backends import _simulated_interacting as interacting
from evaluation.backends import _simulated_truth as demo
from evaluation.spec import Config, GenerationParams

TUNE_SEEDS = (0, 1, 2, 3)
REPORT_SEEDS = tuple(range(1000, 1008))

Profile = Callable[..., demo.TrueProfile]
"""(model, params, template name, task type, *, prompt_tokens=None) -> TrueProfile."""


@dataclass(frozen=True)
class LatencyShape:
    """Per-generation latency is the config's true mean times a factor drawn here, of
    mean 1 (``draw(rng, n)``)."""

    name: str
    draw: Callable[[np.random.Generator, int], np.ndarray]

    @property
    def p95(self) -> float:
        """The factor's 95th percentile: true p95 latency = mean × this."""
        return _p95(self)


@functools.cache
def _p95(shape: LatencyShape) -> float:
    if shape.name.startswith("log-normal"):
        sigma = float(shape.name.split()[-1])
        return math.exp(1.645 * sigma - sigma**2 / 2)
    return float(np.quantile(shape.draw(np.random.default_rng(95), 2_000_000), 0.95))


def log_normal(sigma: float) -> LatencyShape:
    return LatencyShape(
        f"log-normal {sigma}", lambda rng, n: rng.lognormal(-(sigma**2) / 2, sigma, n)
    )


def bimodal(share: float, slow: float, sigma: float = 0.1) -> LatencyShape:
    """A ``share`` of calls ``slow`` times slower, each mode log-normal."""

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        factor = np.where(rng.random(n) < share, slow, 1.0)
        return factor * rng.lognormal(-(sigma**2) / 2, sigma, n) / (1 + share * (slow - 1))

    return LatencyShape(f"bimodal {share} x{slow}", draw)


def pareto_tail(share: float, alpha: float, sigma: float = 0.1) -> LatencyShape:
    """A log-normal body; a ``share`` of calls slowed by 1 + Lomax(alpha) (mean
    1/(alpha − 1) extra)."""

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        extra = np.where(rng.random(n) < share, rng.pareto(alpha, n), 0.0)
        body = rng.lognormal(-(sigma**2) / 2, sigma, n)
        return body * (1 + extra) / (1 + share / (alpha - 1))

    return LatencyShape(f"pareto {share} a={alpha}", draw)


LOG_NORMAL = log_normal(demo.LATENCY_SIGMA)


@dataclass(frozen=True)
class Model:
    """What the frame's ``parameter_size``, ``quantization`` and ``family`` columns say
    about a simulated model."""

    parameter_size: str
    quantization: str = "Q4_K_M"
    family: str = "sim"


SIM_MODELS = {
    "sim-small:1b": Model("1.0B"),
    "sim-medium:3b": Model("3.0B"),
    "sim-large:8b": Model("8.0B"),
    "sim-xl:14b": Model("14.0B"),
}


@dataclass(frozen=True)
class World:
    """A simulated world: its truth per (config, task type, prompt length), typical
    prompt lengths in words, latency shape per model, which configs exist, and the
    functional form of its quality for ``selector_ceiling.py`` (a statsmodels formula
    over the (config, suite) means), and its models (the four ``SIM_MODELS`` unless
    given)."""

    name: str
    profile: Profile
    prompt_words: Mapping[str, int]
    form: str
    latency_shape: Callable[[str], LatencyShape] = lambda model: LOG_NORMAL
    keep: Callable[[Config], bool] = lambda config: True
    models: Mapping[str, Model] = field(default_factory=lambda: SIM_MODELS)


ADDITIVE_FORM = "quality ~ C(model) * C(temperature) + C(template) + C(suite)"


# --- cliff ------------------------------------------------------------------------

CLIFF_WORDS = {**demo.TYPICAL_PROMPT_WORDS, "qa": 1300, "code": 2400}
TEMPLATE_WORDS = {"few_shot": 400, "cot": 30}
"""Words a template adds to the prompt (few-shot examples, reasoning instructions)."""
CLIFF_KEPT = 0.2


def cliff_profile(
    model: str,
    params: GenerationParams,
    template_name: str,
    task_type: str,
    *,
    prompt_tokens: int | None = None,
) -> demo.TrueProfile:
    words = CLIFF_WORDS[task_type] if prompt_tokens is None else prompt_tokens / 1.3
    total = demo.tokens(round(words + TEMPLATE_WORDS.get(template_name, 0)))
    num_ctx = demo.DEFAULT_NUM_CTX if params.num_ctx is None else params.num_ctx
    seen = min(total, num_ctx)
    truth = demo.true_profile(model, params, template_name, task_type, prompt_tokens=seen)
    if total > num_ctx:
        truth = replace(truth, quality=truth.quality * CLIFF_KEPT)
    return truth


# --- flat ----------------------------------------------------------------------------

NO_SIGNAL = 0.55


def flat_profile(
    model: str,
    params: GenerationParams,
    template_name: str,
    task_type: str,
    *,
    prompt_tokens: int | None = None,
) -> demo.TrueProfile:
    truth = demo.true_profile(model, params, template_name, task_type, prompt_tokens=prompt_tokens)
    q = truth.quality
    quality = {
        "classification": 1 - 0.25 * (1 - q),
        "code": 0.25 * q * q,
        "generation": NO_SIGNAL,
    }.get(task_type, q)
    return replace(truth, quality=quality)


# --- sampling ------------------------------------------------------------------------

TEMPERATURE_DELTA = {
    # quality added at temperature 0 / 0.3 (nothing above: the demo's decay applies)
    "code": (0.0, -0.04),
    "qa": (0.0, -0.02),
    "classification": (0.0, -0.03),
    "generation": (-0.05, 0.0),
    "summarization": (-0.02, 0.0),
}
LONG_ANSWER = ("summarization", "generation", "code")


def output_stretch(params: GenerationParams) -> float:
    """How much longer answers get with temperature and top_p: ×(1 + 1.2·t)·(0.7 + 0.5·top_p)."""
    t = demo.DEFAULT_TEMPERATURE if params.temperature is None else params.temperature
    top_p = demo.DEFAULT_TOP_P if params.top_p is None else params.top_p
    return (1 + 1.2 * t) * (0.7 + 0.5 * top_p)


def sampling_profile(
    model: str,
    params: GenerationParams,
    template_name: str,
    task_type: str,
    *,
    prompt_tokens: int | None = None,
) -> demo.TrueProfile:
    typical = demo.tokens(round(demo._typical_output_words(model, template_name, task_type)))
    wanted = math.ceil(typical * output_stretch(params))
    truth = demo.true_profile(
        model, params, template_name, task_type, prompt_tokens=prompt_tokens, output_tokens=wanted
    )
    t = demo.DEFAULT_TEMPERATURE if params.temperature is None else params.temperature
    quality = truth.quality
    if t in (0.0, 0.3):
        quality += TEMPERATURE_DELTA[task_type][t == 0.3]
    top_p = demo.DEFAULT_TOP_P if params.top_p is None else params.top_p
    if task_type == "generation" and top_p < 0.5:
        quality -= 0.03
    if task_type in LONG_ANSWER and truth.output_tokens < wanted:
        quality *= 0.6 + 0.4 * truth.output_tokens / wanted
    return replace(truth, quality=min(1.0, max(0.0, quality)))


# --- uneven --------------------------------------------------------------------------


def uneven_keep(config: Config) -> bool:
    """sim-medium: 4 configs (2 templates × 2 temperatures at one setting of the rest);
    sim-xl: 24 (4 templates × 3 temperatures × 2 num_predict); the others all."""
    p, template = config.params, config.template.name
    if config.model == "sim-medium:3b":
        return (
            template in ("default", "few_shot")
            and p.temperature in (0.0, 0.7)
            and (p.top_p, p.num_ctx, p.num_predict) == (0.9, 2048, 256)
        )
    if config.model == "sim-xl:14b":
        return p.temperature in (0.0, 0.3, 1.0) and (p.top_p, p.num_ctx) == (0.9, 4096)
    return True


def _tails_shape(model: str) -> LatencyShape:
    return TAILS_SHAPES[model]


TAILS_SHAPES = {
    "sim-small:1b": bimodal(0.2, 3.0),
    "sim-medium:3b": bimodal(0.1, 4.0),
    "sim-large:8b": pareto_tail(0.1, 1.8),
    "sim-xl:14b": pareto_tail(0.05, 1.5),
}
INTERACTING_FORM = (
    "quality ~ C(model) * C(temperature) + C(model) * C(template) + C(num_ctx) * C(suite)"
)

WORLDS: dict[str, World] = {
    w.name: w
    for w in (
        World("additive", demo.true_profile, demo.TYPICAL_PROMPT_WORDS, ADDITIVE_FORM),
        World(
            "interacting",
            interacting.true_profile,
            interacting.TYPICAL_PROMPT_WORDS,
            INTERACTING_FORM,
        ),
        World(
            "cliff",
            cliff_profile,
            CLIFF_WORDS,
            "quality ~ C(model) * C(temperature) * C(num_ctx)"
            " + C(template) * C(num_ctx) * C(suite)",
        ),
        World(
            "tails",
            demo.true_profile,
            demo.TYPICAL_PROMPT_WORDS,
            ADDITIVE_FORM,
            latency_shape=_tails_shape,
        ),
        World(
            "flat",
            flat_profile,
            demo.TYPICAL_PROMPT_WORDS,
            "quality ~ C(model) * C(temperature) * C(template) + C(suite)",
        ),
        World(
            "sampling",
            sampling_profile,
            demo.TYPICAL_PROMPT_WORDS,
            "quality ~ C(model) * C(temperature) + C(template) "
            "+ C(temperature) * C(top_p) * C(num_predict) + C(suite)",
        ),
        World(
            "uneven",
            interacting.true_profile,
            interacting.TYPICAL_PROMPT_WORDS,
            INTERACTING_FORM,
            keep=uneven_keep,
        ),
    )
}
"""The family, by name. ``demo`` is kept as an alias of ``additive`` (earlier figures)."""
WORLDS["demo"] = WORLDS["additive"]
