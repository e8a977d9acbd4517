"""Reading and validating sweep-spec YAML (the shape is documented in ``_model``).

``parse_spec`` checks every field before anything runs and raises ``SpecError`` naming
the dotted field; it also expands the sweep once, so a spec past ``limits.max_configs``
or with a baseline that names no config is refused here.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from evaluation import safe_yaml
from evaluation.errors import SpecError
from evaluation.input_files import read_bytes, special_file
from evaluation.printable import control_character
from evaluation.redact import redact_url
from evaluation.settings import host_url_problem
from evaluation.spec._fields import (
    DOCUMENT,
    SHOWN_CHARS,
    FieldReader,
    FormattedField,
    child,
    item,
    shown,
    template_fields,
)
from evaluation.spec._grid import GRID_ORDER, grid_values
from evaluation.spec._model import (
    DEFAULT_TEMPLATES,
    TEMPLATE_VARIABLES,
    BackendKind,
    HostSpec,
    Limits,
    PromptTemplate,
    SweepSpec,
    baseline_config,
    default_hosts,
    expand,
    simulated_options,
)
from evaluation.spec._names import MAX_NAME_LENGTH, NAME_PATTERN
from evaluation.spec._params import PARAMETERS
from evaluation.spec._pipeline import parse_pipeline
from evaluation.spec._strategy import STRATEGY_KEYS, read_strategy
from evaluation.suites import suite_file_problem

BACKEND_KINDS: tuple[BackendKind, ...] = ("ollama", "openai", "simulated")

SPEC_KEYS = (
    "name",
    "suite",
    "models",
    "grid",
    "templates",
    "samples_per_case",
    "metrics",
    "hosts",
    "limits",
    "baseline",
    "pipeline",
    "cases",
    *STRATEGY_KEYS,
)
HOST_KEYS = ("name", "url", "slots", "kind", "models", "api_key_env")
#: What sets a host's slots on its server, by kind (docs/running-for-real.md's table):
#: an OpenAI-compatible server's is its engine's own, not Ollama's.
SLOTS_SETTING = {
    "ollama": "its OLLAMA_NUM_PARALLEL",
    "openai": "llama.cpp's --parallel, vLLM's --max-num-seqs",
}
# A key written into a host's entry: refused, pointing to api_key_env (specs are
# committed, and stored with every experiment)
LITERAL_KEY_NAMES = ("api_key", "apikey", "api-key", "key", "token", "bearer", "authorization")
# Upper case, as environment variables are by convention (POSIX): a key pasted in place
# of the name (most have lower-case letters) is refused without being echoed
ENV_NAME_PATTERN = r"[A-Z_][A-Z0-9_]*"
LIMIT_KEYS = tuple(f.name for f in fields(Limits))
TEMPLATE_NAME_PATTERN = r"[A-Za-z0-9_-]+"
HOST_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
# A spec is a few KB (the bundled ones under 2 KB); a 300 MB comment took 78 s and 920 MB
# to `plan`: the file is refused past this before it is read whole, let alone parsed
MAX_SPEC_BYTES = 1 << 20
# A template is sent with every case: 256 Ki characters are ~64k tokens, past the context
# of most local models (a 200 MB template was planned in 172 s, 823 MB); longer few-shot
# material belongs in the cases (their input or messages), which are not bounded
MAX_TEMPLATE_CHARS = 1 << 18


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; raises SpecError naming the field."""
    path = Path(path)
    reader = FieldReader(str(path))
    if path.is_dir():
        raise reader.error(DOCUMENT, "is a folder; expected a sweep spec file (YAML)")
    if (kind := special_file(path)) is not None:  # a named pipe was waited on forever
        raise reader.error(DOCUMENT, f"is {kind}; expected a sweep spec file (YAML)")
    try:
        raw = read_bytes(path, MAX_SPEC_BYTES + 1)  # never more, even of a large file
    except OSError as exc:
        raise reader.error(DOCUMENT, f"cannot read the spec file: {exc.strerror}") from exc
    if len(raw) > MAX_SPEC_BYTES:
        raise reader.error(
            DOCUMENT,
            f"the spec file is {path.stat().st_size:,} bytes; at most {MAX_SPEC_BYTES:,} "
            "(1 MiB; the bundled specs are under 2 KB)",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise reader.error(
            DOCUMENT, f"line {line}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    try:
        data = safe_yaml.load(text)
    except yaml.YAMLError as exc:
        line, column = safe_yaml.position(exc)  # file:line:col, as every refusal
        message = f"not valid YAML: {safe_yaml.problem(exc)}"
        raise SpecError(message, field=DOCUMENT, path=str(path), line=line, column=column) from exc
    return parse_spec(data, path=path)


def parse_spec(
    data: Any, *, path: str | Path | None = None, base_dir: str | Path | None = None
) -> SweepSpec:
    """Validate a spec already read from YAML. A relative ``suite`` is resolved against
    ``base_dir``, else the spec file's folder, else the working directory."""
    reader = FieldReader(str(path) if path is not None else None)
    reader.mapping(
        data,
        "",
        allowed=SPEC_KEYS,
        required=("name", "suite", "models"),
        nested=dict.fromkeys(GRID_ORDER, "grid"),
    )
    reader.storable(data)
    if base_dir is None and path is not None:
        base_dir = Path(path).parent
    limits = _limits(reader, data.get("limits"))
    models = _models(reader, data["models"])
    raw_grid = {} if data.get("grid") is None else reader.mapping(data["grid"], "grid")
    generation_grid = {k: v for k, v in raw_grid.items() if k in GRID_ORDER}
    pipeline_grid = {k: v for k, v in raw_grid.items() if k not in GRID_ORDER}
    grid = _grid(reader, generation_grid, limits.max_configs)
    pipeline, pipeline_values = parse_pipeline(
        reader, data.get("pipeline"), pipeline_grid, grid, base_dir
    )
    name = reader.text(data["name"], "name", pattern=NAME_PATTERN)
    reader.check(len(name) <= MAX_NAME_LENGTH, "name", f"at most {MAX_NAME_LENGTH} characters")
    spec = SweepSpec(
        name=name,
        suite=_suite(reader, data["suite"], base_dir),
        models=models,
        grid=grid | pipeline_values,
        templates=_templates(reader, data.get("templates")),
        hosts=_hosts(reader, data.get("hosts"), models),
        samples_per_case=(samples := _samples(reader, data.get("samples_per_case", 1))),
        metrics=_metrics(reader, data.get("metrics"), samples),
        limits=limits,
        baseline=_optional_text(reader, data.get("baseline"), "baseline"),
        strategy=read_strategy(reader, data),
        path=Path(path) if path is not None else None,
        pipeline=pipeline,
        cases=_cases(reader, data.get("cases")),
    )
    baseline_config(spec, expand(spec))  # refuses a sweep past max_configs, a bad baseline
    return spec


def _models(reader: FieldReader, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        example = raw if len(raw) <= SHOWN_CHARS else raw[:50] + "…"
        raise reader.error("models", f"expected a list of model names, e.g. [{example}]")
    models = [
        _model_name(reader, m, item("models", i))
        for i, m in enumerate(reader.sequence(raw, "models"))
    ]
    reader.unique(models, "models")
    return tuple(models)


def _model_name(reader: FieldReader, raw: Any, field: str) -> str:
    """A model name: no white space, and no control character (it is printed on
    terminals and in logs, where an ESC sequence in it set the window's title: S5)."""
    name = reader.text(raw, field)
    control = control_character(name)
    reader.check(control is None, field, f"a model name holds no control character, got {control}")
    return reader.text(name, field, pattern=r"\S+")


def _cases(reader: FieldReader, raw: Any) -> tuple[str, ...]:
    """``cases:``, the ids of the suite's cases to run (none: all of them); the suite
    checks each is one of its own (:func:`evaluation.run._sweep.prepare_sweep`)."""
    if raw is None:
        return ()
    ids = [reader.text(c, item("cases", i)) for i, c in enumerate(reader.sequence(raw, "cases"))]
    reader.unique(ids, "cases")
    return tuple(ids)


def _suite(reader: FieldReader, raw: Any, base_dir: str | Path | None) -> Path:
    suite = reader.file_near_spec(reader.text(raw, "suite"), base_dir)
    reader.check(
        not suite.is_dir(), "suite", f"{suite} is a folder; expected the suite's .jsonl file"
    )
    kind = special_file(suite)
    reader.check(kind is None, "suite", f"{suite} is {kind}; expected the suite's .jsonl file")
    reader.check(suite.is_file(), "suite", f"suite file not found: {suite}")
    problem = suite_file_problem(suite)
    reader.check(problem is None, "suite", str(problem))
    return suite


def _grid(reader: FieldReader, raw: Any, max_configs: int) -> dict[str, tuple[Any, ...]]:
    grid_map = {} if raw is None else reader.mapping(raw, "grid", allowed=GRID_ORDER)
    grid = {
        name: grid_values(reader, name, value, child("grid", name), max_count=max_configs)
        for name, value in grid_map.items()
        if value is not None
    }
    for param in PARAMETERS:  # always sent: always in the grid
        if param.default is not None:
            grid.setdefault(param.name, (param.default,))
    return grid


def _templates(reader: FieldReader, raw: Any) -> tuple[PromptTemplate, ...]:
    if raw is None:
        return DEFAULT_TEMPLATES
    reader.mapping(raw, "templates")
    reader.check(bool(raw), "templates", "must not be empty; leave it out for '{input}'")
    texts: dict[str, str] = {}
    for name, value in raw.items():
        field = child("templates", name)
        reader.text(name, field, pattern=TEMPLATE_NAME_PATTERN)
        text = reader.text(value, field)
        reader.check(
            len(text) <= MAX_TEMPLATE_CHARS,
            field,
            f"template '{name}' is {len(text):,} characters; at most {MAX_TEMPLATE_CHARS:,} "
            "(~64k tokens; put longer few-shot examples in the suite's cases)",
        )
        _check_template(reader, name, text, field)
        reader.check(
            text not in texts,
            field,
            f"template '{name}' has the same text as template '{texts.get(text)}'",
        )
        texts[text] = name
    return tuple(PromptTemplate(name, text) for text, name in texts.items())


def _check_template(reader: FieldReader, name: str, text: str, field: str) -> None:
    allowed = ", ".join(f"{{{v}}}" for v in TEMPLATE_VARIABLES)
    try:
        used = template_fields(text)
    except FormattedField as exc:
        raise reader.error(field, f"template '{name}': {exc}") from exc
    except ValueError as exc:
        raise reader.error(
            field,
            f"template '{name}' is not a valid template ({exc}); write {{{{ and }}}} "
            "for literal braces",
        ) from exc
    for variable in used:
        reader.check(
            variable in TEMPLATE_VARIABLES,
            field,
            f"template '{name}' uses unknown variable {{{variable}}}; allowed: {allowed} "
            "(write {{ and }} for literal braces)",
        )
    reader.check(
        "input" in used,
        field,
        f"template '{name}' never uses {{input}}, so every case would get the same prompt",
    )


def _hosts(reader: FieldReader, raw: Any, models: tuple[str, ...]) -> tuple[HostSpec, ...]:
    if raw is None:
        return default_hosts()
    hosts = tuple(
        _host(reader, h, item("hosts", i)) for i, h in enumerate(reader.sequence(raw, "hosts"))
    )
    for attribute in ("name", "url"):
        values = [getattr(h, attribute) for h in hosts]
        for i, value in enumerate(values):
            first = values.index(value)
            reader.check(
                first == i,
                child(item("hosts", i), attribute),
                f"duplicate host {attribute} '{value}' (already hosts[{first}])",
            )
    simulated = [h.kind == "simulated" for h in hosts]
    reader.check(
        all(simulated) or not any(simulated),
        child(item("hosts", simulated.index(True) if any(simulated) else 0), "kind"),
        "simulated hosts cannot share a sweep with real ones: their outputs would be "
        "compared with real model outputs",
    )
    for i, model in enumerate(models):
        reader.check(
            any(h.serves(model) for h in hosts),
            item("models", i),
            f"no host serves model '{model}': add it to a host's models list, or drop "
            "that list so the host serves every model",
        )
    return hosts


def _host(reader: FieldReader, raw: Any, field: str) -> HostSpec:
    for key in raw if isinstance(raw, dict) else ():
        if isinstance(key, str) and key.lower() in LITERAL_KEY_NAMES:
            raise reader.error(
                child(field, key),
                "a key is never written in a spec (specs are committed, and stored with "
                "every run): put it in an environment variable and name that variable "
                "with api_key_env, e.g. api_key_env: VLLM_KEY",
                at_key=True,
            )
    reader.mapping(raw, field, allowed=HOST_KEYS, required=("name", "url"))
    name = reader.text(raw["name"], child(field, "name"), pattern=HOST_NAME_PATTERN)
    kind = raw.get("kind", "ollama")
    reader.check(
        kind in BACKEND_KINDS,
        child(field, "kind"),
        f"unknown backend kind {shown(kind)}; one of: {', '.join(BACKEND_KINDS)}",
    )
    url = reader.text(raw["url"], child(field, "url"))
    parts = urlsplit(url)
    schemes = ("simulated",) if kind == "simulated" else ("http", "https")
    reader.check(
        parts.scheme in schemes and bool(parts.netloc),
        child(field, "url"),
        f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} host's url must start with "
        + " or ".join(f"{s}://" for s in schemes)
        + f", got '{redact_url(url)}'"
        + (" (simulated:// urls need kind: simulated)" if parts.scheme == "simulated" else ""),
    )
    if kind == "simulated":
        try:
            simulated_options(url)
        except ValueError as exc:
            raise reader.error(child(field, "url"), str(exc)) from None
    else:
        try:
            port = parts.port  # raises on 'host:11434:5' and on a port that is not a number
        except ValueError:
            port = -1
        reader.check(
            port is None or 1 <= port <= 65535,
            child(field, "url"),
            f"expected http(s)://host:port with a port 1-65535, got '{redact_url(url)}'",
        )
        reader.check(
            not parts.query and not parts.fragment,
            child(field, "url"),
            f"a host's url takes no ?query or #fragment, got '{redact_url(url)}'",
        )
        problem = host_url_problem(url)
        reader.check(problem is None, child(field, "url"), f"{problem}, got '{redact_url(url)}'")
    slots = reader.bounded(
        raw.get("slots", 1), child(field, "slots"), "slots", setting=SLOTS_SETTING.get(kind, "")
    )
    host_models = None
    if raw.get("models") is not None:
        models_field = child(field, "models")
        listed = reader.sequence(raw["models"], models_field)
        host_models = tuple(reader.text(m, item(models_field, i)) for i, m in enumerate(listed))
        reader.unique(host_models, models_field)
    api_key_env = _api_key_env(reader, raw, field, kind, url)
    url = url.rstrip("/")
    if kind == "openai":  # the server's root: the backend adds /v1/... itself
        url = url.removesuffix("/v1")
    return HostSpec(name, url, slots, kind, host_models, api_key_env)


def _api_key_env(
    reader: FieldReader, raw: dict[str, Any], field: str, kind: str, url: str
) -> str | None:
    """The name of the variable holding the host's key (evaluation.backends._auth); its
    value is never shown: a key pasted in its place must not reach a terminal."""
    value = raw.get("api_key_env")
    if value is None:
        return None
    where = child(field, "api_key_env")
    reader.check(
        isinstance(value, str) and re.fullmatch(ENV_NAME_PATTERN, value) is not None,
        where,
        "expected the name of an environment variable (upper-case letters, digits and _, "
        "not starting with a digit), e.g. VLLM_KEY; the value is not shown, in case it is "
        "the key itself",
    )
    reader.check(kind != "simulated", where, "a simulated host takes no key")
    parts = urlsplit(url)
    reader.check(
        not (parts.username or parts.password),
        where,
        "a host sends either the user:password of its url or the key of api_key_env, not both",
    )
    return value


def _metrics(reader: FieldReader, raw: Any, samples_per_case: int) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, list) and not raw:
        raise reader.error("metrics", "must not be empty; leave it out for the suite's defaults")
    # Imported here: the metric registry pulls in scoring libraries a spec check never needs.
    from evaluation.metrics import metric_problem

    names = [
        _metric_name(reader, m, item("metrics", i))
        for i, m in enumerate(reader.sequence(raw, "metrics"))
    ]
    reader.unique(names, "metrics")

    for i, name in enumerate(names):
        problem = metric_problem(name, samples_per_case)
        reader.check(problem is None, item("metrics", i), problem or "")
    return tuple(names)


def _metric_name(reader: FieldReader, raw: Any, field: str) -> str:
    """A metric's name, or ``{name: {option: value}}`` turned into the name it is stored
    under (``{semantic_similarity: {embed_model: m}}`` is ``semantic_similarity@m``)."""
    if not isinstance(raw, dict):
        return reader.text(raw, field)
    from evaluation.errors import MetricError
    from evaluation.metrics import name_with_options

    reader.check(
        len(raw) == 1, field, f"expected one metric name with its options, got {len(raw)} keys"
    )
    ((name, options),) = raw.items()
    reader.text(name, field)
    try:
        return name_with_options(name, options)
    except MetricError as exc:
        raise reader.error(child(field, name), str(exc)) from None


def _samples(reader: FieldReader, raw: Any) -> int:
    return reader.bounded(raw, "samples_per_case", "samples_per_case")


def _limits(reader: FieldReader, raw: Any) -> Limits:
    if raw is None:
        return Limits()
    reader.mapping(raw, "limits", allowed=LIMIT_KEYS)
    values = {k: v for k, v in raw.items() if v is not None or k == "max_generations"}
    for key in ("max_configs", "max_generations", "max_attempts"):
        if values.get(key) is not None:
            reader.bounded(values[key], child("limits", key), key)
    for key in ("request_timeout_s", "first_request_timeout_s"):
        if key in values:
            values[key] = reader.bounded(values[key], child("limits", key), key, float)
    limits = Limits(**values)
    reader.check(
        limits.first_request_timeout_s >= limits.request_timeout_s,
        "limits.first_request_timeout_s",
        f"must be >= request_timeout_s ({limits.request_timeout_s}): the first request to a "
        "model also loads it",
    )
    return limits


def _optional_text(reader: FieldReader, raw: Any, field: str) -> str | None:
    return None if raw is None else reader.text(raw, field)
