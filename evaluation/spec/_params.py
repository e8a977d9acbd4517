"""The generation parameters: the one place that says what each one is.

A parameter is a field of ``GenerationParams`` with its facts in ``param(...)``: type and
default come from the annotation and the default (int, float, str, bool, or a list of
strings, ``tuple[str, ...]``, which its column stores as JSON text); validation from
``minimum`` / ``maximum`` / ``choices``; then whether and how it enters the config hash,
how it is sent to Ollama and to OpenAI-compatible servers, and how the selector encodes
it.
Everything else is built from ``PARAMETERS``: the spec's grid and its validation, the
expansion order, config labels, the ``configs`` table's columns, the training frame's
SQL, export, parameter effects, the selector's features and ``recommend()``'s configs.
A rule that ties parameters together (``chunk_overlap < chunk_size``) goes in ``RULES``;
every expanded config is checked against it.

Adding a parameter never changes the hash of a config stored before it: a new parameter
enters the hash only when it differs from its default (``hash_when_unset`` is for the six
the hash always held, default or not).
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

Kind = type[int] | type[float] | type[str] | type[bool] | type[tuple]
Encoding = Literal["numeric", "categorical"]

DEFAULT_NUM_PREDICT = 256
MAX_TOKENS = 2**24
"""The most tokens ``num_predict`` and ``num_ctx`` may ask for (16,777,216): longer than
any model's context window, far below any overflow."""
MAX_VOCABULARY = 2**20
MAX_CHUNK = 10**8  # units (tokens or characters) in a pipeline chunk
MAX_RETRIEVE = 10_000  # chunks a rag pipeline retrieves for one question


def param(default: Any = None, **facts: Any) -> Any:
    """A ``GenerationParams`` field; ``facts`` are ``Parameter``'s fields after
    ``default`` (``None``: the server's default, and the parameter is not sent)."""
    return field(default=default, metadata={"param": facts})


