"""Sweep specs: validation (every rule names its field), ranges, expansion, hashes, plans."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import os
import subprocess
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from evaluation.errors import SpecError
from evaluation.labels import legacy_label
from evaluation.spec import (
    DEFAULT_NUM_PREDICT,
    Config,
    GenerationParams,
    HostSpec,
    Limits,
    PromptTemplate,
    SweepSpec,
    baseline_config,
    expand,
    format_plan,
    load_spec,
    make_plan,
    parse_spec,
)
from evaluation.spec._grid import GRID_ORDER, inclusive_range

SWEEPS = Path(__file__).resolve().parents[2] / "benchmarks" / "sweeps"
KNOWN_METRICS = ("exact_match", "contains", "rougeL")


@pytest.fixture(autouse=True)
def metric_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in ``evaluation.metrics`` so the metric rule is tested on known names."""
    fake = types.ModuleType("evaluation.metrics")
    fake.metric_names = lambda: KNOWN_METRICS  # type: ignore[attr-defined]
    fake.metric_problem = lambda name, samples: (  # type: ignore[attr-defined]
        None
        if name in KNOWN_METRICS
        else f"unknown metric '{name}'; known metrics: {', '.join(KNOWN_METRICS)}"
    )
    monkeypatch.setitem(sys.modules, "evaluation.metrics", fake)


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    path = tmp_path / "suites" / "tiny.jsonl"
    path.parent.mkdir()
    path.write_text('{"id": "a", "input": "2+2?", "references": ["4"]}\n')
    return path


@pytest.fixture
def data(suite: Path) -> dict[str, Any]:
    """A minimal valid spec as read from YAML; tests mutate a copy."""
    return {"name": "t", "suite": str(suite), "models": ["m1", "m2"]}


