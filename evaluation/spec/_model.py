"""Sweep specs: what to run.

A YAML file names a suite, models, a parameter grid, prompt templates, samples per case,
metrics, hosts and limits; ``load_spec`` validates all of it before anything runs and
``expand`` turns it into configs. Shape (only ``name``, ``suite`` and ``models`` are
required)::

    name: qa-ollama                    # [a-z0-9-]+
    suite: ../suites/qa-short.jsonl    # relative to the spec file
    models: [llama3.2:3b, qwen2.5:7b]
    grid:                              # each: a list, one value, or {min, max, step}
      temperature: [0.0, 0.7]          # >= 0
      top_p: {min: 0.8, max: 1.0, step: 0.1}   # in (0, 1]
      top_k: [40]                      # >= 1
      num_predict: [128]               # >= 1; default [256]; always sent
      num_ctx: [2048, 8192]            # >= 1
      seed: [42]                       # >= 0
    templates:                         # default: {default: "{input}"}
      plain: "{input}"
      concise: "Answer in a few words.\\n\\n{input}"
    samples_per_case: 1                # >= 1
    metrics: [exact_match, contains]   # default: the suite's default metrics
    hosts:                             # default: one ollama host at $OLLAMA_HOST, 1 slot
      - {name: gpu-a, url: http://gpu-a:11434, slots: 4, kind: ollama}
      - {name: gpu-b, url: http://gpu-b:11434, slots: 2, models: [qwen2.5:7b]}
      - {name: vllm, url: http://gpu-c:8000, kind: openai, api_key_env: VLLM_KEY}
    limits: {max_configs: 500, max_generations: null, request_timeout_s: 120,
             first_request_timeout_s: 600, max_attempts: 4}
    baseline: null                     # a config hash (`evalflow plan` lists them) or label

The grid's parameters and their rules are ``evaluation.spec._params.PARAMETERS``.
A grid parameter left out is not sent (the server's default applies), except
``num_predict``. Templates are ``str.format`` text over TEMPLATE_VARIABLES and must use
``{input}``. Every error is a ``SpecError`` whose ``field`` is the dotted path of the
offending value (``grid.temperature[1]``, ``hosts[0].url``).

``Config.hash`` is the first 16 hex digits of the SHA-256 of the canonical JSON
``{"model": ..., "params": {<GenerationParams.hash_payload()>}, "template": {"name": ...,
"text": ...}}`` dumped with ``sort_keys=True, separators=(",", ":")``; the payload holds
the original six parameters always and any later one when set (see
``evaluation.spec._params``). Float parameters
are always floats (``temperature: 1`` is stored as 1.0), so a value hashes the same
however it was written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from evaluation.errors import SpecError
from evaluation.labels import configs_named, quoted
from evaluation.pipelines._setting import PipelineSetting, PipelineSpec
from evaluation.redact import redact_url
from evaluation.spec._fields import FieldReader, child
from evaluation.spec._params import BY_NAME, GRID_ORDER, RULES, GenerationParams, Rule
from evaluation.spec._strategy import Strategy
from evaluation.wording import counted

BackendKind = Literal["ollama", "openai", "simulated"]

DEFAULT_MAX_CONFIGS = 500


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt variant. ``text`` is a ``str.format`` template over TEMPLATE_VARIABLES."""

    name: str
    text: str = "{input}"


TEMPLATE_VARIABLES = ("input", "labels", "task_type")