@dataclass(frozen=True)
class GenerationParams:
    """Generation settings sent to the backend. ``None`` means "the server's default"
    except ``num_predict``, which is always sent (Ollama's default is unbounded)."""

    temperature: float | None = param(
        minimum=0.0,
        maximum=2.0,
        why="2 is the most OpenAI's API accepts; above it a model's words are noise",
        short="t",
        ollama="temperature",
        openai="temperature",
        hash_when_unset=True,
    )
    top_p: float | None = param(
        minimum=0.0,
        exclusive_minimum=True,
        maximum=1.0,
        short="p",
        ollama="top_p",
        openai="top_p",
        hash_when_unset=True,
    )
    top_k: int | None = param(
        minimum=1,
        maximum=MAX_VOCABULARY,
        why="more than any model's vocabulary",
        short="k",
        ollama="top_k",
        hash_when_unset=True,
    )
    num_predict: int = param(
        DEFAULT_NUM_PREDICT,
        minimum=1,
        maximum=MAX_TOKENS,
        why="0 generates nothing, and -1 (unbounded generation) is refused because a "
        "model that loops would never stop; the most is longer than any context window",
        short="n",
        ollama="num_predict",
        openai="max_tokens",
        hash_when_unset=True,
    )
    num_ctx: int | None = param(
        minimum=1,
        maximum=MAX_TOKENS,
        why="the most is longer than any model's context window",
        short="ctx",
        ollama="num_ctx",
        reloads_model=True,
        hash_when_unset=True,
    )
    seed: int | None = param(
        minimum=0,
        maximum=2**32 - 1,
        why="leave seed out to let the server pick one; llama.cpp's seeds are 32 bits",
        short="seed",
        ollama="seed",
        openai="seed",
        feature=None,
        effect=False,
        hash_when_unset=True,
    )
    stop: tuple[str, ...] | None = param(
        why='e.g. ["\\nQuestion:"]; in a grid, one such list or a list of them',
        ollama="stop",
        openai="stop",
    )

    # Pipeline parameters (evaluation/pipelines): not sent to the server; a pipeline
    # that declares them reads them. Unset (None) for the single pipeline.
    chunk_size: int | None = param(
        minimum=1, maximum=MAX_CHUNK, why="more than any document holds", short="chunk"
    )
    chunk_overlap: int | None = param(minimum=0, maximum=MAX_CHUNK - 1, short="overlap")
    retrieve_k: int | None = param(
        minimum=1,
        maximum=MAX_RETRIEVE,
        short="retrieve",
        why="the chunks a rag pipeline retrieves (top_k samples)",
    )
    min_similarity: float | None = param(minimum=-1.0, maximum=1.0, short="minsim")
    parallel: bool | None = param(short="parallel")
    embed_model: str | None = param(short="embed", feature="categorical")

    def to_ollama_options(self) -> dict[str, Any]:
        """The Ollama ``options`` object: every model option that is set."""
        return {
            p.ollama: p.sent(getattr(self, p.name))
            for p in PARAMETERS
            if p.ollama is not None and getattr(self, p.name) is not None
        }

    def to_openai_fields(self) -> dict[str, Any]:
        """The request-body fields of an OpenAI-compatible server that are set."""
        return {
            p.openai: p.sent(getattr(self, p.name))
            for p in PARAMETERS
            if p.openai is not None and getattr(self, p.name) is not None
        }

    def columns(self) -> dict[str, Any]:
        """The values as the ``configs`` table stores them (a list as JSON text)."""
        return {p.name: p.stored(getattr(self, p.name)) for p in PARAMETERS}

    def for_sample(self, sample_index: int) -> GenerationParams:
        """The parameters sent for one sample of a case: the seed is the sample's own
        (:func:`sample_seed`), so repeated samples of a seeded config differ where
        sampling is random, and a rerun repeats each of them."""
        seed = sample_seed(self.seed, sample_index)
        return self if seed == self.seed else replace(self, seed=seed)

    def hash_payload(self) -> dict[str, Any]:
        """The parameters that identify a config (see the module docstring)."""
        return {
            name: value
            for name, value in asdict(self).items()
            if BY_NAME[name].hashed
            and (BY_NAME[name].hash_when_unset or value != BY_NAME[name].default)
        }


