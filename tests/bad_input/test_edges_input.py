"""Issue 43 §2: nothing written when refused, nothing hangs. Each kind of input the
issue found accepted, hanging, written or failing with a traceback, as a case of the
corpus (exit 2, one line, no row and no file written: tests/bad_input/test_corpus.py's
check), and the mechanisms behind them: the one safe YAML loader, bounded counts and
numbers, the judge that checks its host before it stores pairs, scorers whose values
must fit their kind, and ``recommend()``'s arguments. Listed in docs/bad-input.md."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import tests.bad_input.test_corpus as corpus
from evaluation import safe_yaml
from evaluation.errors import EvalError
from evaluation.input_files import MAX_DATA_BYTES, MAX_WRITTEN_BYTES
from evaluation.metrics import get_metric
from evaluation.pipelines._retrieval import load_corpus
from evaluation.settings import ollama_url, port_number
from evaluation.storage.db import make_engine, session_scope
from selection import recommend
from selection._request import BadRequest
from tests.bad_input.test_corpus import (
    Bad,
    World,
    cli,
    rag_corpus,
    row_counts,
    run_cli,
    spec,
    spec_text,
    suite,
)
from tests.conftest import REPO
from tests.support.results_db import add_experiment, make_config, make_suite
from tests.support.standin_ollama import StandInConfig, running_standin
from tests.support.user_scorers import scorer_module

F = "field '{}'"
# the corpus' fixtures: a folder with a valid spec and suite, a database holding `demo`
demo_database = corpus.demo_database
not_json_host = corpus.not_json_host
web_server = corpus.web_server
keyed_host = corpus.keyed_host
world = corpus.world


def _laughs(levels: int, alias: str = "a") -> str:
    """A YAML "billion laughs": ``levels`` anchors, each a list of ten of the one before
    (10**levels strings), as a key ``lol`` of a mapping."""
    lines = [f"  {alias}0: &{alias}0 [" + ", ".join(['"lol"'] * 10) + "]"]
    for i in range(1, levels):
        lines.append(f"  {alias}{i}: &{alias}{i} [" + ", ".join([f"*{alias}{i - 1}"] * 10) + "]")
    return "lol:\n" + "\n".join(lines) + "\n"


BOMB = _laughs(9)  # 10**9 strings in a few hundred bytes


def rubric(text: str | bytes) -> Any:
    def argv(w: World) -> list[str]:
        path = w.root / "r.rubric.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["judge", "demo", "--model", "j:1b", "--url", "127.0.0.1:9", "--rubric", str(path)]

    return argv


def _sparse(path: Path, size: int) -> Path:
    """``path`` a file of ``size`` bytes, none written (refused by its size, none read)."""
    with path.open("wb") as file:
        file.truncate(size)
    return path


def _big_rubric(w: World) -> list[str]:
    path = _sparse(w.root / "r.rubric.yaml", MAX_WRITTEN_BYTES + 1)
    return ["judge", "demo", "--model", "j:1b", "--url", "127.0.0.1:9", "--rubric", str(path)]


def _big_documents(w: World) -> list[str]:
    spec = w.broken_suite(sidecar=corpus.QA_SIDECAR | {"documents": "d.jsonl"})
    _sparse(w.root / "broken" / "d.jsonl", MAX_DATA_BYTES + 1)
    return ["run", str(spec)]


def _big_corpus(w: World) -> list[str]:
    _sparse(w.root / "corpus.jsonl", MAX_DATA_BYTES + 1)
    pipeline = {"name": "rag", "corpus": "corpus.jsonl", "embed_model": "sim-small:1b"}
    return ["run", str(w.write_spec({"pipeline": pipeline}))]


def pipeline_module(source: str, **block: Any) -> Any:
    """A user pipeline ``edge_<n>:analyse`` written from ``source``, fixed with ``block``."""

    def argv(w: World) -> list[str]:
        name = f"edge_pipeline_{abs(hash(source)) % 10**8}"
        (w.root / f"{name}.py").write_text(source)
        return ["run", str(w.write_spec({"pipeline": {"name": f"{name}:analyse", **block}}))]

    return argv


def empty_database(*argv: str, option: bool = False) -> Any:
    """``argv`` (with ``--database`` an empty file when ``option``), the file written first:
    `files_under` then checks it stays 0 bytes and untouched."""

    def build(w: World) -> list[str]:
        path = w.root / "empty.sqlite"
        path.write_bytes(b"")
        return (["--database", f"sqlite:///{path}"] if option else []) + list(argv)

    return build


FLOAT_PIPELINE = (
    "from evaluation.pipelines import pipeline\n\n"
    "@pipeline(parameters={'weight': float})\n"
    "async def analyse(case, params, llm):\n    return ''\n"
)

CASES = [
    # --- YAML that would hang or overflow: refused while it is read, in one line
    Bad("yaml-billion-laughs", "spec", spec_text("name: t\nsuite: SUITE\nmodels: [a]\n" + BOMB),
        ("{spec}:9:", "not valid YAML", "expands to more than 100000 values")),
    Bad("yaml-billion-laughs-refused-spec", "spec",
        spec_text("name: T T\nsuite: SUITE\nmodels: [a]\n" + BOMB),
        ("{spec}", "expands to more than 100000 values")),
    Bad("yaml-recursive-alias", "spec", spec_text("name: t\nsuite: SUITE\nmodels: &m [*m]\n"),
        ("{spec}:3:13: not valid YAML", "alias *m is inside the value &m it names")),
    Bad("yaml-recursive-alias-mapping", "spec",
        spec_text("name: t\nsuite: SUITE\nmodels: [a]\ngrid: &g {temperature: *g}\n"),
        ("{spec}:4:", "alias *g is inside the value &g it names")),
    Bad("yaml-nesting-deep", "spec",
        spec_text("name: t\nsuite: SUITE\nmodels: " + "[" * 200 + "]" * 200 + "\n"),
        ("{spec}", "nested deeper than 64 levels")),
    Bad("yaml-sidecar-billion-laughs", "suite",
        suite(sidecar="name: tiny\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
              + BOMB),
        ("{sidecar}", "invalid YAML", "expands to more than 100000 values")),
    Bad("yaml-sidecar-duplicate-key", "suite",
        suite(sidecar="name: tiny\nname: big\nversion: '1'\ntask_type: qa\n"
              "default_metrics: [exact_match]\n"),
        ("{sidecar}:2", "duplicate key 'name'")),
    Bad("yaml-sidecar-integer-too-long", "suite",
        suite(sidecar="name: tiny\nversion: '1'\ntask_type: qa\n"
              "default_metrics: [exact_match]\nn: " + "9" * 5000 + "\n"),
        ("{sidecar}:5", "invalid YAML", "an integer of 5000 digits, more than the 4300")),
    Bad("yaml-integer-base-60-too-long", "spec",
        spec_text("name: t\nsuite: SUITE\nmodels: [a]\nsamples_per_case: 1" + ":59" * 40000),
        ("{spec}:4:19: not valid YAML", "an integer of about 71128 digits")),
    Bad("yaml-integer-tag-not-an-integer", "spec",
        spec_text("name: t\nsuite: SUITE\nmodels: [a]\nsamples_per_case: !!int abc\n"),
        ("{spec}:4:19: not valid YAML: expected an integer, got 'abc'",)),
    Bad("yaml-rubric-billion-laughs", "cli", rubric("clarity: x\n" + BOMB),
        ("r.rubric.yaml", "not valid YAML", "expands to more than 100000 values")),
    Bad("rubric-not-utf8", "cli", rubric(b"clarity: caf\xe9\n"),
        ("r.rubric.yaml", "not UTF-8 text")),
    Bad("rubric-not-yaml", "cli", rubric("clarity: [x\n"),
        ("r.rubric.yaml:2:1: not valid YAML", "a list in [ ] that is not closed")),
    # --- counts and numbers: each has an upper bound, said in the error
    Bad("count-slots-huge", "spec",
        spec({"hosts": [corpus.SIM[0] | {"slots": 9007199254740992}]}, "plan"),
        ("{spec}", F.format("hosts[0].slots"),
         "slots must be >= 1 and <= 1024 (requests one host runs at once)")),
    Bad("count-samples-huge", "spec", spec({"samples_per_case": 10**6}, "plan"),
        ("{spec}", F.format("samples_per_case"), "must be >= 1 and <= 1000")),
    Bad("count-max-configs-huge", "spec", spec({"limits": {"max_configs": 10**7}}, "plan"),
        ("{spec}", F.format("limits.max_configs"), "<= 100000")),
    Bad("count-max-attempts-huge", "spec", spec({"limits": {"max_attempts": 10**6}}, "plan"),
        ("{spec}", F.format("limits.max_attempts"), "<= 100")),
    Bad("count-timeout-huge", "spec", spec({"limits": {"request_timeout_s": 1e300}}, "plan"),
        ("{spec}", F.format("limits.request_timeout_s"), "<= 86400")),
    Bad("count-budget-huge", "spec",
        spec({"strategy": "race", "budget": 10**12, "grid": {"temperature": [0.0, 0.5]}}, "plan"),
        ("{spec}", F.format("budget"), "<= 1000000000")),
    Bad("count-num-predict-huge", "spec", spec({"grid": {"num_predict": [2**40]}}, "plan"),
        ("{spec}", F.format("grid.num_predict[0]"), "must be in [1, 16777216]")),
    Bad("count-num-ctx-huge", "spec", spec({"grid": {"num_ctx": [2**30]}}, "plan"),
        ("{spec}", F.format("grid.num_ctx[0]"), "must be in [1, 16777216]")),
    Bad("count-top-k-huge", "spec", spec({"grid": {"top_k": [2**40]}}, "plan"),
        ("{spec}", F.format("grid.top_k[0]"), "must be in [1, 1048576]")),
    Bad("count-seed-huge", "spec", spec({"grid": {"seed": [2**40]}}, "plan"),
        ("{spec}", F.format("grid.seed[0]"), "must be in [0, 4294967295]")),
    Bad("count-chunk-size-huge", "spec",
        spec({"pipeline": {"name": "map_reduce"}, "grid": {"chunk_size": [10**12]}}, "plan"),
        ("{spec}", F.format("grid.chunk_size[0]"), "must be in [1, 100000000]")),
    Bad("count-pass-at-k-huge", "spec", spec({"metrics": ["pass@" + "9" * 5000]}, "plan"),
        ("{spec}", F.format("metrics[0]"), "pass@k takes k from 1 to 1000", "(5000 digits)")),
    Bad("count-pass-at-k-above-samples-bound", "spec", spec({"metrics": ["pass@1001"]}, "plan"),
        ("{spec}", F.format("metrics[0]"), "pass@k takes k from 1 to 1000", "got 1001")),
    Bad("count-temperature-huge", "spec", spec({"grid": {"temperature": [1.0e308]}}, "plan"),
        ("{spec}", F.format("grid.temperature[0]"), "must be in [0, 2]")),
    Bad("pipeline-float-nan", "spec", pipeline_module(FLOAT_PIPELINE, weight=float("nan")),
        ("{spec}", F.format("pipeline.weight"), "must be a finite number, got nan")),
    Bad("pipeline-float-inf", "spec", pipeline_module(FLOAT_PIPELINE, weight=float("inf")),
        ("{spec}", F.format("pipeline.weight"), "must be a finite number, got inf")),
    Bad("pipeline-wrong-signature", "spec",
        pipeline_module("async def analyse(case):\n    return ''\n"),
        ("{spec}", F.format("pipeline.name"), "does not take three arguments",
         "analyse(case, params, llm)")),
    # --- ports: ASCII digits only
    Bad("port-superscript-ollama-host", "env", spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='127.0.0.1:²'", "invalid port"), {"OLLAMA_HOST": "127.0.0.1:²"}),
    Bad("port-arabic-indic-ollama-host", "env", spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='127.0.0.1:١١٤٣٤'", "invalid port"), {"OLLAMA_HOST": "127.0.0.1:١١٤٣٤"}),
    Bad("port-superscript-judge-url", "cli",
        cli("judge", "demo", "--model", "j:1b", "--url", "127.0.0.1:²"),
        ("argument --url", "invalid port '²'")),
    Bad("port-superscript-review", "cli", cli("review", "demo", "--port", "٨٠٨٠"),
        ("argument --port: expected a port number 1-65535",)),
    Bad("opt-judge-attempts-huge", "cli",
        cli("judge", "demo", "--model", "j:1b", "--attempts", "1000000"),
        ("argument --attempts: expected a whole number from 1 to 100, got '1000000'",)),
    Bad("opt-judge-concurrency-huge", "cli",
        cli("judge", "demo", "--model", "j:1b", "--concurrency", "99999999"),
        ("argument --concurrency: expected a whole number from 1 to 1024",)),
    Bad("opt-judge-num-predict-huge", "cli",
        cli("judge", "demo", "--model", "j:1b", "--num-predict", str(2**40)),
        ("argument --num-predict: expected a whole number from 1 to 16777216",)),
    Bad("opt-limit-thousands-of-digits", "cli", cli("plan", "SPEC", "--limit", "9" * 5000),
        ("argument --limit: expected a whole number from 1 to 2**53",)),
    Bad("database-port-not-a-number-env", "env", lambda w: ["experiments"],
        ("EVALFLOW_DATABASE_URL=", "its port is not a number"),
        {"EVALFLOW_DATABASE_URL": "postgresql://ana:s3cret@db:port/x"}, absent=("s3cret",)),
    Bad("database-port-not-a-number-option", "cli",
        cli("--database", "postgresql://ana:s3cret@db:5432x/x", "experiments"),
        ("--database 'postgresql://ana:***@db:5432x/x'", "its port is not a number"),
        absent=("s3cret",)),
    Bad("database-port-arabic-indic", "cli",
        cli("--database", "postgresql://ana@db:٥٤٣٢/x", "experiments"),
        ("--database 'postgresql://ana@db:٥٤٣٢/x'", "in ASCII digits")),
    # --- a case input holding NUL: refused at load, not by PostgreSQL mid-run
    Bad("suite-input-nul", "suite", suite(cases=[corpus.case(input="2 +\u0000 2?")]),
        ("{suite}:1", F.format("input"), "NUL character")),
    Bad("suite-message-nul", "suite",
        suite(cases=[corpus.case(input=[{"role": "user", "content": "a\u0000"}])]),
        ("{suite}:1", F.format("input[0].content"), "NUL character")),
    Bad("spec-template-nul", "spec", spec({"templates": {"q": "{input}\u0000"}}, "plan"),
        ("{spec}", F.format("templates.q"), "NUL character")),
    # --- a lone surrogate (valid JSON and YAML, no UTF-8): refused at load, like NUL
    Bad("suite-input-surrogate", "suite", suite(cases=[corpus.case(input="\ud800")]),
        ("{suite}:1", F.format("input"), "lone surrogate (\\ud800)")),
    Bad("suite-references-surrogate", "suite",
        suite(cases=[corpus.case(references=["4\udfff"])]),
        ("{suite}:1", F.format("references[0]"), "lone surrogate")),
    Bad("suite-metadata-surrogate", "suite",
        suite(cases=[corpus.case(metadata={"k": "\ud800"})]),
        ("{suite}:1", F.format("metadata.k"), "lone surrogate")),
    Bad("suite-metadata-key-surrogate", "suite",
        suite(cases=[corpus.case(metadata={"\ud800": 1})]),
        ("{suite}:1", F.format("metadata"), "the key '\\ud800'", "lone surrogate")),
    Bad("suite-id-surrogate", "suite", suite(cases=[corpus.case(id="c\ud800")]),
        ("{suite}:1", F.format("id"), "lone surrogate")),
    Bad("spec-template-surrogate", "spec", spec({"templates": {"q": "{input}\ud800"}}, "plan"),
        ("{spec}", F.format("templates.q"), "lone surrogate")),
    # --- a range step so small its count is past decimal arithmetic (was exit 1)
    Bad("grid-step-tiny", "spec",
        spec({"grid": {"temperature": {"min": 0.0, "max": 2.0, "step": 1.0e-300}}}, "plan"),
        ("{spec}", F.format("grid.temperature.step"), "more than limits.max_configs")),
    Bad("grid-step-subnormal", "spec",
        spec({"grid": {"temperature": {"min": 0.0, "max": 2.0, "step": 5.0e-324}}}, "plan"),
        ("{spec}", F.format("grid.temperature.step"), "more than limits.max_configs")),
    # --- an existing empty file named as the database: refused, not made a database
    Bad("database-empty-file-env", "env", empty_database("experiments"),
        ("EVALFLOW_DATABASE_URL", "empty.sqlite is an empty file, not a results database"),
        {"EVALFLOW_DATABASE_URL": "sqlite:///{root}/empty.sqlite"}),
    Bad("database-empty-file-option", "cli", empty_database("show", "demo", option=True),
        ("--database", "empty.sqlite is an empty file")),
    # --- every file read has a most, refused by its size before it is read (E2, E3)
    Bad("rubric-too-large", "cli", _big_rubric,
        ("r.rubric.yaml", "cannot read the rubric: is 1,048,577 bytes; at most 1,048,576")),
    Bad("sidecar-too-large", "suite",
        suite(sidecar="name: tiny\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
              + "#" * MAX_WRITTEN_BYTES + "\n"),
        ("{sidecar}", "cannot read the file: is 1,048,646 bytes; at most 1,048,576 (1 MiB)")),
    Bad("documents-too-large", "suite", _big_documents,
        ("broken/d.jsonl", "cannot read the documents file: is 536,870,913 bytes; at most "
         "536,870,912 (512 MiB)")),
    Bad("rag-corpus-too-large", "spec", _big_corpus,
        ("{spec}", F.format("pipeline.corpus"), "corpus.jsonl", "cannot read it: is "
         "536,870,913 bytes; at most 536,870,912")),
    # --- export into a place the kernel refuses, even to root
    Bad("export-out-unwritable", "cli", cli("export", "demo", "--out", "/proc/evalflow-export"),
        ("--out", "/proc/evalflow-export")),
]  # fmt: skip


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_edge_input_is_refused_in_one_line_with_nothing_written(
    bad: Bad, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus.test_bad_input_is_refused_in_one_line_with_nothing_written(
        bad, world, monkeypatch, capsys
    )


def test_docs_list_every_edge_case() -> None:
    text = corpus.DOCS.read_text()
    section = text[text.index("## Edges of issue 43") :]
    assert sorted(c.id for c in CASES) == sorted(
        line.split("`")[1] for line in section.splitlines() if line.startswith("- `")
    )


# --- the safe YAML loader -------------------------------------------------------------


def test_the_billion_laughs_is_refused_at_the_alias_that_passes_the_bound() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        safe_yaml.load(BOMB)
    assert safe_yaml.position(caught.value)[0] == 6


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: &x [1, 2]\nb: *x\nc: [*x, *x]\n", {"a": [1, 2], "b": [1, 2], "c": [[1, 2], [1, 2]]}),
        ("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n", {"base": {"x": 1, "y": 2},
                                                           "d": {"x": 3, "y": 2}}),
        ("models: [a, b]\n", {"models": ["a", "b"]}),
    ],
)  # fmt: skip
def test_aliases_within_the_bound_load_as_pyyaml_loads_them(text: str, value: Any) -> None:
    assert safe_yaml.load(text) == value == yaml.safe_load(text)


def test_the_bound_counts_aliases_at_their_expanded_size() -> None:
    # 5 anchors of 10 copies: 10**5 + the lists themselves: just past 100,000 values
    with pytest.raises(yaml.YAMLError, match="more than 100000 values"):
        safe_yaml.load(_laughs(5))
    assert len(safe_yaml.load(_laughs(4))["lol"]["a3"]) == 10  # 10**4 strings: fine


@pytest.mark.parametrize(
    "text",
    ["n: " + "9" * 4300, "n: -" + "9" * 4300, "n: 0x" + "f" * 3500, "n: 1" + ":59" * 2000,
     "n: 0b101\nm: 017\no: 1_000\np: 1:30\nq: +0", "n: '" + "9" * 5000 + "'"],
)  # fmt: skip
def test_integers_python_prints_load_as_pyyaml_loads_them(text: str) -> None:
    assert safe_yaml.load(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("n: " + "9" * 4301, "4301"), ("n: -" + "9_" * 5000, "5000"),
     ("n: 0x" + "f" * 4000, "about 4817"), ("n: 0b" + "1" * 20000, "about 6021"),
     ("n: 0" + "7" * 5000, "about 4516"), ("n: 1" + ":59" * 40_000, "about 71128")],
)  # fmt: skip
def test_an_integer_longer_than_python_prints_is_refused_at_it(text: str, size: str) -> None:
    """S1: a decimal one was a plain ValueError from PyYAML ("evalflow failed", exit 1);
    the others loaded, then failed wherever printed; base 60's cost grows with the square
    of its parts (4.3 s of CPU for 160,000): refused before it is computed."""
    with pytest.raises(yaml.YAMLError, match=f"an integer of {size} digits, more than the"):
        safe_yaml.load("a: 1\n" + text)
    with pytest.raises(yaml.YAMLError) as caught:
        safe_yaml.load("a: 1\n" + text)
    assert safe_yaml.position(caught.value) == (2, 4)


def test_an_int_tag_on_text_that_is_no_integer_is_refused_at_it() -> None:
    for value in ("abc", '""'):
        with pytest.raises(yaml.YAMLError, match="expected an integer, got") as caught:
            safe_yaml.load(f"a: 1\nn: !!int {value}\n")
        assert safe_yaml.position(caught.value) == (2, 4)


YAML_READS = re.compile(
    r"(?<!\w)yaml\.((safe_|full_|unsafe_)?(load|compose)(_all)?\(|(Safe|Full|Unsafe)?Loader\b)"
)


def test_every_yaml_evalflow_reads_goes_through_the_safe_loader() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for package in ("evaluation", "selection", "tasks", "flows", "deployments")
        for path in sorted((REPO / package).rglob("*.py"))
        if "safe_yaml" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if YAML_READS.search(line)
    ]
    assert not found, f"read YAML with evaluation.safe_yaml.load, not: {found}"


def test_field_marks_of_a_refused_spec_compose_with_the_same_bound(tmp_path: Path) -> None:
    from evaluation.spec._fields import marks_and_aliases

    assert marks_and_aliases("name: t\n" + BOMB) == ({}, {})
    assert marks_and_aliases("a: &m [*m]\n") == ({}, {})


# --- the judge checks its host and model before it writes ------------------------------


@pytest.fixture
def two_configs(world: World) -> str:
    """The world's database with an experiment ``pairs`` of two configs over 3 cases."""
    engine = make_engine(world.db)
    configs = {make_config(): {"exact_match": [1.0, 0.0, 1.0]},
               make_config("big:8b"): {"exact_match": [0.0, 0.0, 1.0]}}  # fmt: skip
    with session_scope(engine) as session:
        add_experiment(session, "pairs", make_suite(3), configs)
    engine.dispose()
    return world.db