@dataclass(frozen=True)
class Config:
    """One point of the sweep: a model, its generation settings, a prompt template and
    the pipeline that runs each case (None: ``single``, one call)."""

    model: str
    params: GenerationParams
    template: PromptTemplate
    pipeline: PipelineSetting | None = None

    @cached_property  # asked for every generation, several times (its key, its row)
    def hash(self) -> str:
        """Stable 16-hex-digit identity of model + parameters + template."""
        payload = {
            "model": self.model,
            "params": self.params.hash_payload(),
            "template": asdict(self.template),
        }
        if self.pipeline is not None:  # absent for single: older hashes stay valid
            payload["pipeline"] = self.pipeline.payload()
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human-readable name: the model and the settings that are set
        (num_predict, always sent, when it is not the default: configs differing only
        in it read alike before, and three newcomers took two for one)."""
        parts = [self.model]
        for key, value in asdict(self.params).items():
            if value is None:
                continue
            if key == "num_predict" and value == BY_NAME[key].default:
                continue
            parts.append(f"{BY_NAME[key].short or key}={BY_NAME[key].text(value)}")
        if self.template.name != "default":
            parts.append(f"tpl={self.template.name}")
        if self.pipeline is not None:
            parts += self.pipeline.label_parts()
        return " ".join(parts)


@dataclass(frozen=True)
class HostSpec:
    """A model server and how many requests it serves at once (OLLAMA_NUM_PARALLEL)."""

    name: str
    url: str
    slots: int = 1
    kind: BackendKind = "ollama"
    models: tuple[str, ...] | None = None  # None: serves every model of the sweep
    # The environment variable holding the key sent as ``Authorization: Bearer``: the key
    # itself is never in a spec, a HostSpec or anything stored (evaluation.backends._auth)
    api_key_env: str | None = None

    def serves(self, model: str) -> bool:
        return self.models is None or model in self.models

    @property
    def shown_url(self) -> str:
        """``url`` as printed, logged and stored: its password masked (evaluation.redact)."""
        return redact_url(self.url)

    @property
    def degrade(self) -> float:
        """A simulated host's ``?degrade=D`` (0 without): every answer it gives is right
        with probability ``quality − D``, a host that serves the same model worse (a
        driver, a kernel bug), for trying the watch and the gate (docs/simulated-backend.md)."""
        return simulated_options(self.url)["degrade"] if self.kind == "simulated" else 0.0

    @property
    def time_scale(self) -> float:
        """A simulated host's ``?time_scale=S`` (0 without): its calls sleep S × their
        simulated latency wherever the run starts (`run`, a deployment, the monitor's
        start button), to watch a run go; `run --time-scale N` (N > 0) overrides it."""
        return simulated_options(self.url)["time_scale"] if self.kind == "simulated" else 0.0

    @property
    def noise(self) -> int:
        """A simulated host's ``?noise=N`` (0 without): the same configs on the same cases
        drawn afresh, each case's difficulty kept, as a night's run of an unchanged model
        varies; a new ``seed`` is a new config, which the watch never compares
        (docs/simulated-backend.md)."""
        return int(simulated_options(self.url)["noise"]) if self.kind == "simulated" else 0


TIME_SCALE_MAX = 100.0  # `run --time-scale`'s too: 1 is real time
NOISE_MAX = 2**31 - 1
SIMULATED_OPTIONS = {"degrade": 1.0, "time_scale": TIME_SCALE_MAX, "noise": NOISE_MAX}
"""Each option's highest value; ``noise`` takes whole numbers only."""


def simulated_options(url: str) -> dict[str, float]:
    """A ``simulated://`` url's options, each 0 where absent (``SIMULATED_OPTIONS``);
    ValueError, saying what was expected, for another option, one given twice (the last
    was taken, unsaid: `?degrade=0.3&degrade=0.1`) or a value outside [0, its highest]."""
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    options = dict(pairs)
    twice = next((name for name in options if sum(n == name for n, _ in pairs) > 1), None)
    if twice is not None:
        given = ", ".join(repr(v) for n, v in pairs if n == twice)
        raise ValueError(f"?{twice}= is given more than once ({given}): give it once")
    unknown = sorted(set(options) - set(SIMULATED_OPTIONS))
    if unknown:
        raise ValueError(
            "a simulated host's url takes only ?degrade=D (0 to 1), ?time_scale=S "
            f"(0 to {TIME_SCALE_MAX:g}) and ?noise=N (a whole number), got ?{unknown[0]}="
        )
    found = {}
    for name, highest in SIMULATED_OPTIONS.items():
        text = options.get(name, "0")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if name == "noise" and not (0 <= value <= highest and value == int(value)):
            raise ValueError(f"?noise= must be a whole number from 0 to {highest}, got {text!r}")
        if not 0.0 <= value <= highest:
            raise ValueError(f"?{name}= must be a number from 0 to {highest:g}, got {text!r}")
        found[name] = value
    return found


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
    strategy: Strategy = field(default_factory=Strategy)  # full grid or race
    path: Path | None = None
    pipeline: PipelineSpec | None = None  # None: single (evaluation/pipelines/_spec.py)
    cases: tuple[str, ...] = ()  # ids of the suite's cases to run; empty: every case


