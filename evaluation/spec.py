"""Sweep specs: what to run. A YAML file names a suite, models, a parameter grid, prompt
templates, samples per case, metrics, hosts and limits; ``expand`` turns it into configs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

BackendKind = Literal["ollama", "openai", "simulated"]

DEFAULT_MAX_CONFIGS = 500
DEFAULT_NUM_PREDICT = 256


@dataclass(frozen=True)
class GenerationParams:
    """Generation settings sent to the backend. ``None`` means "the server's default"
    except ``num_predict``, which is always sent (Ollama's default is unbounded)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    num_predict: int = DEFAULT_NUM_PREDICT
    num_ctx: int | None = None
    seed: int | None = None

    def to_ollama_options(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt variant. ``text`` is a ``str.format`` template over TEMPLATE_VARIABLES."""

    name: str
    text: str = "{input}"


TEMPLATE_VARIABLES = ("input", "labels", "task_type")


@dataclass(frozen=True)
class Config:
    """One point of the sweep: a model, its generation settings and a prompt template."""

    model: str
    params: GenerationParams
    template: PromptTemplate

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit identity of model + parameters + template."""
        payload = {
            "model": self.model,
            "params": asdict(self.params),
            "template": asdict(self.template),
        }
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human-readable name: the model and the settings that are set."""
        parts = [self.model]
        short = {"temperature": "t", "top_p": "p", "top_k": "k", "num_predict": "n",
                 "num_ctx": "ctx", "seed": "seed"}
        for key, value in asdict(self.params).items():
            if value is not None and key != "num_predict":
                parts.append(f"{short[key]}={value:g}" if isinstance(value, float)
                             else f"{short[key]}={value}")
        if self.template.name != "default":
            parts.append(f"tpl={self.template.name}")
        return " ".join(parts)


@dataclass(frozen=True)
class HostSpec:
    """A model server and how many requests it serves at once (OLLAMA_NUM_PARALLEL)."""

    name: str
    url: str
    slots: int = 1
    kind: BackendKind = "ollama"
    models: tuple[str, ...] | None = None  # None: serves every model of the sweep

    def serves(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True)
class Limits:
    max_configs: int = DEFAULT_MAX_CONFIGS
    max_generations: int | None = None
    request_timeout_s: float = 120.0
    first_request_timeout_s: float = 600.0  # the first request to a model may load it
    max_attempts: int = 4


@dataclass(frozen=True)
class SweepSpec:
    name: str
    suite: Path
    models: tuple[str, ...]
    grid: dict[str, tuple[Any, ...]]  # parameter name -> values, already expanded
    templates: tuple[PromptTemplate, ...]
    hosts: tuple[HostSpec, ...]
    metrics: tuple[str, ...] = ()  # empty: the suite's default metrics
    samples_per_case: int = 1
    limits: Limits = field(default_factory=Limits)
    baseline: str | None = None  # a config label or hash to compare against
    path: Path | None = None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; raises SpecError naming the field."""
    raise NotImplementedError


def expand(spec: SweepSpec) -> list[Config]:
    """Every config of the sweep, in a stable order (by model, then num_ctx, ...)."""
    raise NotImplementedError