def test_judge_with_a_host_that_is_down_writes_no_review_pairs(
    two_configs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = row_counts(two_configs)
    rc, _out, err = run_cli(["judge", "pairs", "--model", "j:1b", "--url", "127.0.0.1:9"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert row_counts(two_configs) == before
    assert "review_pairs" not in before


def test_judge_with_a_model_the_host_lacks_writes_nothing(
    two_configs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = row_counts(two_configs)
    with running_standin(StandInConfig(models=("other:1b",))) as host:
        rc, _out, err = run_cli(["judge", "pairs", "--model", "j:1b", "--url", host.url], capsys)
    assert rc == 2, err
    assert "does not have 'j:1b'" in err and len(err.strip().splitlines()) == 1
    assert row_counts(two_configs) == before


def test_judge_stores_its_drawn_pairs_once_the_host_answers(
    two_configs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_standin(StandInConfig(models=("j:1b",))) as host:
        run_cli(["judge", "pairs", "--model", "j:1b", "--url", host.url, "--limit", "2"], capsys)
    assert row_counts(two_configs)["review_pairs"] == 2


# --- ports, scorers, corpora ------------------------------------------------------------


@pytest.mark.parametrize("text", ["²", "١١٤٣٤", "１１４３４", "0", "65536", "", "+1", " 1"])
def test_a_port_is_ascii_digits_from_1_to_65535(text: str) -> None:
    assert port_number(text) is None
    with pytest.raises(EvalError, match="invalid port"):
        ollama_url(f"127.0.0.1:{text}" if text else "127.0.0.1:x")


def test_a_port_in_range_is_read() -> None:
    assert port_number("11434") == 11434
    assert ollama_url("gpu:80") == "http://gpu:80"


SCORERS = """
from evaluation.metrics import scorer

def _raises(cases, outputs):
    raise RuntimeError("the corpus function broke")

@scorer(score_type="binary", corpus=_raises)
def binary(case, output):
    return {"seven": 7, "minus": -3, "inf": float("inf"), "yes": True}.get(output, 0)

@scorer(score_type="continuous")
def endless(case, output):
    return float(output)

@scorer(score_type="ordinal")
def stars(case, output):
    return float(output)
"""


@pytest.fixture
def scorers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from scorer_module(tmp_path, monkeypatch, "edge_scorers", SCORERS)


def _case(cid: str = "c") -> Any:
    from evaluation.suites import Case

    return Case(id=cid, input="x", references=("x",))


def test_a_scorer_value_its_kind_does_not_allow_is_nan_with_the_reason(scorers: str) -> None:
    outputs = ["seven", "minus", "inf", "yes", "no"]
    scored = get_metric(f"{scorers}:binary").score_details(outputs, [_case()] * 5)
    assert np.isnan(scored.values[:3]).all() and scored.values[3:].tolist() == [1.0, 0.0]
    assert "binary scorer returns 0 or 1" in scored.details[0] and "got 7" in scored.details[0]
    assert "got -3" in scored.details[1] and "inf, not a finite number" in scored.details[2]
    endless = get_metric(f"{scorers}:endless").score_details(["-inf", "0.5"], [_case()] * 2)
    assert math.isnan(endless.values[0]) and endless.values[1] == 0.5
    stars = get_metric(f"{scorers}:stars").score_details(["2.5", "3"], [_case()] * 2)
    assert math.isnan(stars.values[0]) and "whole numbers" in stars.details[0]


def test_a_corpus_function_that_raises_is_nan_with_its_reason_in_the_note(scorers: str) -> None:
    from evaluation.compare._leaderboard import aggregate_rows
    from evaluation.suites import Suite

    metric = get_metric(f"{scorers}:binary")
    suite = Suite("s", "1", "qa", ("exact_match",), (_case("a"), _case("b")))
    generations = pd.DataFrame(
        {"config_hash": ["h", "h"], "case_id": ["a", "b"], "sample_index": [0, 0],
         "output": ["yes", "no"], "status": ["ok", "ok"], "latency_s": [0.1, 0.1],
         "ttft_s": [None, None], "tokens_per_s": [None, None], "truncated": [False, False]}
    )  # fmt: skip
    scores = pd.DataFrame(columns=["config", "metric", "case_id", "value"])
    (row,) = [r for r in aggregate_rows(generations, scores, [metric], suite) if r["metric"]
              == metric.name]  # fmt: skip
    assert row["mean"] is None and row["n"] == 2
    assert "corpus function raised RuntimeError: the corpus function broke" in row["note"]


def test_a_rag_corpus_holding_a_raw_line_separator_is_read(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    text = "one\u2028two\u2029three\u0085"
    path.write_text(
        json.dumps({"id": "a", "text": text}, ensure_ascii=False) + '\n{"id": "b", "text": "x"}\n'
    )
    assert "\u2028" in path.read_text()  # raw, as valid JSON may hold it
    assert load_corpus(str(path)) == (("a", text), ("b", "x"))


def test_the_rag_corpus_with_a_line_separator_passes_plan(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = rag_corpus('{"id": "a", "text": "x\u2028y"}\n')(world)
    rc, _out, err = run_cli(["plan", *argv[1:]], capsys)
    assert rc == 0, err


# --- recommend(): ValueError naming the argument, before anything is read ---------------


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"task_type": 5}, "task_type"),
        ({"min_quality": "0.5"}, "min_quality"),
        ({"max_latency_s": "1"}, "max_latency_s"),
        ({"max_latency_s": math.inf}, "max_latency_s"),
        ({"max_energy_j": True}, "max_energy_j"),
        ({"input_chars": math.nan}, "input_chars"),
        ({"max_energy_j": 10**400}, "max_energy_j"),
        ({"max_latency_s": 10**400}, "max_latency_s"),
        ({"input_chars": -(10**400)}, "input_chars"),
        ({"min_quality": 10**400}, "min_quality"),
        ({"prefer": {"quality": 10**400}}, "prefer"),
        ({"version": 10**400}, "version"),
        ({"max_energy_j": 10**5000}, "max_energy_j"),  # past the digits repr() writes
        ({"prefer": {"quality": 10**5000}}, "prefer"),
        ({"version": 10**5000}, "version"),
        ({"candidates": 5}, "candidates"),
        ({"candidates": [None]}, "candidates[0]"),
        ({"candidates": []}, "candidates"),
        ({"candidates": "abc"}, "candidates"),
        ({"version": 2**70}, "version"),
        ({"version": "2"}, "version"),
        ({"prefer": {"quality": "1"}}, "prefer"),
        ({"prefer": {"quality": math.inf}}, "prefer"),
        ({"database_url": "postgresql://ana:s3cret@db:port/x"}, "database_url"),
        ({"database_url": 5}, "database_url"),
    ],
)
def test_recommend_refuses_a_bad_argument_with_a_value_error_naming_it(
    kwargs: dict[str, Any], named: str, tmp_path: Path
) -> None:
    kwargs = {"task_type": "qa", "database_url": f"sqlite:///{tmp_path / 'none.db'}"} | kwargs
    with pytest.raises(ValueError) as caught:
        recommend(**kwargs)
    assert type(caught.value) is BadRequest  # a ValueError the CLI reads as bad input
    message = str(caught.value)
    assert message.startswith(named), message
    assert "environment variable" not in message and "s3cret" not in message
    assert not (tmp_path / "none.db").exists()  # refused before anything was opened


# --- settings read before the command's own error handling ------------------------------


def evalflow(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m flows.cli`` (the executable's entry: `run` launches its server early)
    on this checkout, Prefect's API not configured, results in ``tmp_path``."""
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {
        "EVALFLOW_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "EVALFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'results.db'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv],
        capture_output=True,
        text=True,
        env=environment | env,
        cwd=REPO,
        timeout=120,
    )


def simulated_spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "edge",
                "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                "models": ["sim-small:1b"],
                "hosts": corpus.SIM,
            }
        )
    )
    return path


def test_run_with_evalflow_home_a_file_is_one_line_before_prefect(tmp_path: Path) -> None:
    home = tmp_path / "home-file"
    home.write_text("x")
    done = evalflow(["run", str(simulated_spec(tmp_path))], tmp_path, EVALFLOW_HOME=str(home))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: environment variable EVALFLOW_HOME='{home}': expected a folder, but it is a file"
    ]
    assert home.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home-file", "spec.yaml"]


