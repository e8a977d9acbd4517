"""A deterministic stand-in for a model server, with known ground truth.

The backend "knows" the suites' answers: for each request it finds the case by
``case_id`` ("suite/id" or a bare id), draws whether this model with these settings
answers it correctly (probability ``true_profile(...).quality``) and writes a correct or
a degraded answer; timings and Ollama's counters follow the documented latency model.
Same inputs give the same output, always. Everything it returns has
``simulated=True``. The formulas and tables are in docs/simulated-backend.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from evaluation.backends._simulated_code import code_answer
from evaluation.backends._simulated_embed import SIM_EMBED_MODELS, simulated_embedding
from evaluation.backends._simulated_latency import embed_latency_s
from evaluation.backends._simulated_pipelines import (
    is_pipeline_call,
    kept_tokens,
    pipeline_quality,
)
from evaluation.backends._simulated_truth import (
    CHATTY_LONG,
    CHATTY_SHORT,
    DIFFICULTY_CORRELATION,
    LATENCY_SIGMA,
    REASONING_CLOSING,
    REASONING_OPENING,
    REASONING_WORDS,
    SHORT_ANSWER_TASKS,
    SIM_MODELS,
    TrueProfile,
    chatty_share,
    context_factor,
    model_profile,
    template_effect,
    tokens,
    true_profile,
    true_quality,
    words_within,
)
from evaluation.backends.base import DoneReason, GenerationRequest, GenerationResult, ModelInfo
from evaluation.errors import BackendRejected, ModelNotFound
from evaluation.spec import HostSpec, PromptTemplate
from evaluation.suites import Case, Message, Suite

__all__ = ["SimulatedBackend", "TrueProfile", "true_profile"]

ECHO_WORDS = 60  # how much of the prompt the answer to an unknown case echoes
WRONG_ANSWER_TRIES = 8
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class _Found:
    key: str  # "suite/id"
    suite: Suite
    case: Case


def _seeded(*parts: object) -> np.random.SeedSequence:
    """A seed from the parts' canonical JSON via sha256 (stable across processes,
    unlike Python's salted ``hash()``)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return np.random.SeedSequence(int.from_bytes(hashlib.sha256(canonical.encode()).digest()))