DEFAULT_TEMPLATES = (PromptTemplate("default", "{input}"),)


def default_hosts() -> tuple[HostSpec, ...]:
    """The hosts of a spec that names none: one Ollama host where ``$OLLAMA_HOST`` says
    (read as Ollama's own CLI reads it; unset: http://127.0.0.1:11434), 1 slot."""
    from evaluation.settings import ollama_url

    return (HostSpec("local", ollama_url(), 1, "ollama"),)


def expand(spec: SweepSpec) -> list[Config]:
    """Every config of the sweep, in a stable order: by model (as listed), then num_ctx,
    temperature, top_p, top_k, num_predict, seed (values as listed), then template.
    Refuses (SpecError) a sweep larger than ``limits.max_configs``."""
    return _expand(spec, _reader(spec))


def baseline_config(spec: SweepSpec, configs: list[Config] | None = None) -> Config | None:
    """The config ``spec.baseline`` names (by hash or label), or None when it names none."""
    if spec.baseline is None:
        return None
    return _match_config(configs or expand(spec), spec.baseline, _reader(spec))


def config_count(spec: SweepSpec) -> int:
    """How many configs ``expand`` will give, computed without expanding."""
    pipelines = spec.pipeline.count if spec.pipeline is not None else 1
    return (
        len(spec.models) * len(spec.templates) * pipelines * math.prod(len(v) for v in _axes(spec))
    )


def sweep_shape(spec: SweepSpec) -> str:
    """The factors of the config count, e.g. ``3 models × 2 temperature × 2 templates``."""
    factors = [f"{len(spec.models)} model{'s' * (len(spec.models) != 1)}"]
    factors += [f"{len(spec.grid[n])} {n}" for n in GRID_ORDER if len(spec.grid.get(n, ())) > 1]
    if len(spec.templates) > 1:
        factors.append(f"{len(spec.templates)} templates")
    if spec.pipeline is not None:
        factors += [f"{len(v)} {n}" for n, v in spec.pipeline.grid if len(v) > 1]
    return " × ".join(factors)


def _axes(spec: SweepSpec) -> list[tuple[Any, ...]]:
    return [spec.grid.get(name) or (BY_NAME[name].default,) for name in GRID_ORDER]


def _expand(spec: SweepSpec, reader: FieldReader) -> list[Config]:
    count = config_count(spec)
    reader.check(
        count <= spec.limits.max_configs,
        "limits.max_configs",
        f"the sweep expands to {count} configs ({sweep_shape(spec)}), more than "
        f"limits.max_configs = {spec.limits.max_configs}; shrink the grid, or raise the "
        f"limit in the spec (limits: {{max_configs: {count}}})",
    )
    params = [
        GenerationParams(**dict(zip(GRID_ORDER, values, strict=True)))
        for values in itertools.product(*_axes(spec))
    ]
    for rule in RULES:
        broken = next((p for p in params if not rule.holds(p)), None)
        if broken is not None:
            raise _broken_rule(spec, reader, rule, broken)
    pipelines = spec.pipeline.settings() if spec.pipeline is not None else [None]
    return [
        Config(model, p, template, pipeline)
        for model in spec.models
        for p in params
        for template in spec.templates
        for pipeline in pipelines
    ]