def sample_seed(seed: int | None, sample_index: int) -> int | None:
    """The seed sent for sample ``sample_index`` of a config seeded with ``seed``: sample 0
    keeps it; sample i > 0 gets the first 31 bits of sha256("<seed>:<i>"), so it is
    reproducible, differs per sample, and does not collide with another config's seed
    plus one (a fixed seed sent for every sample made all samples byte-identical at
    temperature > 0: pass@k equal to pass@1, no variance). Unseeded stays unseeded."""
    if seed is None or sample_index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Parameter:
    """One generation parameter, as ``param(...)`` describes it."""

    name: str
    kind: Kind
    default: Any = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] | None = None  # the values a text parameter accepts
    why: str = ""  # the reason for the rule, when it is not obvious
    short: str = ""  # its name in a config label ("t=0.7"); default: the name
    hashed: bool = True  # part of the config's identity
    hash_when_unset: bool = False  # in the hash even at its default (the original six)
    ollama: str | None = None  # key in Ollama's ``options``; None: not a model option
    openai: str | None = None  # key in an OpenAI-compatible request; None: not sent
    reloads_model: bool = False  # a change makes Ollama reload: sweep it first
    feature: Encoding | Literal["auto"] | None = "auto"  # auto: numeric, text categorical
    effect: bool | None = None  # studied by parameter effects; None: when numeric

    @property
    def numeric(self) -> bool:
        return self.kind in (int, float, bool)

    @property
    def column_kind(self) -> type:
        """The type of its column: a list (``stop``) is stored as JSON text."""
        return str if self.kind is tuple else self.kind

    @property
    def encoding(self) -> Encoding | None:
        """How the selector sees it: a numeric or a categorical feature, or not at all."""
        if self.feature != "auto":
            return self.feature
        return "numeric" if self.numeric else "categorical"

    @property
    def studied(self) -> bool:
        """Whether parameter effects rank its values (numbers only)."""
        return self.numeric and self.kind is not bool and self.effect is not False

    @property
    def rule(self) -> str:
        """The validation rule as an error message states it."""
        if self.choices is not None:
            return f"must be one of {', '.join(self.choices)}"
        if self.kind is tuple:
            return "must be a list of non-empty strings"
        if self.minimum is None:
            return "must be " + ("true or false" if self.kind is bool else "set")
        low = _number(self.minimum)
        if self.maximum is None:
            return f"must be {'>' if self.exclusive_minimum else '>='} {low}"
        opening = "(" if self.exclusive_minimum else "["
        return f"must be in {opening}{low}, {_number(self.maximum)}]"

    def accepts(self, value: Any) -> bool:
        if self.kind is tuple:
            return all(isinstance(s, str) and s for s in value)
        if self.choices is not None:
            return value in self.choices
        above = (
            self.minimum is None
            or value > self.minimum
            or (value == self.minimum and not self.exclusive_minimum)
        )
        return above and (self.maximum is None or value <= self.maximum)

    def cast(self, value: Any) -> Any:
        """A stored or JSON value (a float frame cell, NaN for unset) as this type."""
        if value is None or value != value:  # NaN
            return None
        if self.kind is tuple:
            return tuple(json.loads(value) if isinstance(value, str) else value) or None
        return self.kind(value)

    def stored(self, value: Any) -> Any:
        """``value`` as its column holds it."""
        if self.kind is tuple and value is not None:
            return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
        return value

    def sent(self, value: Any) -> Any:
        """``value`` as a request carries it (a list, not a tuple)."""
        return list(value) if self.kind is tuple else value

    def text(self, value: Any) -> str:
        """``value`` in a config label, one word: a float as ``0.7``, a list as JSON
        with its spaces escaped (labels are split at spaces)."""
        if isinstance(value, float):
            return f"{value:g}"
        if self.kind is tuple:
            return self.stored(value).replace(" ", "\\u0020")
        return str(value)


def _number(value: int | float) -> str:
    """A bound as a rule states it: ``0``, ``0.5``, ``16777216`` (never ``1.67772e+07``)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Rule:
    """A rule between parameters, checked on every expanded config: ``holds(params)``
    must be true; ``field`` is the grid parameter an error names."""

    field: str
    message: str  # e.g. "chunk_overlap must be less than chunk_size"
    holds: Callable[[GenerationParams], bool]


RULES: tuple[Rule, ...] = (
    Rule(
        "chunk_overlap",
        "chunk_overlap must be less than chunk_size",
        lambda p: p.chunk_overlap is None or p.chunk_size is None or p.chunk_overlap < p.chunk_size,
    ),
)


def _parameters() -> tuple[Parameter, ...]:
    hints = typing.get_type_hints(GenerationParams)
    return tuple(
        Parameter(name=f.name, kind=_kind(hints[f.name]), default=f.default, **f.metadata["param"])
        for f in fields(GenerationParams)
    )


def _kind(hint: Any) -> Kind:
    types = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    if len(types) != 1:
        raise TypeError(f"a generation parameter has one type (and None), not {hint}")
    if types[0] == tuple[str, ...]:
        return tuple
    if types[0] not in (int, float, str, bool):
        raise TypeError(
            f"a generation parameter is int, float, str, bool or tuple[str, ...], not {types[0]}"
        )
    return types[0]


PARAMETERS: tuple[Parameter, ...] = _parameters()
"""Every generation parameter, in ``GenerationParams`` field order."""
BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
STUDIED_PARAMETERS: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.studied)
"""The numeric parameters whose effects are ranked; seed is one but has none to recommend."""
GRID_ORDER: tuple[str, ...] = tuple(sorted(NAMES, key=lambda name: not BY_NAME[name].reloads_model))
"""Expansion order after the model: parameters that make Ollama reload the model
(num_ctx) first, so configs sharing them run together; then field order."""