class SimulatedBackend:
    """A simulated Ollama host.

    ``suites`` is its knowledge of the answers. ``templates`` (the sweep's prompt
    templates) lets it tell which template rendered a prompt, since a request does not
    name it; without them every prompt counts as the default template. ``time_scale``
    > 0 makes each call sleep its simulated latency × time_scale. ``seed`` varies every
    draw.
    """

    def __init__(
        self,
        host: HostSpec,
        *,
        suites: Mapping[str, Suite] | None = None,
        templates: Iterable[PromptTemplate] = (),
        time_scale: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.host = host
        self._degrade = host.degrade  # this host answers worse: docs/simulated-backend.md
        self._noise = host.noise  # draws afresh, each case's difficulty kept: the same docs
        self.time_scale = time_scale
        self.seed = seed
        self._templates = [
            (t.name, [literal for literal, *_ in string.Formatter().parse(t.text) if literal])
            for t in templates
        ]
        self._qualified: dict[str, _Found] = {}
        self._bare: dict[str, list[_Found]] = {}
        for key, suite in (suites or {}).items():
            for case in suite.cases:
                found = _Found(f"{suite.name}/{case.id}", suite, case)
                for name in {key, suite.name}:
                    self._qualified[f"{name}/{case.id}"] = found
                self._bare.setdefault(case.id, []).append(found)

    async def list_models(self) -> list[ModelInfo]:
        """The sim-* models, the simulated embedding models, plus any other model the
        host spec names."""
        known = (*SIM_MODELS, *SIM_EMBED_MODELS)
        names = list(SIM_MODELS) + [m for m in self.host.models or () if m not in known]
        return [_model_info(name) for name in names] + [
            ModelInfo(name=name, digest=_digest(name), family="simulated-embedding")
            for name in SIM_EMBED_MODELS
        ]

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """SIMULATED vectors (see ``_simulated_embed``); with ``time_scale`` > 0 the call
        sleeps (20 ms + 2 ms per text) × time_scale."""
        self._check_model(model)
        if self.time_scale > 0 and texts:
            await asyncio.sleep(embed_latency_s(len(texts)) * self.time_scale)
        return [simulated_embedding(model, text) for text in texts]

    def _check_model(self, model: str) -> None:
        if not self.host.serves(model):
            raise ModelNotFound(
                f"model '{model}' not found",
                available=list(self.host.models or ()),
                host=self.host.name,
                model=model,
                status_code=404,
            )

    async def aclose(self) -> None:
        return None

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        self._check_model(request.model)
        found = self._lookup(request.case_id)
        template = self._template_name(request.messages)
        task = found.suite.task_type if found else "generation"
        prompt = "\n".join(m.content for m in request.messages)
        case_key = found.key if found else "?" + hashlib.sha256(prompt.encode()).hexdigest()
        draw = _seeded(
            self.seed,
            request.model,
            # pipeline parameters only when set; stop sequences cut the text, nothing else
            replace(request.params, stop=None).hash_payload(),
            template,
            case_key,
            request.sample_index,
            *(("noise", self._noise) if self._noise else ()),  # none: the draws as before
        )
        correct_rng, text_rng, time_rng = (np.random.default_rng(s) for s in draw.spawn(3))

        quality = true_quality(request.model, request.params, template, task)
        quality = max(0.0, quality - self._degrade)
        prompt_count = tokens(len(prompt.split()))
        if is_pipeline_call(request.params):
            case = found.case if found else None
            quality = pipeline_quality(quality, request.params, case, prompt, prompt_count)
            prompt_count = kept_tokens(request.params, prompt_count)  # cut as Ollama cuts
        source = found.case.input_text if found else _last_user(request.messages)
        if found and found.case.targets:
            correct = self._is_correct(quality, case_key, correct_rng)
            answer = _answer(found, correct, quality, text_rng)
        else:
            answer = _degrade(source, 1 - quality, text_rng, source, limit=ECHO_WORDS)
        text = _wrap(answer, request.model, template, task, source, text_rng)

        done_reason: DoneReason = "stop"
        text = _cut_at_stop(text, request.params.stop)
        eval_count = tokens(len(text.split()))
        limit = request.params.num_predict
        if 0 <= limit < eval_count:
            text, eval_count, done_reason = _first_words(text, words_within(limit)), limit, "length"
        result = self._timed(
            request,
            template,
            task,
            text,
            done_reason,
            prompt_count,
            eval_count,
            time_rng,
        )
        if self.time_scale > 0:
            await asyncio.sleep(result.latency_s * self.time_scale)
        return result

    def _lookup(self, case_id: str) -> _Found | None:
        if case_id in self._qualified:
            return self._qualified[case_id]
        matches = self._bare.get(case_id, [])
        if len(matches) > 1:
            suites = ", ".join(m.suite.name for m in matches)
            raise BackendRejected(
                f"case id '{case_id}' is in several suites ({suites}); qualify it as 'suite/id'",
                host=self.host.name,
            )
        return matches[0] if matches else None

    def _template_name(self, messages: Sequence[Message]) -> str:
        """The known template whose literal text occurs, in order, in the prompt (the
        longest such); "default" when none does."""
        text = "\n".join(m.content for m in messages)
        best, best_length = "default", -1
        for name, literals in self._templates:
            length = sum(map(len, literals))
            if length > best_length and _in_order(literals, text):
                best, best_length = name, length
        return best

    def _is_correct(self, quality: float, case_key: str, rng: np.random.Generator) -> bool:
        """Gaussian copula: a case's own difficulty (shared by every config) and a
        per-draw part; the marginal probability of a correct answer is ``quality``."""
        if quality <= 0.0 or quality >= 1.0:
            return quality >= 1.0
        difficulty = np.random.default_rng(_seeded(self.seed, "difficulty", case_key))
        latent = (
            math.sqrt(DIFFICULTY_CORRELATION) * difficulty.standard_normal()
            + math.sqrt(1 - DIFFICULTY_CORRELATION) * rng.standard_normal()
        )
        return latent < NormalDist().inv_cdf(quality)

    def _timed(
        self,
        request: GenerationRequest,
        template: str,
        task: str,
        text: str,
        done_reason: DoneReason,
        prompt_count: int,
        eval_count: int,
        rng: np.random.Generator,
    ) -> GenerationResult:
        """Timings from the latency model with log-normal noise of mean 1, so the mean
        latency is the true one; durations add up to the latency."""
        truth = true_profile(
            request.model,
            request.params,
            template,
            task,
            prompt_tokens=prompt_count,
            output_tokens=eval_count,
        )
        profile = model_profile(request.model)
        noise = math.exp(LATENCY_SIGMA * rng.standard_normal() - LATENCY_SIGMA**2 / 2)
        scale = noise * context_factor(request.params)
        prompt_s = scale * prompt_count / profile.prompt_tokens_per_s
        eval_s = scale * eval_count / profile.tokens_per_s
        latency = noise * truth.latency_mean_s
        ttft = None
        if eval_count:
            ttft = scale * (profile.overhead_s + 1 / profile.tokens_per_s) + prompt_s
        return GenerationResult(
            text=text,
            done_reason=done_reason,
            latency_s=latency,
            ttft_s=ttft,
            prompt_eval_count=prompt_count,
            eval_count=eval_count,
            prompt_eval_duration_ns=round(prompt_s * 1e9),
            eval_duration_ns=round(eval_s * 1e9),
            total_duration_ns=round(latency * 1e9),
            simulated=True,
        )


def _model_info(name: str) -> ModelInfo:
    size = model_profile(name).size_b
    return ModelInfo(
        name=name,
        digest=_digest(name),
        family="simulated",
        parameter_size=f"{size:.1f}B",
        quantization="Q4_K_M",
        size_bytes=int(size * 1e9 * 0.5625),  # ~4.5 bits per weight
    )


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _in_order(parts: Sequence[str], text: str) -> bool:
    position = 0
    for part in parts:
        found = text.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


def _last_user(messages: Sequence[Message]) -> str:
    users = [m.content for m in messages if m.role == "user"]
    return users[-1] if users else ""


def _same(a: str, b: str) -> bool:
    return a.casefold().strip() == b.casefold().strip()


def _answer(found: _Found, correct: bool, quality: float, rng: np.random.Generator) -> str:
    """A correct answer, or a wrong one of the kind the task type makes."""
    case, suite = found.case, found.suite
    if suite.task_type == "classification":
        gold = case.label if case.label is not None else case.targets[0]
        if correct:
            return gold
        labels = suite.labels or tuple(sorted({c.label for c in suite.cases if c.label}))
        others = [label for label in labels if not _same(label, gold)]
        return others[rng.integers(len(others))] if others else "unknown"
    if suite.task_type == "code":
        return code_answer(case, correct, rng)
    reference = case.targets[rng.integers(len(case.targets))]
    if suite.task_type == "qa":
        return reference if correct else _wrong_answer(found, rng)
    share = 0.1 * (1 - quality) if correct else 0.3 + 0.5 * (1 - quality)
    return _degrade(reference, share, rng, case.input_text)


def _wrong_answer(found: _Found, rng: np.random.Generator) -> str:
    """A reference of another case of the suite that is not one of this case's."""
    cases = found.suite.cases
    for _ in range(WRONG_ANSWER_TRIES):
        other = cases[rng.integers(len(cases))]
        if other.id == found.case.id or not other.targets:
            continue
        candidate = other.targets[rng.integers(len(other.targets))]
        if not any(_same(candidate, target) for target in found.case.targets):
            return candidate
    return "I do not know."


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """``text`` up to the first occurrence of any stop sequence, which is left out (as
    Ollama and OpenAI-compatible servers leave it out)."""
    ends = [i for i in (text.find(s) for s in stop or ()) if i >= 0]
    return text[: min(ends)] if ends else text


def _first_words(text: str, count: int) -> str:
    """``text`` up to the end of its ``count``-th word (its whitespace kept)."""
    if count <= 0:
        return ""
    ends = [m.end() for m in _WORD.finditer(text)]
    return text[: ends[count - 1]] if count <= len(ends) else text


def _degrade(
    text: str, share: float, rng: np.random.Generator, source: str, *, limit: int | None = None
) -> str:
    """``text`` with each word, with probability ``share``, dropped or (as often)
    replaced by a word of ``source``; line breaks and spacing are kept."""
    if limit is not None:
        text = _first_words(text, limit)
    words = text.split()
    fillers = source.split() or words or ["..."]
    hit = rng.random(len(words)) < share
    replace = rng.random(len(words)) < 0.5
    picks = rng.integers(len(fillers), size=len(words))
    position = iter(range(len(words)))

    def change(match: re.Match[str]) -> str:
        i = next(position)
        if not hit[i]:
            return match.group(0)
        return fillers[picks[i]] if replace[i] else ""

    return _WORD.sub(change, text)


def _wrap(
    answer: str, model: str, template: str, task: str, source: str, rng: np.random.Generator
) -> str:
    """The answer as the model says it: after reasoning aloud (cot templates), in a
    phrase (a chatty model, some of the time), or bare."""
    if template_effect(template).reasons:
        thinking = " ".join(source.split()[:REASONING_WORDS])
        return f"{REASONING_OPENING} {thinking} {REASONING_CLOSING} {answer}"
    if rng.random() < chatty_share(model, template):
        wrapper = CHATTY_SHORT if task in SHORT_ANSWER_TASKS else CHATTY_LONG
        return wrapper.format(answer=answer)
    return answer