def _broken_rule(
    spec: SweepSpec, reader: FieldReader, rule: Rule, broken: GenerationParams
) -> SpecError:
    """A rule between parameters that ``broken`` breaks, placed where the file writes
    its parameter: in the grid, or in the pipeline block (chunk_size & co. fixed there
    reach the grid as one value: newcomer N6 was pointed at line 1 and `grid.`), else
    at the first other parameter it combines that the file writes. A value the file
    does not write is the pipeline's default, and said so."""
    names = [n for n in GRID_ORDER if n in spec.grid and getattr(broken, n) != BY_NAME[n].default]
    written = {
        n: next((f for f in (child("grid", n), child("pipeline", n)) if reader.written(f)), None)
        for n in names
    }
    field = next(
        (written[n] for n in (rule.field, *names) if written.get(n)), child("grid", rule.field)
    )
    default = " (the pipeline's default)" if reader.path is not None else ""
    combined = ", ".join(
        f"{n}={getattr(broken, n)}{default if written[n] is None else ''}" for n in names
    )
    grid_only = all(f is None or f.startswith("grid.") for f in written.values())
    return reader.error(
        field, f"{rule.message}; the {'grid' if grid_only else 'spec'} combines {combined}"
    )


def _match_config(configs: list[Config], ref: str, reader: FieldReader) -> Config:
    """The config ``ref`` names by any name the outputs give one (the hash, the label,
    the label as ``show`` prints it, the label as written before num_predict was shown,
    a unique hash prefix: ``evaluation.labels.configs_named``)."""
    hashes = [c.hash for c in configs]
    hits = configs_named(ref, hashes, [c.label for c in configs])
    if not hits:  # the configs themselves: `plan`, which would list them, refuses too
        shown = "; ".join(f"{quoted(c.label)} ({c.hash})" for c in configs[:3])
        more = f"; +{len(configs) - 3} more" if len(configs) > 3 else ""
        raise reader.error(
            "baseline",
            f"'{ref}' is neither the hash nor the label of a config of this sweep (a label "
            f"is the model and the settings that are set); its configs: {shown}{more}",
        )
    by_hash = dict(zip(hashes, configs, strict=True))
    listing = "; ".join(f"{quoted(by_hash[h].label)} ({h})" for h in hits[:10])
    reader.check(
        len(hits) == 1,
        "baseline",
        f"'{ref}' names {len(hits)} configs of this sweep: {listing}; give one's hash",
    )
    return by_hash[hits[0]]


@dataclass(frozen=True)
class Plan:
    """What a sweep will run, worked out before anything runs."""

    spec: SweepSpec
    configs: tuple[Config, ...]
    n_cases: int
    samples_per_case: int
    generations: int  # configs × cases × samples per case

    @property
    def total_slots(self) -> int:
        return sum(host.slots for host in self.spec.hosts)


def make_plan(spec: SweepSpec, n_cases: int) -> Plan:
    """Expand ``spec`` over a suite of ``n_cases`` cases; refuses (SpecError) a sweep past
    ``limits.max_configs`` or ``limits.max_generations``."""
    if n_cases < 0:
        raise ValueError(f"n_cases must be >= 0, got {n_cases}")
    configs = tuple(expand(spec))
    samples = spec.samples_per_case
    generations = len(configs) * n_cases * samples
    limit = spec.limits.max_generations
    _reader(spec).check(
        limit is None or generations <= limit,
        "limits.max_generations",
        f"the sweep makes {generations} generations ({_product(len(configs), n_cases, samples)}), "
        f"more than "
        f"limits.max_generations = {limit}; shrink the sweep, or raise the limit in the "
        f"spec (limits: {{max_generations: {generations}}})",
    )
    return Plan(spec, configs, n_cases, samples, generations)


def _product(configs: int, cases: int, samples: int) -> str:
    """ "2 configs × 1 case × 3 samples": how the generations multiply out."""
    return " × ".join(
        (counted(configs, "config"), counted(cases, "case"), counted(samples, "sample"))
    )


@dataclass(frozen=True)
class PlanSubset:
    """The part of the plan a run of a level or ``--limit`` runs: ``what`` names it
    ("level full, first 10"), ``whole`` what the full count is ("at level full without
    --limit")."""

    what: str
    whole: str
    cases: int
    generations: int