def refused(data: dict[str, Any], field: str, *fragments: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    err = info.value
    assert err.field == field, str(err)
    assert f"field '{field}'" in str(err)
    for fragment in fragments:
        assert fragment in str(err)
    return err


def with_(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    out.update(changes)
    return out


# --- defaults --------------------------------------------------------------------------


def test_minimal_spec_gets_the_documented_defaults(data: dict[str, Any], suite: Path) -> None:
    spec = parse_spec(data)
    assert spec.name == "t"
    assert spec.suite == suite.resolve()
    assert spec.models == ("m1", "m2")
    assert spec.grid == {"num_predict": (DEFAULT_NUM_PREDICT,)}
    assert spec.templates == (PromptTemplate("default", "{input}"),)
    assert spec.hosts == (HostSpec("local", "http://127.0.0.1:11434", 1, "ollama"),)
    assert spec.metrics == ()
    assert spec.samples_per_case == 1
    assert spec.limits == Limits()
    assert spec.baseline is None
    configs = expand(spec)
    assert [c.params for c in configs] == [GenerationParams(num_predict=256)] * 2


def test_suite_is_relative_to_the_spec_file(tmp_path: Path, suite: Path) -> None:
    spec_file = tmp_path / "sweeps" / "s.yaml"
    spec_file.parent.mkdir()
    spec_file.write_text("name: s\nsuite: ../suites/tiny.jsonl\nmodels: [m]\n")
    spec = load_spec(spec_file)
    assert spec.suite == suite.resolve()
    assert spec.path == spec_file


def test_a_suite_under_home_may_be_written_with_a_tilde(
    tmp_path: Path, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newcomer's F13: `suite: ~/x/capitals.jsonl` was looked for under the spec's
    folder (`.../bad/~/x/capitals.jsonl`, not found)."""
    monkeypatch.setenv("HOME", str(suite.parent.parent))
    spec_file = tmp_path / "elsewhere" / "s.yaml"
    spec_file.parent.mkdir()
    spec_file.write_text(f"name: s\nsuite: ~/{suite.parent.name}/tiny.jsonl\nmodels: [m]\n")
    assert load_spec(spec_file).suite == suite.resolve()


def test_base_dir_resolves_a_relative_suite(data: dict[str, Any], suite: Path) -> None:
    spec = parse_spec(with_(data, suite="tiny.jsonl"), base_dir=suite.parent)
    assert spec.suite == suite.resolve()


# --- every validation rule names its field ---------------------------------------------

GRID_CASES = [
    ({"temperature": [0.0, -0.1]}, "grid.temperature[1]", "[0, 2]"),
    ({"top_p": [0.0]}, "grid.top_p[0]", "(0, 1]"),
    ({"top_p": [0.5, 1.01]}, "grid.top_p[1]", "(0, 1]"),
    ({"top_k": [0]}, "grid.top_k[0]", "[1, 1048576]"),
    ({"num_predict": [0]}, "grid.num_predict[0]", "0 generates nothing"),
    ({"num_predict": [-1]}, "grid.num_predict[0]", "unbounded generation"),
    ({"num_predict": [-5]}, "grid.num_predict[0]", "[1, 16777216]"),
    ({"num_ctx": [2048, 0]}, "grid.num_ctx[1]", "[1, 16777216]"),
    ({"seed": [-1]}, "grid.seed[0]", "[0, 4294967295]"),
    ({"temperature": []}, "grid.temperature", "must not be empty"),
    ({"temperature": [0.5, 0.5]}, "grid.temperature[1]", "duplicate", "grid.temperature[0]"),
    ({"temperature": [1, 1.0]}, "grid.temperature[1]", "duplicate"),
    ({"temperature": ["hot"]}, "grid.temperature[0]", "expected a number"),
    ({"temperature": ["1e-3"]}, "grid.temperature[0]", "write 0.001"),
    ({"temperature": [float("inf")]}, "grid.temperature[0]", "finite"),
    ({"top_k": [1.5]}, "grid.top_k[0]", "expected an integer"),
    ({"top_k": [True]}, "grid.top_k[0]", "expected an integer"),
    ({"temperature": {"min": 0.0, "max": 1.0, "step": 0}}, "grid.temperature.step", "> 0"),
    ({"temperature": {"min": 0.0, "max": 1.0, "step": -0.1}}, "grid.temperature.step", "> 0"),
    ({"num_ctx": {"min": 4096, "max": 1024, "step": 1024}}, "grid.num_ctx.min", "greater"),
    ({"temperature": {"min": -1.0, "max": 1.0, "step": 0.5}}, "grid.temperature.min", "[0, 2]"),
    ({"top_p": {"min": 0.5, "max": 1.5, "step": 0.5}}, "grid.top_p.max", "(0, 1]"),
    ({"num_ctx": {"min": 1024, "max": 4096, "step": 0.5}}, "grid.num_ctx.step", "integer"),
    ({"temperature": {"min": 0.0, "max": 1.0}}, "grid.temperature.step", "required"),
    ({"temperature": {"min": 0, "max": 1, "stp": 1}}, "grid.temperature.stp", "'step'"),
    ({"temprature": [0.5]}, "grid.temprature", "did you mean 'temperature'"),
    ({"min_p": [0.1]}, "grid.min_p", "allowed: num_ctx, temperature"),
]


@pytest.mark.parametrize("case", GRID_CASES, ids=[c[1] + ":" + c[2] for c in GRID_CASES])
def test_grid_rules(data: dict[str, Any], case: tuple[Any, ...]) -> None:
    grid, field, *fragments = case
    refused(with_(data, grid=grid), field, *fragments)


TEMPLATE_CASES = [
    ({"q": "Question: {question}\n{input}"}, "{question}", "allowed: {input}, {labels}"),
    ({"q": "{input} {}"}, "unknown variable {}", "{task_type}"),
    ({"q": "{input.upper}"}, "unknown variable {input.upper}", "allowed"),
    ({"q": "{input:{width}}"}, "{input:{width}} has a format spec or conversion"),
    ({"q": "{input"}, "not a valid template", "{{"),
    ({"q": "Say hello."}, "never uses {input}", "same prompt"),
]


@pytest.mark.parametrize("case", TEMPLATE_CASES, ids=[c[1] for c in TEMPLATE_CASES])
def test_template_rules_name_the_template_and_variable(
    data: dict[str, Any], case: tuple[Any, ...]
) -> None:
    templates, *fragments = case
    refused(with_(data, templates=templates), "templates.q", "template 'q'", *fragments)


def test_template_rules_accept_every_documented_variable(data: dict[str, Any]) -> None:
    text = "Task: {task_type}. Labels: {labels}. {{literal}}\n{input}"
    spec = parse_spec(with_(data, templates={"all": text}))
    assert spec.templates == (PromptTemplate("all", text),)


def test_template_collection_rules(data: dict[str, Any]) -> None:
    refused(with_(data, templates={}), "templates", "must not be empty")
    refused(with_(data, templates={"a": "{input}", "b": "{input}"}), "templates.b", "'a'")
    refused(with_(data, templates={"a b": "{input}"}), "templates.a b", "characters")
    refused(with_(data, templates={"a": 3}), "templates.a", "expected text")


HOST = {"name": "h", "url": "http://gpu:11434", "slots": 2}
HOST_CASES = [
    ([HOST, {**HOST, "url": "http://other:11434"}], "hosts[1].name", "duplicate host name"),
    ([HOST, {**HOST, "name": "h2"}], "hosts[1].url", "duplicate host url"),
    ([{**HOST, "url": "ftp://gpu"}], "hosts[0].url", "http:// or https://"),
    ([{**HOST, "url": "gpu:11434"}], "hosts[0].url", "http:// or https://"),
    ([{**HOST, "url": "simulated://x"}], "hosts[0].url", "need kind: simulated"),
    ([{**HOST, "kind": "simulated"}], "hosts[0].url", "simulated://"),
    ([{**HOST, "slots": 0}], "hosts[0].slots", ">= 1"),
    ([{**HOST, "slots": "4"}], "hosts[0].slots", "expected an integer"),
    ([{**HOST, "kind": "vllm"}], "hosts[0].kind", "ollama, openai, simulated"),
    ([{"name": "h", "url": "http://gpu:1", "slot": 2}], "hosts[0].slot", "did you mean 'slots'"),
    ([{"name": "h"}], "hosts[0].url", "required"),
    ([{**HOST, "name": "gpu a"}], "hosts[0].name", "characters"),
    ([HOST, {"name": "s", "url": "simulated://x", "kind": "simulated"}], "hosts[1].kind", "real"),
    ([{**HOST, "models": ["m1"]}], "models[1]", "no host serves model 'm2'"),
    ([{**HOST, "models": []}], "hosts[0].models", "must not be empty"),
    ([], "hosts", "must not be empty"),
    ({"name": "h"}, "hosts", "expected a list"),
    ([{**HOST, "url": "http://127.0.0.1:11434:5"}], "hosts[0].url", "port 1-65535"),
    ([{**HOST, "url": "http://ana:hunter2@127.0.0.1:99999"}], "hosts[0].url", "ana:***@"),
    ([{**HOST, "url": "http://gpu:1/?token=hunter2"}], "hosts[0].url", "no ?query", "***"),
]


@pytest.mark.parametrize("case", HOST_CASES, ids=[c[1] + ":" + c[2] for c in HOST_CASES])
def test_host_rules(data: dict[str, Any], case: tuple[Any, ...]) -> None:
    hosts, field, *fragments = case
    refused(with_(data, hosts=hosts), field, *fragments)


def test_hosts_parse(data: dict[str, Any]) -> None:
    hosts = [
        {"name": "a", "url": "https://gpu-a:11434/", "slots": 4},
        {"name": "b", "url": "http://gpu-b:8000/v1/", "kind": "openai", "models": ["m2"]},
    ]
    spec = parse_spec(with_(data, hosts=hosts))
    assert spec.hosts == (
        HostSpec("a", "https://gpu-a:11434", 4, "ollama", None),
        HostSpec("b", "http://gpu-b:8000", 1, "openai", ("m2",)),
    )


TOP_LEVEL_CASES = [
    ({"grids": {}}, "grids", "did you mean 'grid'"),
    # a grid parameter at the top level is pointed under grid:, not to 'templates'
    ({"temprature": [0.5]}, "temprature", "did you mean 'temperature' under 'grid'?"),
    ({"top_p": [0.9]}, "top_p", "did you mean 'top_p' under 'grid'?"),
    ({"name": "Demo_QA"}, "name", "[a-z0-9-]+"),
    ({"name": None}, "name", "required"),
    ({"name": 7}, "name", "expected text"),
    ({"name": "a" * 101}, "name", "at most 100 characters"),
    ({"suite": "missing.jsonl"}, "suite", "not found"),
    ({"models": []}, "models", "must not be empty"),
    ({"models": "m1"}, "models", "list of model names"),
    ({"models": ["m1", "m1"]}, "models[1]", "duplicate"),
    ({"models": ["m1", "bad name"]}, "models[1]", "characters"),
    ({"samples_per_case": 0}, "samples_per_case", ">= 1"),
    ({"samples_per_case": "2"}, "samples_per_case", "expected an integer"),
    ({"metrics": ["exact_match", "bleurt"]}, "metrics[1]", "exact_match, contains, rougeL"),
    ({"metrics": []}, "metrics", "suite's defaults"),
    ({"metrics": ["contains", "contains"]}, "metrics[1]", "duplicate"),
    ({"limits": {"max_config": 5}}, "limits.max_config", "did you mean 'max_configs'"),
    ({"limits": {"max_configs": 0}}, "limits.max_configs", ">= 1"),
    ({"limits": {"max_generations": 0}}, "limits.max_generations", ">= 1"),
    ({"limits": {"max_attempts": 1.5}}, "limits.max_attempts", "integer"),
    ({"limits": {"request_timeout_s": 0}}, "limits.request_timeout_s", "> 0"),
    ({"limits": {"first_request_timeout_s": 60}}, "limits.first_request_timeout_s", "loads"),
    ({"baseline": "nope"}, "baseline", "neither the hash nor the label"),
]


@pytest.mark.parametrize("case", TOP_LEVEL_CASES, ids=[c[1] + ":" + c[2] for c in TOP_LEVEL_CASES])
def test_top_level_rules(data: dict[str, Any], case: tuple[Any, ...]) -> None:
    changes, field, *fragments = case
    refused(with_(data, **changes), field, *fragments)


def test_a_spec_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(["name", "t"])
    assert info.value.field == "<document>"


def test_known_metrics_are_accepted(data: dict[str, Any]) -> None:
    assert parse_spec(with_(data, metrics=["rougeL", "contains"])).metrics == (
        "rougeL",
        "contains",
    )


def test_baseline_by_hash_or_label(data: dict[str, Any]) -> None:
    spec = parse_spec(with_(data, grid={"temperature": [0.0, 0.5]}))
    target = expand(spec)[1]
    assert target.label == "m1 t=0.5"
    for ref in (target.hash, target.label):
        assert parse_spec(with_(data, grid={"temperature": [0.0, 0.5]}, baseline=ref)).baseline
    ambiguous = with_(data, grid={"num_predict": [64, 128]}, baseline="m1")
    refused(ambiguous, "baseline", "names 2 configs")


def test_labels_tell_configs_apart_by_num_predict(data: dict[str, Any]) -> None:
    """Three newcomers took two configs differing only in num_predict for one: the label
    left it out. It shows now where it is not the default (always sent, so a label
    with it everywhere would only repeat the default)."""
    configs = expand(parse_spec(with_(data, grid={"num_predict": [16, DEFAULT_NUM_PREDICT]})))
    assert [c.label for c in configs] == ["m1 n=16", "m1", "m2 n=16", "m2"]
    assert [legacy_label(c.label) for c in configs] == ["m1", "m1", "m2", "m2"]


def test_baseline_by_the_label_written_before_num_predict_was_shown(data: dict[str, Any]) -> None:
    """A spec written when labels left num_predict out still names its baseline, where
    that old label names one config of the sweep."""
    grid = {"temperature": [0.0, 0.5], "num_predict": [64]}
    named = baseline_config(parse_spec(with_(data, grid=grid, baseline="m1 t=0.5")))
    assert named is not None and named.label == "m1 t=0.5 n=64"


def test_baseline_by_any_name_the_outputs_give_and_ambiguity_lists_the_configs(
    data: dict[str, Any],
) -> None:
    """A newcomer found the spec's baseline taking fewer names than compare (no hash
    prefix, no label as show prints it) and an ambiguous label refused without the
    configs it named."""
    grid = {"temperature": [0.0, 0.5], "num_predict": [16, 64]}
    configs = expand(parse_spec(with_(data, grid=grid)))
    target = configs[1]
    for ref in (target.hash[:6], target.label, f"m1 {target.label.split(' ', 1)[1]}"):
        named = baseline_config(parse_spec(with_(data, grid=grid, baseline=ref)))
        assert named == target, ref
    twins = [c for c in configs if c.label.startswith("m1 t=0 ")]
    refused(
        with_(data, grid=grid, baseline="m1 t=0"),
        "baseline",
        f"names 2 configs of this sweep: '{twins[0].label}' ({twins[0].hash}); "
        f"'{twins[1].label}' ({twins[1].hash}); give one's hash",
    )


# --- files -----------------------------------------------------------------------------


def test_load_spec_errors_carry_the_path(tmp_path: Path, suite: Path) -> None:
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text(f"name: t\nsuite: {suite}\nmodels: [m]\ngrid: {{top_p: [2.0]}}\n")
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    assert info.value.path == str(spec_file)
    assert str(info.value).startswith(f"{spec_file}:4:16: field 'grid.top_p[0]'")  # line:column


@pytest.mark.parametrize(
    ("block", "grid", "where", "combined"),
    [  # the newcomer's N6: each was placed at 1:1 (or at `grid:`), as 'grid.chunk_overlap'
        (
            "  chunk_size: 100\n  chunk_overlap: 100\n",
            "",
            "7:18: field 'pipeline.chunk_overlap'",
            "the spec combines chunk_size=100, chunk_overlap=100",
        ),
        (
            "  chunk_size: 100\n",
            "",
            "6:15: field 'pipeline.chunk_size'",
            "the spec combines chunk_size=100, chunk_overlap=200 (the pipeline's default)",
        ),
        (
            "  chunk_overlap: 150\n",
            "grid:\n  chunk_size: [100, 300]\n",
            "6:18: field 'pipeline.chunk_overlap'",
            "the spec combines chunk_size=100, chunk_overlap=150",
        ),
        (
            "",
            "grid:\n  chunk_size: [100, 300]\n  chunk_overlap: [150]\n",
            "8:18: field 'grid.chunk_overlap'",
            "the grid combines chunk_size=100, chunk_overlap=150",
        ),
    ],
)
def test_a_rule_between_pipeline_parameters_points_where_the_file_sets_them(
    tmp_path: Path, suite: Path, block: str, grid: str, where: str, combined: str
) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        f"name: t\nsuite: {suite}\nmodels: [m]\npipeline:\n  name: map_reduce\n{block}{grid}"
    )
    with pytest.raises(SpecError) as info:
        expand(load_spec(spec_file))
    assert str(info.value) == (
        f"{spec_file}:{where}: chunk_overlap must be less than chunk_size; {combined}"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: t\nmodels: [m\n", "not valid YAML"),
        ("name: t\nname: u\n", "duplicate key 'name'"),
        ("- name\n", "expected a mapping"),
        ("", "the file is empty (or only comments): expected a mapping"),  # was "got null"
        ("# a comment\n", "the file is empty (or only comments)"),
    ],
)
def test_load_spec_refuses_bad_documents(tmp_path: Path, text: str, fragment: str) -> None:
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    assert info.value.field == "<document>"
    assert fragment in str(info.value)
    assert "<document>" not in str(info.value) and "\n" not in str(info.value)


def test_load_spec_allows_yaml_merge_keys(tmp_path: Path, suite: Path) -> None:
    spec_file = tmp_path / "merge.yaml"
    spec_file.write_text(
        f"name: t\nsuite: {suite}\nmodels: [m]\nhosts:\n"
        "  - &gpu {name: a, url: 'http://a:11434', slots: 2}\n"
        "  - {<<: *gpu, name: b, url: 'http://b:11434'}\n"
    )
    assert [(h.name, h.slots) for h in load_spec(spec_file).hosts] == [("a", 2), ("b", 2)]


def test_load_spec_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec file"):
        load_spec(tmp_path / "absent.yaml")


# --- ranges ----------------------------------------------------------------------------


def test_float_range_has_no_accumulated_error() -> None:
    values = inclusive_range(0.0, 1.0, 0.1)
    assert values == [i / 10 for i in range(11)]  # 0.3 is 0.3, not 0.30000000000000004
    naive, x = [], 0.0
    while x <= 1.0:
        naive.append(x)
        x += 0.1
    assert naive != values  # what the decimal arithmetic protects against


def test_range_includes_max_only_when_it_lands_on_the_grid() -> None:
    assert inclusive_range(0.0, 1.0, 0.25) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert inclusive_range(0.0, 1.0, 0.3) == [0.0, 0.3, 0.6, 0.9]
    assert inclusive_range(1024, 4096, 1024, int) == [1024, 2048, 3072, 4096]
    assert inclusive_range(0.7, 0.7, 0.1) == [0.7]


@given(
    low=st.integers(0, 500),
    width=st.integers(0, 500),
    step=st.integers(1, 100),
)
def test_range_matches_exact_decimal_arithmetic(low: int, width: int, step: int) -> None:
    lo, hi, dx = low / 100, (low + width) / 100, step / 100
    values = inclusive_range(lo, hi, dx)
    expected = [float(Decimal(low + i * step) / 100) for i in range(width // step + 1)]
    assert values == expected
    assert values[-1] <= hi < values[-1] + dx


def test_range_in_a_spec_hashes_like_the_same_list(data: dict[str, Any]) -> None:
    ranged = parse_spec(with_(data, grid={"temperature": {"min": 0, "max": 1, "step": 0.25}}))
    listed = parse_spec(with_(data, grid={"temperature": [0.0, 0.25, 0.5, 0.75, 1.0]}))
    assert ranged.grid["temperature"] == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert all(isinstance(v, float) for v in ranged.grid["temperature"])
    assert [c.hash for c in expand(ranged)] == [c.hash for c in expand(listed)]


def test_minus_zero_is_read_as_zero(data: dict[str, Any]) -> None:
    minus = expand(parse_spec(with_(data, grid={"temperature": [-0.0]})))
    plus = expand(parse_spec(with_(data, grid={"temperature": [0.0]})))
    assert [c.hash for c in minus] == [c.hash for c in plus]
    assert [c.label for c in minus] == [c.label for c in plus]
    assert "t=-0" not in minus[0].label


def test_a_scalar_grid_value_is_one_value(data: dict[str, Any]) -> None:
    assert parse_spec(with_(data, grid={"temperature": 1, "seed": 3})).grid["temperature"] == (1.0,)


def test_a_huge_range_is_refused_before_it_is_built(data: dict[str, Any]) -> None:
    grid = {"num_ctx": {"min": 1, "max": 2**24, "step": 1}}
    refused(with_(data, grid=grid), "grid.num_ctx.step", "more than limits.max_configs (")


@pytest.mark.parametrize("step", [1.0e-300, 5.0e-324])
def test_a_step_too_small_for_decimal_arithmetic_is_refused_naming_it(
    data: dict[str, Any], step: float
) -> None:
    grid = {"temperature": {"min": 0.0, "max": 2.0, "step": step}}
    refused(with_(data, grid=grid), "grid.temperature.step", f"step {step!r} gives more than")


# --- expansion -------------------------------------------------------------------------


def test_grid_order_covers_every_generation_parameter() -> None:
    assert set(GRID_ORDER) == {f.name for f in dataclasses.fields(GenerationParams)}
    assert GRID_ORDER[0] == "num_ctx"


def test_expansion_count_and_order(data: dict[str, Any]) -> None:
    grid = {
        "temperature": [0.7, 0.0],
        "num_ctx": [4096, 2048],
        "seed": [1, 2],
        "top_k": [40],
    }
    templates = {"plain": "{input}", "terse": "Briefly: {input}"}
    spec = parse_spec(with_(data, grid=grid, templates=templates, samples_per_case=3))
    configs = expand(spec)
    assert len(configs) == 2 * 2 * 2 * 2 * 2
    expected = [
        (model, ctx, t, seed, tpl)
        for model in ("m1", "m2")
        for ctx in (4096, 2048)
        for t in (0.7, 0.0)
        for seed in (1, 2)
        for tpl in ("plain", "terse")
    ]
    got = [
        (c.model, c.params.num_ctx, c.params.temperature, c.params.seed, c.template.name)
        for c in configs
    ]
    assert got == expected
    # model then num_ctx: each (model, num_ctx) pair is one contiguous block (one load each).
    blocks = [key for key, _ in itertools.groupby((c.model, c.params.num_ctx) for c in configs)]
    assert len(blocks) == len(set(blocks)) == 4
    assert all(c.params.top_k == 40 and c.params.top_p is None for c in configs)
    assert all(c.params.num_predict == DEFAULT_NUM_PREDICT for c in configs)
    assert [c.hash for c in expand(spec)] == [c.hash for c in configs]
    assert len({c.hash for c in configs}) == len(configs)


def test_expansion_past_max_configs_is_refused_and_can_be_raised(data: dict[str, Any]) -> None:
    grid = {"temperature": {"min": 0.0, "max": 1.0, "step": 0.1}, "seed": list(range(30))}
    err = refused(with_(data, grid=grid), "limits.max_configs", "660 configs", "= 500")
    assert "2 models × 11 temperature × 30 seed" in str(err)
    assert "limits: {max_configs: 660}" in str(err)
    spec = parse_spec(with_(data, grid=grid, limits={"max_configs": 660}))
    assert len(expand(spec)) == 660


def test_expand_refuses_a_hand_built_spec_past_its_limit(suite: Path) -> None:
    spec = SweepSpec(
        name="x",
        suite=suite,
        models=("m",),
        grid={"seed": tuple(range(5))},
        templates=(PromptTemplate("default"),),
        hosts=(),
        limits=Limits(max_configs=4),
    )
    with pytest.raises(SpecError, match="5 configs"):
        expand(spec)
    assert len(expand(dataclasses.replace(spec, limits=Limits(max_configs=5)))) == 5


# --- config hash -----------------------------------------------------------------------


def documented_hash(model: str, params: dict[str, Any], name: str, text: str) -> str:
    """The hash as the spec module's docstring defines it."""
    payload = {"model": model, "params": params, "template": {"name": name, "text": text}}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_config_hash_is_the_documented_canonical_json(data: dict[str, Any]) -> None:
    spec = parse_spec(with_(data, grid={"temperature": [1], "num_ctx": [2048]}))
    config = expand(spec)[0]
    params = {
        "temperature": 1.0,
        "top_p": None,
        "top_k": None,
        "num_predict": 256,
        "num_ctx": 2048,
        "seed": None,
    }
    assert config.hash == documented_hash("m1", params, "default", "{input}")
    assert config.hash != documented_hash("m1", {**params, "temperature": 1}, "default", "{input}")


def test_config_hash_is_the_same_in_another_process() -> None:
    config = Config(
        "llama3.2:3b",
        GenerationParams(temperature=0.7, top_p=0.9, num_ctx=4096, seed=7),
        PromptTemplate("concise", "Answer briefly.\n\n{input}"),
    )
    code = (
        "from evaluation.spec import Config, GenerationParams, PromptTemplate\n"
        "print(Config('llama3.2:3b', GenerationParams(temperature=0.7, top_p=0.9, "
        "num_ctx=4096, seed=7), PromptTemplate('concise', 'Answer briefly.\\n\\n{input}')).hash)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == config.hash
    params = config.params.hash_payload()  # parameters added later enter only when set
    assert config.hash == documented_hash(config.model, params, "concise", config.template.text)


# --- plans -----------------------------------------------------------------------------


def test_make_plan_counts(data: dict[str, Any]) -> None:
    spec = parse_spec(with_(data, grid={"temperature": [0.0, 0.7]}, samples_per_case=3))
    plan = make_plan(spec, n_cases=25)
    assert len(plan.configs) == 4
    assert (plan.n_cases, plan.samples_per_case) == (25, 3)
    assert plan.generations == 4 * 25 * 3
    assert plan.configs == tuple(expand(spec))
    with pytest.raises(ValueError, match="n_cases"):
        make_plan(spec, -1)


def test_make_plan_refuses_past_max_generations_and_can_be_raised(data: dict[str, Any]) -> None:
    spec = parse_spec(with_(data, samples_per_case=5, limits={"max_generations": 99}))
    with pytest.raises(SpecError) as info:
        make_plan(spec, n_cases=10)
    assert info.value.field == "limits.max_generations"
    assert "100 generations" in str(info.value)
    assert "max_generations: 100" in str(info.value)
    raised = parse_spec(with_(data, samples_per_case=5, limits={"max_generations": 100}))
    assert make_plan(raised, n_cases=10).generations == 100


def test_format_plan_lists_configs_and_totals(data: dict[str, Any]) -> None:
    hosts = [
        {"name": "gpu-a", "url": "http://gpu-a:11434", "slots": 4},
        {"name": "gpu-b", "url": "http://gpu-b:11434", "slots": 2, "models": ["m2"]},
    ]
    grid = {"temperature": [0.0, 0.7], "num_ctx": [4096]}
    spec = parse_spec(with_(data, grid=grid, hosts=hosts, samples_per_case=2))
    plan = make_plan(spec, n_cases=7)
    text = format_plan(plan)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("#"))
    assert header.split() == ["#", "hash", "model", "num_ctx", "temperature", "num_predict",
                              "template"]  # fmt: skip
    for i, config in enumerate(plan.configs, start=1):
        row = next(line for line in lines if config.hash in line).split()
        assert row == [str(i), config.hash, config.model, "4096",
                       f"{config.params.temperature:g}", "256", "default"]  # fmt: skip
    assert "generations       56  (4 configs × 7 cases × 2 samples)" in text
    assert "configs           4  (2 models × 2 temperature)" in text
    assert "gpu-a  http://gpu-a:11434  ollama  4 slots  serves every model" in text
    assert "gpu-b  http://gpu-b:11434  ollama  2 slots  serves m2" in text
    assert "6 in all" in text
    assert "SIMULATED" not in text


def test_format_plan_marks_simulated_sweeps(data: dict[str, Any]) -> None:
    hosts = [{"name": "sim", "url": "simulated://local", "kind": "simulated", "slots": 4}]
    text = format_plan(make_plan(parse_spec(with_(data, hosts=hosts)), n_cases=1))
    assert "SIMULATED" in text
    assert "generations       2  (2 configs × 1 case × 1 sample)" in text  # not "1 cases"


def test_format_plan_counts_what_a_limited_run_runs_and_names_the_default_metrics(
    data: dict[str, Any],
) -> None:
    """The newcomer's `plan real.yaml --limit 10` said "generations 72 (2 configs × 36
    cases × 1 sample)" above "level full, first 10: 10 cases, 20 generations", "metrics
    the suite's defaults" without naming them, and "temperature 0.0" where every
    leaderboard says t=0."""
    from evaluation.spec import PlanSubset

    spec = parse_spec(with_(data, grid={"temperature": [0.0, 0.7]}))
    subset = PlanSubset("level full, first 10", "without --limit", 10, 40)
    text = format_plan(
        make_plan(spec, n_cases=36), default_metrics=("exact_match", "contains"), subset=subset
    )
    assert "cases             10 of 36  (level full, first 10)" in text
    assert "generations       40  (4 configs × 10 cases × 1 sample; without --limit: 144)" in text
    assert "metrics           exact_match, contains (the suite's defaults)" in text
    temperatures = {line.split()[3] for line in text.splitlines() if line[:1].isdigit()}
    assert temperatures == {"0", "0.7"}


def test_format_plan_counts_one_config_and_one_case_in_the_singular(
    data: dict[str, Any],
) -> None:
    one = with_(data, models=["m1"])
    plan = make_plan(parse_spec(one), n_cases=1)
    assert len(plan.configs) == 1
    assert "generations       1  (1 config × 1 case × 1 sample)" in format_plan(plan)


def test_format_plan_says_a_race_runs_at_most_the_grid_or_its_budget(data: dict[str, Any]) -> None:
    hosts = [{"name": "sim", "url": "simulated://local", "kind": "simulated", "slots": 4}]
    race = with_(data, hosts=hosts, strategy="race", budget=60, max_latency_s=2.5)
    lines = format_plan(make_plan(parse_spec(race), n_cases=40)).splitlines()
    generations = lines.index("generations       80  (2 configs × 40 cases × 1 sample)")
    assert lines[generations + 1] == (
        "strategy          race (delta 0.01, p95 latency ≤ 2.5 s): configs that have "
        "significantly lost stop early; generations at most 60 (its budget) of the 80 above"
    )
    unbounded = with_(data, hosts=hosts, strategy="race", delta=0.05)
    text = format_plan(make_plan(parse_spec(unbounded), n_cases=40))
    assert (
        "strategy          race (delta 0.05): configs that have significantly lost stop "
        "early; generations at most the 80 above" in text
    )
    assert "strategy" not in format_plan(make_plan(parse_spec(with_(data, hosts=hosts)), 40))


# --- bundled sweeps --------------------------------------------------------------------


def bundled(name: str, tmp_suite: Path) -> SweepSpec:
    """Parse a bundled sweep; its suite is swapped for a temp one only if not written yet."""
    path = SWEEPS / name
    raw = yaml.safe_load(path.read_text())
    if not (path.parent / raw["suite"]).is_file():
        raw["suite"] = str(tmp_suite)
    return parse_spec(raw, path=path)


def test_demo_simulated_sweep(suite: Path) -> None:
    spec = bundled("demo-simulated.yaml", suite)
    assert spec.models == ("sim-small:1b", "sim-medium:3b", "sim-large:8b")
    assert all(h.kind == "simulated" and h.url.startswith("simulated://") for h in spec.hosts)
    assert spec.grid["temperature"] == (0.0, 0.7)
    assert len(spec.templates) == 2
    assert spec.samples_per_case == 1
    assert len(expand(spec)) == 12


def test_ollama_example_sweep(suite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "evaluation.metrics")  # the real registry, if present
    try:
        import evaluation.metrics  # noqa: F401
    except ImportError:
        pytest.skip("evaluation.metrics is not written yet")
    spec = bundled("ollama-example.yaml", suite)
    assert spec.models == ("llama3.2:3b", "qwen2.5:7b")
    assert spec.grid["num_ctx"] == (2048, 4096, 8192)
    assert {h.kind for h in spec.hosts} == {"ollama"} and len(spec.hosts) == 2
    configs = expand(spec)
    assert len(configs) == 36
    assert spec.baseline == configs[0].label


# --- issue 11: refused early, said once ------------------------------------------------


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ("127.0.0.1:12018", "http://127.0.0.1:12018"),
        ("http://127.0.0.1:12018", "http://127.0.0.1:12018"),
        ("gpu-a", "http://gpu-a:11434"),
        ("http://gpu-a", "http://gpu-a:80"),  # Ollama: a scheme without port means 80/443
        ("https://gpu-a/", "https://gpu-a:443"),
        ("'gpu-a:1234' ", "http://gpu-a:1234"),
        ("[::1]:5000", "http://[::1]:5000"),
        (":12018", "http://127.0.0.1:12018"),
    ],
)
def test_ollama_host_is_the_default_host(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch, env: str, url: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", env)
    assert parse_spec(data).hosts == (HostSpec("local", url, 1, "ollama"),)


def test_ollama_host_with_a_bad_port_is_refused_naming_the_variable(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluation.errors import EvalError

    monkeypatch.setenv("OLLAMA_HOST", "gpu-a:port")
    with pytest.raises(EvalError, match="OLLAMA_HOST='gpu-a:port': invalid port"):
        parse_spec(data)


@pytest.mark.parametrize("text", ["{input:>50000000}", "{input!r}", "Q: {input!s:10}"])
def test_templates_refuse_format_specs_and_conversions(data: dict[str, Any], text: str) -> None:
    refused(
        with_(data, templates={"wide": text}),
        "templates.wide",
        "format spec or conversion",
        "{input}",
    )


def test_a_spec_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path, suite: Path) -> None:
    spec_file = tmp_path / "latin1.yaml"
    spec_file.write_bytes(f"name: t\nsuite: {suite}\nmodels: [caf\xe9]\n".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    assert str(info.value).startswith(f"{spec_file}: line 3: not UTF-8 text")


def test_a_spec_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a folder; expected a sweep spec file"):
        load_spec(tmp_path)


def test_a_suite_that_is_a_folder_is_not_called_missing(data: dict[str, Any], suite: Path) -> None:
    err = refused(with_(data, suite=str(suite.parent)), "suite", "is a folder")
    assert "not found" not in str(err)


def test_host_url_wording_uses_the_right_article(data: dict[str, Any]) -> None:
    hosts = [{"name": "a", "url": "gpu-a:11434"}]
    refused(with_(data, hosts=hosts), "hosts[0].url", "an ollama host's url must start")


def test_generation_limit_message_says_one_sample(data: dict[str, Any]) -> None:
    spec = parse_spec(with_(data, limits={"max_generations": 1}))
    with pytest.raises(SpecError) as info:
        make_plan(spec, 2)
    assert "× 1 sample)" in str(info.value) and "1 samples" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "where", "field"),
    [
        ("root:$6$salt$HASH:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n", (1, 1), None),
        ("name: t\nmodels: [a]\n'a b': 1\n", (3, 1), None),
        ("name: t\nsuite: s.jsonl\nmodels: [a]\ngrid: {'te*mp': [1]}\n", (4, 8), "grid"),
        ("name: t\n" + "9" * 400 + ": 1\n", (2, 1), None),
    ],
)
def test_a_key_that_is_no_word_is_placed_not_quoted(
    tmp_path: Path, text: str, where: tuple[int, int], field: str | None
) -> None:
    """S9: a spec path naming another readable file (a shadow file) echoed its first line
    as an unknown key, `field 'root:$6$salt$HASH:...': unknown key`."""
    path = tmp_path / "other.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as refused:
        load_spec(path)
    message = str(refused.value)
    assert (refused.value.line, refused.value.column) == where
    assert "not quoted here (allowed: " in message
    for secret in ("HASH", "20228", "a b", "te*mp", "999"):
        assert secret not in message
    assert refused.value.field == (field or "<document>")


def test_an_unknown_key_that_is_a_word_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nmodles: [a]\n")
    with pytest.raises(SpecError, match=r":2:1: field 'modles': unknown key; did you mean"):
        load_spec(path)