def test_a_run_that_ends_before_its_flow_began_leaves_the_experiment_as_it_was(
    tmp_path: Path,
) -> None:
    """A resume of a completed experiment that fails before its flow sets it running
    (its Prefect API gone) ends its own claim, not the experiment: still completed."""
    from sqlalchemy import select

    from evaluation.storage.models import Experiment
    from evaluation.storage.runs import (
        RunProcess,
        claim_experiment,
        end_run,
        experiment_status,
    )

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    process = RunProcess.current()
    done = select(Experiment).where(Experiment.name == "done")
    with session_scope(engine) as session:
        experiment = add_experiment(
            session, "done", make_suite(1), {make_config(): {"exact_match": [1.0]}}
        )
        experiment.status = "completed"
    with session_scope(engine) as session:
        claim_experiment(session, "done", process)
    with session_scope(engine) as session:
        assert end_run(session, "done", "failed", process, reason="RuntimeError: no API")
    with session_scope(engine) as session:
        experiment = session.exec(done).scalar_one()
        assert experiment.status == "completed"
        assert experiment_status(session, experiment).status == "completed"
        assert experiment_status(session, experiment).reason is None


def test_run_refuses_a_prefect_api_that_does_not_answer_before_it_writes(
    tmp_path: Path,
) -> None:
    """In a subprocess: in this one an earlier run's API setting would answer instead."""
    from sqlalchemy import select

    from evaluation.storage.models import Experiment

    url = f"sqlite:///{tmp_path / 'results.db'}"
    engine = make_engine(url)
    with session_scope(engine) as session:
        add_experiment(session, "earlier", make_suite(1), {make_config(): {"exact_match": [1.0]}})
    with session_scope(engine) as session:
        session.exec(select(Experiment)).scalar_one().status = "completed"
    before = row_counts(url)
    done = evalflow(
        ["run", str(simulated_spec(tmp_path))],
        tmp_path,
        PREFECT_API_URL="http://u:Qx7pw@127.0.0.1:9/api",
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: PREFECT_API_URL: the Prefect API does not answer: ")
    assert "http://u:***@127.0.0.1:9/api" in line and "Qx7pw" not in done.stdout + line
    assert row_counts(url) == before  # nothing claimed
    with session_scope(engine) as session:
        assert session.exec(select(Experiment)).scalar_one().status == "completed"


def test_a_prefect_api_that_answers_late_is_try_later_not_bad_input(tmp_path: Path) -> None:
    """A Prefect server busy on a loaded machine takes the connection and answers its
    health check late: the refusal was exit 2 ("bad input", never retried by scripts;
    newcomer ncwatch's W6); it is TryLater (75), nothing claimed. In a subprocess, as above;
    a listening socket that never answers stands for the late server."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        code = (
            "from evaluation.errors import TryLater\n"
            "from flows.cli._prefect_check import refuse_an_api_that_does_not_answer\n"
            "try:\n"
            "    refuse_an_api_that_does_not_answer(timeout_s=0.5)\n"
            "except TryLater as exc:\n"
            "    print('TryLater', exc)\n"
        )
        env = os.environ | {"PREFECT_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/api"}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
        )
    assert done.stdout.startswith("TryLater PREFECT_API_URL: the Prefect API did not answer"), (
        done.stdout + done.stderr
    )
    assert "no healthy answer within 0.5 s" in done.stdout
    assert "run the same command again" in done.stdout