def format_plan(
    plan: Plan, *, default_metrics: Sequence[str] = (), subset: PlanSubset | None = None
) -> str:
    """The plan as text: one row per config, then the totals: of ``subset`` where the run
    does part of the plan, the full count beside (`plan --limit 10` said "generations 72"
    over "first 10: 10 cases, 20 generations"); the metrics named, the suite's
    ``default_metrics`` where the spec names none."""
    spec = plan.spec
    columns = [name for name in GRID_ORDER if name in spec.grid]
    varied = [name for name, _ in spec.pipeline.grid] if spec.pipeline is not None else []
    header = ["#", "hash", "model", *columns, "template", *varied]
    rows = [
        [
            str(i),
            c.hash,
            c.model,
            *(_cell(getattr(c.params, n), BY_NAME[n].text) for n in columns),
            c.template.name,
            *(_cell(c.pipeline.params.get(n)) for n in varied if c.pipeline is not None),
        ]
        for i, c in enumerate(plan.configs, start=1)
    ]
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]
    lines = [f"sweep {spec.name}: suite {spec.suite}"]
    if any(host.kind == "simulated" for host in spec.hosts):
        lines.append("SIMULATED: outputs come from the simulated backend, not from real models")
    lines.append("")
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    samples = plan.samples_per_case
    cases, generations = str(plan.n_cases), str(plan.generations)
    product = _product(len(plan.configs), plan.n_cases, samples)
    if subset is not None:
        cases = f"{subset.cases} of {plan.n_cases}  ({subset.what})"
        product = _product(len(plan.configs), subset.cases, samples)
        generations = f"{subset.generations}  ({product}; {subset.whole}: {plan.generations})"
    else:
        generations = f"{generations}  ({product})"
    metrics = ", ".join(spec.metrics)
    if not metrics:
        metrics = f"{', '.join(default_metrics)} (the suite's defaults)"
    totals = [
        ("configs", f"{len(plan.configs)}  ({sweep_shape(spec)})"),
        ("cases", cases),
        ("samples per case", str(samples)),
        ("generations", generations),
        ("metrics", metrics),
    ]
    if spec.strategy.race:
        runs = subset.generations if subset is not None else plan.generations
        totals.insert(4, ("strategy", _race_line(spec.strategy, runs)))
    if spec.pipeline is not None:
        totals.append(("pipeline", spec.pipeline.name))
    if (base := baseline_config(spec, list(plan.configs))) is not None:
        totals.append(("baseline", f"{base.hash}  {base.label}"))
    for i, host in enumerate(spec.hosts):
        serves = ", ".join(host.models) if host.models is not None else "every model"
        totals.append(
            (
                "hosts" if i == 0 else "",
                f"{host.name}  {host.shown_url}  {host.kind}  "
                f"{host.slots} slot{'s' * (host.slots != 1)}  serves {serves}",
            )
        )
    totals.append(("slots", f"{plan.total_slots} in all"))
    width = max(len(label) for label, _ in totals)
    lines.append("")
    lines += [f"{label.ljust(width)}  {value}" for label, value in totals]
    return "\n".join(lines) + "\n"


def _race_line(strategy: Strategy, generations: int) -> str:
    """What a race runs, said where the plan counts the full grid's generations (the most
    a race runs; how many fewer depends on how soon configs separate)."""
    most = f"at most the {generations} above"
    if strategy.budget is not None and strategy.budget < generations:
        most = f"at most {strategy.budget} (its budget) of the {generations} above"
    limits = "".join(f", p95 latency ≤ {v:g} s" for v in strategy.limits.values())
    return (
        f"race (delta {strategy.delta:g}{limits}): configs that have significantly lost "
        f"stop early; generations {most}"
    )


def _cell(value: Any, text: Callable[[Any], str] = str) -> str:
    """A plan table's cell: a setting as the config's label writes it (``text``: "0",
    where labels say t=0), "-" where unset."""
    return "-" if value is None else text(value)


def _reader(spec: SweepSpec) -> FieldReader:
    return FieldReader(str(spec.path) if spec.path is not None else None)
