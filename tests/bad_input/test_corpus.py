"""The bad-input corpus: every user-facing input, malformed, through the real CLI.

Each case runs ``evalflow`` in-process and checks what issue 11 asks of every refusal:
exit code 2, exactly one line on stderr (``error: ...``) naming the file, line, field or
variable and what was expected, no traceback, and no row written anywhere (the row count
of every table of the results database is the same before and after). The cases are
listed, with what each covers, in docs/bad-input.md; a test keeps that table in step.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, func, inspect, select, table

from evaluation.calibration._import import MAX_RATINGS, MAX_RATINGS_BYTES
from evaluation.metrics import _user
from evaluation.spec import Config
from evaluation.spec._load import MAX_SPEC_BYTES
from evaluation.storage.db import make_engine, session_scope
from evaluation.suites._load import MAX_CASES, MAX_SUITE_BYTES
from flows.cli import main
from flows.cli.app import _verbs, build_parser
from tests.conftest import REPO
from tests.support.databases import older_lacking_a_required_column
from tests.support.results_db import MISSING, add_experiment, make_config, make_suite

QA_SIDECAR = {
    "name": "tiny",
    "version": "1",
    "task_type": "qa",
    "default_metrics": ["exact_match"],
}
QA_CASE = {"id": "c1", "input": "What is 2 + 2?", "references": ["4"]}
CLS_SIDECAR = QA_SIDECAR | {
    "task_type": "classification",
    "default_metrics": ["accuracy"],
    "labels": ["yes", "no"],
}
CODE_SIDECAR = QA_SIDECAR | {"task_type": "code", "default_metrics": ["tests_passed"]}
DOCS = REPO / "docs" / "bad-input.md"


class World:
    """A folder with a valid suite and spec, a results database holding one experiment
    (so that "nothing written" is checked against real rows), and helpers to break them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_path = root / "results.db"
        self.db = f"sqlite:///{self.db_path}"
        self.suite = self.write_suite(root / "suite")
        self.spec = root / "spec.yaml"
        self.base = {
            "name": "bad-input",
            "suite": str(self.suite),
            "models": ["sim-small:1b"],
            "grid": {"temperature": [0.0]},
            "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
        }
        self.write_spec()
        self.judge_url = ""
        self.web_url = ""  # another web server: a 404 page for every path
        self.keyed_url = ""  # a host that wants KEY (``_Keyed``)

    def write_suite(
        self,
        folder: Path,
        cases: list[Any] | None = None,
        sidecar: dict[str, Any] | str | None = None,
        raw: bytes | None = None,
    ) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "tiny.jsonl"
        if raw is not None:
            path.write_bytes(raw)
        else:
            lines = cases if cases is not None else [QA_CASE]
            path.write_text(
                "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
            )
        side = sidecar if sidecar is not None else QA_SIDECAR
        text = side if isinstance(side, str) else yaml.safe_dump(side)
        (folder / "tiny.suite.yaml").write_text(text)
        return path

    def write_spec(self, changes: dict[str, Any] | None = None, text: str | None = None) -> Path:
        data = copy.deepcopy(self.base)
        for key, value in (changes or {}).items():
            if value is ...:
                data.pop(key, None)
            else:
                data[key] = value
        self.spec.write_text(text if text is not None else yaml.safe_dump(data))
        return self.spec

    def broken_suite(self, **kw: Any) -> Path:
        """A spec whose suite is broken as ``kw`` says (see ``write_suite``)."""
        self.suite = self.write_suite(self.root / "broken", **kw)
        return self.write_spec({"suite": str(self.suite)})

    def note(self, name: str) -> Path:
        """A file that is no suite's, beside the spec."""
        path = self.root / name
        path.write_text("# notes\n")
        return path

    @property
    def sidecar(self) -> Path:
        return self.suite.with_name("tiny.suite.yaml")


@dataclass(frozen=True)
class Bad:
    """One malformed input: ``id`` (named in docs/bad-input.md), the ``input`` it breaks,
    how to break it (``argv`` may write files first), and the fragments the error line
    must hold (``{spec}``, ``{suite}``, ``{sidecar}`` and ``{root}`` are filled in)."""

    id: str
    input: str
    argv: Callable[[World], list[str]]
    expect: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # never in the output (a password)
    read_only: str = ""  # a folder under the root that os.access calls read-only (for root too)


def _shown(argv: Callable[[World], list[str]], what: str) -> Callable[[World], list[str]]:
    argv.shows = what  # type: ignore[attr-defined]  (for docs/bad-input.md)
    return argv


def spec(changes: dict[str, Any], command: str = "run") -> Callable[[World], list[str]]:
    what = ", ".join(
        f"no {k}" if v is ... else f"{k}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in changes.items()
    )
    return _shown(lambda w: [command, str(w.write_spec(changes))], f"{command}: {what}")


def spec_text(text: str | bytes) -> Callable[[World], list[str]]:
    def argv(w: World) -> list[str]:
        if isinstance(text, bytes):
            w.spec.write_bytes(text.replace(b"SUITE", str(w.suite).encode()))
        else:
            w.spec.write_text(text.replace("SUITE", str(w.suite)))
        return ["run", str(w.spec)]

    return _shown(argv, f"run: the spec file is {text!r}")


def _padded(w: World, size: int) -> str:
    """The world's valid spec, with a comment after it to ``size`` bytes."""
    text = yaml.safe_dump(w.base) + "# "
    return text + "x" * (size - len(text.encode()) - 1) + "\n"


def suite(**kw: Any) -> Callable[[World], list[str]]:
    what = ", ".join(f"{k}: {v!r}" for k, v in kw.items())
    return _shown(lambda w: ["run", str(w.broken_suite(**kw))], f"run, suite with {what}")


def case(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in (QA_CASE | changes).items() if v is not ...}


SIM = [{"name": "sim", "url": "simulated://local", "kind": "simulated"}]
F = "field '{}'"

SPEC_CASES = [
    Bad(
        "spec-name-chars",
        "spec",
        spec({"name": "My Sweep"}),
        ("{spec}", F.format("name"), "[a-z0-9-]+"),
    ),
    Bad(
        "spec-name-missing",
        "spec",
        spec({"name": ...}),
        ("{spec}", F.format("name"), "is required"),
    ),
    Bad(
        "spec-suite-missing",
        "spec",
        spec({"suite": ...}),
        ("{spec}", F.format("suite"), "is required"),
    ),
    Bad(
        "spec-suite-not-found",
        "spec",
        spec({"suite": "nope.jsonl"}),
        ("{spec}", F.format("suite"), "suite file not found"),
    ),
    Bad(
        "spec-suite-folder",
        "spec",
        lambda w: ["run", str(w.write_spec({"suite": str(w.root)}))],
        ("{spec}", F.format("suite"), "is a folder"),
    ),
    Bad(
        "spec-suite-not-a-suite-file",
        "spec",
        _shown(
            lambda w: ["plan", str(w.write_spec({"suite": str(w.note("README.md"))}))],
            "plan: suite: README.md (a file, not a suite's)",
        ),
        ("{spec}:", F.format("suite"), "expected a suite's .jsonl file", "got 'README.md'"),
    ),
    Bad(
        "spec-models-empty",
        "spec",
        spec({"models": []}),
        ("{spec}", F.format("models"), "must not be empty"),
    ),
    Bad(
        "spec-models-text",
        "spec",
        spec({"models": "llama3"}),
        ("{spec}", F.format("models"), "expected a list of model names"),
    ),
    Bad(
        "spec-models-duplicate",
        "spec",
        spec({"models": ["a:1b", "a:1b"]}),
        ("{spec}", F.format("models[1]"), "duplicate value"),
    ),
    Bad(
        "spec-models-control-character",
        "spec",
        spec({"models": ["\x1b]0;PWNED\x07evil"]}),
        ("{spec}", F.format("models[0]"), "a model name holds no control character, got \\x1b"),
        absent=("\x1b", "\x07"),
    ),
    Bad(
        "spec-template-key-control-character",
        "spec",
        spec({"templates": {"\x1b[32mtpl": "{input}"}}),
        ("{spec}", F.format("templates.\\x1b[32mtpl"), "has characters outside"),
        absent=("\x1b",),
    ),
    Bad(
        "spec-unknown-key",
        "spec",
        spec({"model": ["a"]}),
        ("{spec}", F.format("model"), "did you mean 'models'?"),
    ),
    Bad(
        "spec-cases-unknown",
        "spec",
        spec({"cases": ["nope"]}),
        ("{spec}", F.format("cases[0]"), "no case 'nope' in suite"),
    ),
    Bad(
        "spec-cases-duplicate",
        "spec",
        spec({"cases": ["a", "a"]}),
        ("{spec}", F.format("cases[1]"), "duplicate value"),
    ),
    Bad(
        "spec-grid-unknown",
        "spec",
        spec({"grid": {"temprature": [0.1]}}),
        ("{spec}", F.format("grid.temprature"), "did you mean 'temperature'?"),
    ),
    Bad(
        "spec-temperature-negative",
        "spec",
        spec({"grid": {"temperature": [-0.5]}}),
        ("{spec}", F.format("grid.temperature[0]"), "must be in [0, 2]"),
    ),
    Bad(
        "spec-top-p-zero",
        "spec",
        spec({"grid": {"top_p": [0.0]}}),
        ("{spec}", F.format("grid.top_p[0]"), "(0, 1]"),
    ),
    Bad(
        "spec-top-p-above-one",
        "spec",
        spec({"grid": {"top_p": 1.5}}),
        ("{spec}", F.format("grid.top_p"), "(0, 1]"),
    ),
    Bad(
        "spec-top-k-zero",
        "spec",
        spec({"grid": {"top_k": [0]}}),
        ("{spec}", F.format("grid.top_k[0]"), "must be in [1, 1048576]"),
    ),
    Bad(
        "spec-num-predict-unbounded",
        "spec",
        spec({"grid": {"num_predict": [-1]}}),
        ("{spec}", F.format("grid.num_predict[0]"), "would never stop"),
    ),
    Bad(
        "spec-num-ctx-text",
        "spec",
        spec({"grid": {"num_ctx": ["big"]}}),
        ("{spec}", F.format("grid.num_ctx[0]"), "expected an integer"),
    ),
    Bad(
        "spec-seed-negative",
        "spec",
        spec({"grid": {"seed": [-1]}}),
        ("{spec}", F.format("grid.seed[0]"), "must be in [0, 4294967295]"),
    ),
    Bad(
        "spec-exponent-as-text",
        "spec",
        spec({"grid": {"temperature": ["1e-3"]}}),
        ("{spec}", F.format("grid.temperature[0]"), "write 0.001"),
    ),
    Bad(
        "spec-range-step-zero",
        "spec",
        spec({"grid": {"temperature": {"min": 0.0, "max": 1.0, "step": 0.0}}}),
        ("{spec}", F.format("grid.temperature.step"), "step must be > 0"),
    ),
    Bad(
        "spec-range-min-above-max",
        "spec",
        spec({"grid": {"temperature": {"min": 1.0, "max": 0.5, "step": 0.1}}}),
        ("{spec}", F.format("grid.temperature.min"), "greater than max"),
    ),
    Bad(
        "spec-range-missing-step",
        "spec",
        spec({"grid": {"temperature": {"min": 0.0, "max": 1.0}}}),
        ("{spec}", F.format("grid.temperature.step"), "is required"),
    ),
    Bad(
        "spec-grid-empty-list",
        "spec",
        spec({"grid": {"temperature": []}}),
        ("{spec}", F.format("grid.temperature"), "must not be empty"),
    ),
    Bad(
        "spec-stop-item-not-text",
        "spec",
        spec({"grid": {"stop": [["\nQuestion:"], [3]]}}),
        ("{spec}", F.format("grid.stop[1][0]"), "must be a list of non-empty strings, got int"),
    ),
    Bad(
        "spec-templates-empty",
        "spec",
        spec({"templates": {}}),
        ("{spec}", F.format("templates"), "must not be empty"),
    ),
    Bad(
        "spec-template-no-input",
        "spec",
        spec({"templates": {"q": "Answer."}}),
        ("{spec}", F.format("templates.q"), "never uses {input}"),
    ),
    Bad(
        "spec-template-unknown-variable",
        "spec",
        spec({"templates": {"q": "{input} {context}"}}),
        ("{spec}", F.format("templates.q"), "unknown variable {context}"),
    ),
    Bad(
        "spec-template-format-spec",
        "spec",
        spec({"templates": {"q": "{input:>50000000}"}}),
        ("{spec}", F.format("templates.q"), "format spec or conversion"),
    ),
    Bad(
        "spec-template-conversion",
        "spec",
        spec({"templates": {"q": "{input!r}"}}),
        ("{spec}", F.format("templates.q"), "format spec or conversion"),
    ),
    Bad(
        "spec-template-lone-brace",
        "spec",
        spec({"templates": {"q": "{input} }"}}),
        ("{spec}", F.format("templates.q"), "not a valid template"),
    ),
    Bad(
        "spec-template-duplicate-text",
        "spec",
        spec({"templates": {"a": "{input}", "b": "{input}"}}),
        ("{spec}", F.format("templates.b"), "same text as template 'a'"),
    ),
    Bad(
        "spec-samples-zero",
        "spec",
        spec({"samples_per_case": 0}),
        ("{spec}", F.format("samples_per_case"), "must be >= 1"),
    ),
    Bad(
        "spec-samples-text",
        "spec",
        spec({"samples_per_case": "two"}),
        ("{spec}", F.format("samples_per_case"), "expected an integer"),
    ),
    Bad(
        "spec-metric-unknown",
        "spec",
        spec({"metrics": ["rougel"]}),
        ("{spec}", F.format("metrics[0]"), "unknown metric 'rougel'"),
    ),
    Bad(
        "spec-metrics-empty",
        "spec",
        spec({"metrics": []}),
        ("{spec}", F.format("metrics"), "must not be empty"),
    ),
    Bad(
        "spec-metric-wrong-task-type",
        "spec",
        spec({"metrics": ["exact_match", "accuracy"]}),
        ("{spec}", F.format("metrics[1]"), "'accuracy' cannot score a qa suite", "classification"),
    ),
    Bad(
        "spec-metric-wrong-task-type-plan",
        "spec",
        spec({"metrics": ["macro_f1"]}, "plan"),
        ("{spec}", F.format("metrics[0]"), "'macro_f1' cannot score a qa suite"),
    ),
    Bad(
        "spec-metric-option-unknown",
        "spec",
        spec({"metrics": [{"semantic_similarity": {"embed_modle": "nomic-embed-text"}}]}),
        ("{spec}", F.format("metrics[0].semantic_similarity"), "unknown option 'embed_modle'"),
    ),
    Bad(
        "spec-metric-option-on-plain-metric",
        "spec",
        spec({"metrics": [{"exact_match": {"embed_model": "x"}}]}),
        ("{spec}", F.format("metrics[0].exact_match"), "takes no options"),
    ),
    Bad(
        "spec-metric-embed-model-empty",
        "spec",
        spec({"metrics": [{"semantic_similarity": {"embed_model": ""}}]}),
        ("{spec}", F.format("metrics[0].semantic_similarity"), "embed_model must be"),
    ),
    Bad(
        "spec-metric-embed-model-unserved",
        "spec",
        spec(
            {
                "metrics": ["semantic_similarity"],
                "hosts": [SIM[0] | {"models": ["sim-small:1b"]}],
            }
        ),
        ("{spec}", F.format("metrics[0]"), "embedding model 'nomic-embed-text'", "no host"),
    ),
    Bad(
        "spec-host-url-no-scheme",
        "spec",
        spec({"hosts": [{"name": "a", "url": "gpu-a:11434"}]}),
        ("{spec}", F.format("hosts[0].url"), "an ollama host's url must start with http://"),
    ),
    Bad(
        "spec-host-slots-zero",
        "spec",
        spec({"hosts": [SIM[0] | {"slots": 0}]}),
        ("{spec}", F.format("hosts[0].slots"), "slots must be >= 1"),
    ),
    Bad(
        "spec-host-slots-huge",
        "spec",
        _shown(
            lambda w: ["run", str(w.write_spec({"hosts": [SIM[0] | {"slots": 10**3999}]}))],
            "run: hosts[0].slots is an integer of 4,000 digits",
        ),
        ("{spec}", F.format("hosts[0].slots"), "an integer of 4000 digits is far beyond"),
    ),
    Bad(
        "spec-host-slots-over-openai",
        "spec",
        spec(
            {
                "hosts": [
                    {"name": "v", "url": "http://127.0.0.1:8000", "kind": "openai", "slots": 2000}
                ]
            }
        ),
        (
            "{spec}",
            F.format("hosts[0].slots"),
            "<= 1024 (requests one host runs at once: llama.cpp's --parallel, vLLM's "
            "--max-num-seqs), got 2000",
        ),
        absent=("OLLAMA",),
    ),
    Bad(
        "spec-host-slots-over-ollama",
        "spec",
        spec({"hosts": [{"name": "o", "url": "http://127.0.0.1:11434", "slots": 2000}]}),
        ("{spec}", F.format("hosts[0].slots"), "at once: its OLLAMA_NUM_PARALLEL), got 2000"),
    ),
    Bad(
        "spec-number-integer-beyond-float",
        "spec",
        _shown(
            lambda w: ["run", str(w.write_spec({"grid": {"temperature": [10**3999]}}))],
            "run: grid.temperature is [an integer of 4,000 digits]",
        ),
        ("{spec}", "must be a finite number, got an integer of 4000 digits"),
    ),
    Bad(
        "spec-host-time-scale-high",
        "spec",
        spec({"hosts": [SIM[0] | {"url": "simulated://local?time_scale=500"}]}),
        ("{spec}", F.format("hosts[0].url"), "?time_scale= must be a number from 0 to 100"),
    ),
    Bad(
        "spec-host-noise-fraction",
        "spec",
        spec({"hosts": [SIM[0] | {"url": "simulated://local?noise=1.5"}]}),
        ("{spec}", F.format("hosts[0].url"), "?noise= must be a whole number from 0 to"),
    ),
    Bad(
        "spec-host-option-twice",
        "spec",
        spec({"hosts": [SIM[0] | {"url": "simulated://local?degrade=0.3&degrade=0.1"}]}),
        ("{spec}", F.format("hosts[0].url"), "?degrade= is given more than once ('0.3', '0.1')"),
    ),
    Bad(
        "spec-host-kind-unknown",
        "spec",
        spec({"hosts": [{"name": "a", "url": "http://a:1", "kind": "vllm"}]}),
        ("{spec}", F.format("hosts[0].kind"), "one of: ollama, openai, simulated"),
    ),
    Bad(
        "spec-host-duplicate-name",
        "spec",
        spec({"hosts": [SIM[0], SIM[0] | {"url": "simulated://b"}]}),
        ("{spec}", F.format("hosts[1].name"), "duplicate host name 'sim'"),
    ),
    Bad(
        "spec-host-mixed-simulated",
        "spec",
        spec({"hosts": [SIM[0], {"name": "real", "url": "http://a:1"}]}),
        ("{spec}", F.format("hosts[0].kind"), "cannot share a sweep"),
    ),
    Bad(
        "spec-host-serves-nothing",
        "spec",
        spec({"hosts": [SIM[0] | {"models": ["other:1b"]}]}),
        ("{spec}", F.format("models[0]"), "no host serves model 'sim-small:1b'"),
    ),
    Bad(
        "spec-limits-unknown",
        "spec",
        spec({"limits": {"max_config": 5}}),
        ("{spec}", F.format("limits.max_config"), "did you mean 'max_configs'?"),
    ),
    Bad(
        "spec-limits-max-configs-zero",
        "spec",
        spec({"limits": {"max_configs": 0}}),
        ("{spec}", F.format("limits.max_configs"), "must be >= 1"),
    ),
    Bad(
        "spec-too-many-configs",
        "spec",
        spec({"grid": {"temperature": [0.0, 0.5]}, "limits": {"max_configs": 1}}),
        ("{spec}", F.format("limits.max_configs"), "expands to 2 configs"),
    ),
    Bad(
        "spec-too-many-generations",
        "spec",
        spec({"limits": {"max_generations": 1}, "samples_per_case": 2}),
        ("{spec}", F.format("limits.max_generations"), "makes 2 generations", "× 2 samples"),
    ),
    Bad(
        "spec-timeout-negative",
        "spec",
        spec({"limits": {"request_timeout_s": -1}}),
        ("{spec}", F.format("limits.request_timeout_s"), "must be > 0"),
    ),
    Bad(
        "spec-first-timeout-short",
        "spec",
        spec({"limits": {"request_timeout_s": 60, "first_request_timeout_s": 10}}),
        ("{spec}", F.format("limits.first_request_timeout_s"), "must be >= request_timeout_s"),
    ),
    Bad(
        "spec-baseline-unknown",
        "spec",
        spec({"baseline": "nope"}),
        ("{spec}", F.format("baseline"), "neither the hash nor the label"),
    ),
    Bad(
        "spec-baseline-unknown-plan",
        "spec",
        spec({"baseline": "nope"}, "plan"),
        (
            "{spec}",
            F.format("baseline"),
            "neither the hash nor the label of a config of this sweep",
            "its configs: 'sim-small:1b t=0' (",
        ),
        absent=("`evalflow plan` lists",),  # plan is the command refusing
    ),
    Bad(
        "spec-invalid-yaml",
        "spec",
        spec_text("name: t\nmodels: [a\n"),
        # a newcomer looked for the slip on the line named: the '[' opened a line earlier
        (
            "{spec}:3:1: not valid YAML: a list in [ ] that is not closed (a ']' or a ',' "
            "missing?); it opened on line 2",
        ),
    ),
    Bad(
        "spec-yaml-indentation",
        "spec",
        spec_text(
            "name: t\nsuite: SUITE\nmodels: [a]\ngrid:\n  temperature: [0]\n    top_k: [8]\n"
        ),
        ("{spec}:6:5: not valid YAML: this line is indented more or less than the lines",),
        absent=("<block end>", "<block mapping start>"),
    ),
    Bad(
        "spec-yaml-tab",
        "spec",
        spec_text("name: t\n\tsuite: SUITE\nmodels: [a]\n"),
        ("{spec}:2:1: not valid YAML: a tab character: YAML indents with spaces only",),
    ),
    Bad(
        "spec-yaml-colon",
        "spec",
        spec_text("name: t\nsuite: SUITE\nmodels: [a]\ngrid: temperature: [0]\n"),
        ("{spec}:4:18: not valid YAML: a ':' where none can be",),
    ),
    Bad(
        "spec-key-no-word",
        "spec",
        spec_text("root:*:20228:0:99999:7:::\n"),
        ("{spec}:1:1: a key that is no word (letters, digits, _, . and -), not quoted here",),
    ),
    Bad(
        "spec-duplicate-key",
        "spec",
        spec_text("name: t\nname: u\n"),
        ("{spec}", "duplicate key 'name'"),
    ),
    Bad(
        "spec-integer-too-long",
        "spec",
        _shown(
            spec_text("name: t\nsuite: SUITE\nmodels: [a]\nsamples_per_case: " + "9" * 5000),
            "run: the spec's samples_per_case is an integer of 5,000 digits",
        ),
        ("{spec}:4:19: not valid YAML: an integer of 5000 digits, more than the 4300 Python",),
    ),
    Bad(
        "spec-not-a-mapping",
        "spec",
        spec_text("- name\n"),
        ("{spec}", "expected a mapping, got list"),
    ),
    Bad("spec-empty-file", "spec", spec_text(""), ("{spec}: the file is empty", "a mapping")),
    Bad(
        "spec-not-utf8",
        "spec",
        spec_text(b"name: t\nsuite: SUITE\nmodels: [caf\xe9]\n"),
        ("{spec}", "line 3: not UTF-8 text"),
    ),
    Bad(
        "spec-file-too-large",
        "spec",
        _shown(
            lambda w: ["plan", str(w.write_spec(text=_padded(w, MAX_SPEC_BYTES + 1)))],
            "plan: a valid spec with a comment to 1 MiB + 1 byte",
        ),
        ("{spec}", "the spec file is 1,048,577 bytes; at most 1,048,576"),
    ),
    Bad(
        "spec-template-too-long",
        "spec",
        _shown(
            lambda w: ["plan", str(w.write_spec({"templates": {"q": "{input}" + "x" * 262_138}}))],
            "plan: templates: q, {input} and 262,138 more characters",
        ),
        ("{spec}", F.format("templates.q"), "is 262,145 characters; at most 262,144"),
    ),
    Bad(
        "spec-file-missing",
        "spec",
        lambda w: ["run", str(w.root / "nope.yaml")],
        ("{root}/nope.yaml", "cannot read the spec file: No such file or directory"),
    ),
    Bad(
        "spec-file-is-folder",
        "spec",
        lambda w: ["plan", str(w.root)],
        ("{root}", "is a folder; expected a sweep spec file"),
    ),
    Bad(
        "spec-file-named-pipe",
        "spec",
        _shown(
            lambda w: ["run", str(named_pipe(w.root / "fifo.yaml"))], "run …/fifo.yaml (mkfifo)"
        ),
        ("{root}/fifo.yaml", "is a named pipe; expected a sweep spec file"),
    ),
    Bad(
        "spec-suite-named-pipe",
        "spec",
        _shown(
            lambda w: ["plan", str(w.write_spec({"suite": str(named_pipe(w.root / "p.jsonl"))}))],
            "plan: suite: p.jsonl, a named pipe",
        ),
        ("{spec}", F.format("suite"), "{root}/p.jsonl is a named pipe", "the suite's .jsonl"),
    ),
    Bad(
        "spec-pipeline-overlap-not-below-size",
        "spec",
        spec(
            {
                "pipeline": {"name": "map_reduce"},
                "grid": {"chunk_size": [500, 1000], "chunk_overlap": [500]},
            }
        ),
        (
            "{spec}",
            F.format("grid.chunk_overlap"),
            "less than chunk_size",
            "chunk_size=500, chunk_overlap=500",
        ),
    ),
    Bad(  # the newcomer's N6: placed at 1:1 and named 'grid.chunk_overlap'
        "spec-pipeline-block-overlap-not-below-size",
        "spec",
        spec({"pipeline": {"name": "map_reduce", "chunk_size": 100, "chunk_overlap": 100}}),
        (
            "{spec}",
            F.format("pipeline.chunk_overlap"),
            "less than chunk_size; the spec combines",
            "chunk_size=100, chunk_overlap=100",
        ),
        absent=("grid.", ":1:1:"),
    ),
    Bad(
        "spec-pipeline-retrieve-k-zero",
        "spec",
        spec(
            {
                "pipeline": {"name": "rag", "corpus": "tiny.jsonl", "embed_model": "e"},
                "grid": {"retrieve_k": [0, 10]},
            }
        ),
        ("{spec}", F.format("grid.retrieve_k[0]"), "retrieve_k must be in [1, 10000]"),
    ),
    Bad(
        "spec-pipeline-unknown",
        "spec",
        spec({"pipeline": {"name": "mapreduce"}}),
        ("{spec}", F.format("pipeline.name"), "unknown pipeline 'mapreduce'", "map_reduce"),
    ),
    Bad(
        "spec-pipeline-import-fails",
        "spec",
        spec({"pipeline": {"name": "no_such_package.analyses:thorough"}}),
        ("{spec}", F.format("pipeline.name"), "cannot import no_such_package.analyses"),
    ),
    Bad(
        "spec-pipeline-not-async",
        "spec",
        spec({"pipeline": {"name": "tests.support.user_pipelines:not_async"}}),
        ("{spec}", F.format("pipeline.name"), "is not an async function"),
    ),
    Bad(
        "spec-pipeline-undeclared-parameter",
        "spec",
        spec(
            {
                "pipeline": {"name": "tests.support.user_pipelines:thorough", "passes": 2},
                "grid": {"chunk_size": [100], "retrieve_k": [5]},
            }
        ),
        (
            "{spec}",
            F.format("grid.retrieve_k"),
            "does not declare parameter 'retrieve_k'",
            "passes, chunk_size",
        ),
    ),
    Bad(
        "spec-pipeline-parameter-without-pipeline",
        "spec",
        spec(
            {"pipeline": {"name": "sections", "sections": {"a": "{document}"}, "chunk_size": 100}}
        ),
        ("{spec}", F.format("pipeline.chunk_size"), "does not declare parameter 'chunk_size'"),
    ),
]


def _sparse_suite(w: World) -> list[str]:
    """A spec whose suite's cases file is one byte past the bound, written sparse: the
    loader refuses it by its size, reading none of it (newcomer S8)."""
    w.broken_suite()
    with w.suite.open("r+b") as cases:
        cases.truncate(MAX_SUITE_BYTES + 1)
    return ["plan", str(w.spec)]


DEEP = "[" * 5000 + "]" * 5000  # 10 KB; Python's decoder raised RecursionError (exit 1)
HUGE = "9" * 100_000  # more digits than Python converts: a ValueError, exit 1 (S1)

SUITE_CASES = [
    Bad(
        "suite-invalid-json", "suite", suite(cases=['{"id": "c1",']), ("{suite}:1", "invalid JSON")
    ),
    Bad(
        "suite-case-nested-too-deep",
        "suite",
        _shown(
            lambda w: ["plan", str(w.broken_suite(cases=[f'{{"id": "c1", "metadata": {DEEP}}}']))],
            "plan, suite with a case whose metadata is 5000 nested lists (10 KB)",
        ),
        ("{suite}:1", "invalid JSON: nested deeper than 64 levels"),
    ),
    Bad(
        "suite-case-integer-too-long",
        "suite",
        _shown(
            lambda w: [
                "plan",
                str(w.broken_suite(cases=[f'{{"id": "c1", "metadata": {{"n": {HUGE}}}}}'])),
            ],
            "plan, suite with a case whose metadata holds an integer of 100,000 digits",
        ),
        ("{suite}:1", "invalid JSON: an integer of 100000 digits, more than the 4300 Python"),
    ),
    Bad(
        "suite-file-too-large",
        "suite",
        _shown(_sparse_suite, "plan, a suite's cases file of 512 MiB + 1 byte (sparse)"),
        ("{suite}: the suite's cases file is 536,870,913 bytes; at most 536,870,912",),
    ),
    Bad(
        "suite-too-many-cases",
        "suite",
        _shown(
            lambda w: ["plan", str(w.broken_suite(cases=["{}"] * (MAX_CASES + 1)))],
            "plan, a suite of 1,000,001 lines '{}'",
        ),
        ("{suite}: the suite has 1,000,001 cases; at most 1,000,000",),
    ),
    Bad(
        "suite-case-number-not-finite",
        "suite",
        _shown(
            lambda w: [
                "plan",
                str(w.broken_suite(cases=['{"id": "c1", "metadata": {"n": 1e400, "m": NaN}}'])),
            ],
            "plan, suite with a case whose metadata holds 1e400 (and NaN)",
        ),
        ("{suite}:1", "invalid JSON: 1e400 is not a finite number (JSON has none"),
    ),
    Bad(
        "suite-line-not-object",
        "suite",
        suite(cases=['["c1"]']),
        ("{suite}:1", "expected a JSON object"),
    ),
    Bad(
        "suite-id-missing",
        "suite",
        suite(cases=[case(id=...)]),
        ("{suite}:1", F.format("id"), "required key is missing"),
    ),
    Bad(
        "suite-id-number",
        "suite",
        suite(cases=[case(id=7)]),
        ("{suite}:1", F.format("id"), "expected a non-empty string, got 7"),
    ),
    Bad(
        "suite-id-duplicate",
        "suite",
        suite(cases=[case(), case()]),
        ("{suite}:2", F.format("id"), "duplicate id 'c1'"),
    ),
    Bad(
        "suite-duplicate-key",
        "suite",
        suite(cases=['{"id": "z1", "id": "z2", "input": "What is 2 + 2?", "references": ["4"]}']),
        ("{suite}:1", "duplicate key 'id'"),
    ),
    Bad(
        "suite-near-miss-key",
        "suite",
        suite(cases=[case(metdata={"source": "x"})]),
        ("{suite}:1", F.format("metdata"), "did you mean 'metadata'?"),
    ),
    Bad(
        "suite-qa-no-references",
        "suite",
        suite(cases=[case(references=...)]),
        ("{suite}:1", F.format("references"), "required for qa suites"),
    ),
    Bad(
        "suite-input-empty",
        "suite",
        suite(cases=[case(input="")]),
        ("{suite}:1", F.format("input"), "got an empty string"),
    ),
    Bad(
        "suite-chat-no-user",
        "suite",
        suite(cases=[case(input=[{"role": "system", "content": "x"}])]),
        ("{suite}:1", F.format("input"), "role 'user'"),
    ),
    Bad(
        "suite-message-bad-role",
        "suite",
        suite(cases=[case(input=[{"role": "bot", "content": "x"}])]),
        ("{suite}:1", F.format("input[0].role"), 'got "bot"'),
    ),
    Bad(
        "suite-metadata-not-object",
        "suite",
        suite(cases=[case(metadata=[1])]),
        ("{suite}:1", F.format("metadata"), "expected an object"),
    ),
    Bad(
        "suite-label-not-in-labels",
        "suite",
        suite(cases=[{"id": "c1", "input": "x", "label": "maybe"}], sidecar=CLS_SIDECAR),
        ("{suite}:1", F.format("label"), "one of the suite's labels (yes, no)"),
    ),
    Bad(
        "suite-not-utf8",
        "suite",
        suite(raw=b'{"id": "c1", "input": "caf\xe9"}\n'),
        ("{suite}:1", "not UTF-8 text"),
    ),
    Bad("suite-empty", "suite", suite(cases=[]), ("{suite}", "the suite has no cases")),
    Bad(
        "suite-sidecar-missing",
        "suite",
        lambda w: ["run", str(w.write_spec({"suite": str(_no_sidecar(w))}))],
        ("missing sidecar", "tiny.suite.yaml"),
    ),
    Bad(
        "suite-sidecar-named-pipe",
        "suite",
        _shown(
            lambda w: ["run", str(w.write_spec({"suite": str(_piped_sidecar(w))}))],
            "run: the suite's tiny.suite.yaml is a named pipe",
        ),
        ("lonely/tiny.suite.yaml", "the suite's sidecar is a named pipe, not a file"),
    ),
    Bad(
        "suite-documents-named-pipe",
        "suite",
        _shown(
            lambda w: _piped_documents(w),
            "run: the sidecar's documents: d.jsonl is a named pipe",
        ),
        ("broken/d.jsonl", "cannot read the documents file: is a named pipe, not a regular file"),
    ),
    Bad(
        "suite-sidecar-invalid-yaml",
        "suite",
        suite(sidecar="name: [tiny\n"),
        ("{sidecar}", "invalid YAML"),
    ),
    Bad(
        "suite-sidecar-task-type",
        "suite",
        suite(sidecar=QA_SIDECAR | {"task_type": "translation"}),
        ("{sidecar}", F.format("task_type"), 'got "translation"'),
    ),
    Bad(
        "suite-sidecar-version-float",
        "suite",
        suite(sidecar="name: tiny\nversion: 1.10\ntask_type: qa\ndefault_metrics: [exact_match]\n"),
        ("{sidecar}", F.format("version"), "quote it"),
    ),
    Bad(
        "suite-sidecar-unknown-key",
        "suite",
        suite(sidecar=QA_SIDECAR | {"lables": ["a", "b"]}),
        ("{sidecar}", F.format("lables"), "did you mean 'labels'?"),
    ),
    Bad(
        "suite-sidecar-metric-task-type",
        "suite",
        suite(sidecar=QA_SIDECAR | {"default_metrics": ["accuracy"]}),
        ("{sidecar}", F.format("default_metrics[0]"), "'accuracy' cannot score a qa suite"),
    ),
    Bad(
        "suite-sidecar-metric-unknown",
        "suite",
        suite(sidecar=QA_SIDECAR | {"default_metrics": ["exact_mach"]}),
        ("{sidecar}", F.format("default_metrics[0]"), "did you mean 'exact_match'?"),
    ),
    Bad(
        "suite-documents-generator-unknown",
        "suite",
        suite(
            sidecar=QA_SIDECAR | {"documents": {"generator": "novels", "seed": 1, "words": [500]}}
        ),
        ("{sidecar}", F.format("documents.generator"), "annual-reports"),
    ),
    Bad(
        "suite-document-id-unknown",
        "suite",
        suite(
            cases=[case(metadata={"document_id": "report-09"})],
            sidecar=QA_SIDECAR
            | {"documents": {"generator": "annual-reports", "seed": 1, "words": [500]}},
        ),
        ("{suite}:1", F.format("metadata.document_id"), "'report-09' is not a document"),
    ),
    Bad(
        "suite-sidecar-labels-on-qa",
        "suite",
        suite(sidecar=QA_SIDECAR | {"labels": ["a", "b"]}),
        ("{sidecar}", F.format("labels"), "only to classification suites"),
    ),
    Bad(
        "suite-sidecar-one-label",
        "suite",
        suite(
            cases=[{"id": "c1", "input": "x", "label": "yes"}],
            sidecar=CLS_SIDECAR | {"labels": ["yes"]},
        ),
        ("{sidecar}", F.format("labels"), "at least two labels"),
    ),
    Bad(
        "suite-wrong-extension",
        "suite",
        lambda w: ["run", str(w.write_spec({"suite": str(_renamed(w, "cases.txt"))}))],
        ("cases.txt", "expected a suite's .jsonl file"),
    ),
    Bad(
        "suite-code-test-not-python",
        "suite",
        suite(
            cases=[
                {
                    "id": "c1",
                    "input": "Write f.",
                    "metadata": {
                        "entry_point": "f",
                        "tests": ["assert f(1) == 2", "assert f(1 =="],
                    },
                }
            ],
            sidecar=CODE_SIDECAR,
        ),
        ("{suite}:1", F.format("metadata.tests[1]"), "not valid Python", "line 1 of the code"),
    ),
]

CLI_CASES = [
    Bad(
        "cli-unknown-command",
        "cli",
        lambda w: ["rnu"],
        ("evalflow: argument command: invalid choice: 'rnu'",),
    ),
    Bad(
        "cli-run-no-spec",
        "cli",
        lambda w: ["run"],
        ("evalflow run: the following arguments are required: spec",),
    ),
    Bad(
        "cli-unknown-option",
        "cli",
        lambda w: ["plan", str(w.spec), "--fast"],
        ("evalflow plan: unrecognized arguments: --fast",),
    ),
    Bad(
        "cli-plan-limit-zero",
        "cli",
        lambda w: ["plan", str(w.spec), "--limit", "0"],
        ("argument --limit: expected a whole number >= 1, got '0'",),
    ),
    Bad(
        "cli-plan-level-unknown",
        "cli",
        lambda w: ["plan", str(w.spec), "--level", "huge"],
        ("argument --level: invalid choice: 'huge'",),
    ),
    Bad(
        "cli-time-scale-text",
        "cli",
        lambda w: ["run", str(w.spec), "--time-scale", "fast"],
        ("argument --time-scale: expected a number >= 0 and <= 100, got 'fast'",),
    ),
    Bad(
        "cli-export-format",
        "cli",
        lambda w: ["export", "demo", "--format", "xml"],
        ("argument --format: invalid choice: 'xml'",),
    ),
    Bad(
        "cli-power-delta-negative",
        "cli",
        lambda w: ["power", str(w.spec), "--delta", "-0.1"],
        ("argument --delta", "expected a number > 0"),
    ),
    Bad(
        "cli-review-port-text",
        "cli",
        lambda w: ["review", "demo", "--port", "http"],
        ("argument --port: expected a port number 1-65535, got 'http'",),
    ),
    Bad("cli-recommend-task-type", "cli", lambda w: ["recommend", "poetry"], ("poetry",)),
    Bad(
        "cli-show-unknown-experiment",
        "cli",
        lambda w: ["show", "nope"],
        ("no experiment named 'nope'", "demo"),
    ),
    Bad(
        "cli-view-unknown-experiment",
        "cli",
        lambda w: ["view", "nope"],
        ("no experiment named 'nope'", "demo"),
    ),
    Bad(
        "cli-status-unknown-experiment",
        "cli",
        lambda w: ["status", "nope"],
        ("no experiment named 'nope'", "demo"),
    ),
    Bad(
        "cli-export-unknown-experiment",
        "cli",
        lambda w: ["export", "nope", "--out", str(w.root)],
        ("no experiment named 'nope'",),
    ),
    Bad(
        "cli-database-not-a-url",
        "cli",
        lambda w: ["--database", "results.db", "experiments"],
        ("--database 'results.db': expected a SQLAlchemy URL",),
    ),
]

ENV_CASES = [
    Bad(
        "env-ollama-host-port",
        "env",
        spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='gpu-a:port'", "invalid port"),
        {"OLLAMA_HOST": "gpu-a:port"},
    ),
    Bad(
        "env-ollama-host-scheme",
        "env",
        spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='ftp://gpu-a'", "http:// or https://"),
        {"OLLAMA_HOST": "ftp://gpu-a"},
    ),
    Bad(
        "env-database-url-not-url",
        "env",
        lambda w: ["experiments"],
        ("EVALFLOW_DATABASE_URL='results.db'", "expected a SQLAlchemy URL"),
        {"EVALFLOW_DATABASE_URL": "results.db"},
    ),
    Bad(
        "env-database-url-dialect",
        "env",
        lambda w: ["experiments"],
        ("cannot open the results database nosuchdb://x/y",),
        {"EVALFLOW_DATABASE_URL": "nosuchdb://x/y"},
    ),
    Bad(
        "env-home-is-a-file",
        "env",
        lambda w: ["experiments"],
        ("EVALFLOW_HOME=", "expected a folder, but it is a file"),
        {"EVALFLOW_HOME": "{spec}", "EVALFLOW_DATABASE_URL": ""},
    ),
    Bad(  # by a run, its first writer: a command that only reads makes no home
        "env-home-cannot-be-created",
        "env",
        spec({}, "run"),
        ("EVALFLOW_HOME='/proc/evalflow/home'", "cannot create the results folder"),
        {"EVALFLOW_HOME": "/proc/evalflow/home", "EVALFLOW_DATABASE_URL": ""},
    ),
]


def on_web_server(kind: str = "", path: str = "") -> Callable[[World], list[str]]:
    """`run` on a spec whose host's URL is another web server's (``path`` after it)."""

    def argv(w: World) -> list[str]:
        host = {"name": "local", "url": w.web_url + path} | ({"kind": kind} if kind else {})
        return ["run", str(w.write_spec({"models": ["m"], "hosts": [host]}))]

    what = f"kind: {kind}" if kind else "no kind"
    return _shown(argv, f"run: a host URL{path} on another web server's port, {what}")


HOST_CASES = [
    Bad(
        "host-simulated-lacks-model",
        "spec",
        spec({"models": ["nosuch:1b"]}, "plan"),
        ("host 'sim' (simulated://local) does not have 'nosuch:1b'", "sim-small:1b"),
    ),
    Bad(
        "host-simulated-lacks-model-run",
        "spec",
        spec({"models": ["nosuch:1b"]}),
        ("does not have 'nosuch:1b'",),
    ),
    Bad(
        "host-closed-port",
        "spec",
        lambda w: [
            "run",
            str(
                w.write_spec(
                    {
                        "models": ["llama3.2:1b"],
                        "hosts": [{"name": "gpu", "url": f"http://127.0.0.1:{_closed_port()}"}],
                    }
                )
            ),
        ],
        (
            "{spec}",
            F.format("hosts[0].url"),
            "cannot reach any host for model 'llama3.2:1b'",
            "GET http://127.0.0.1:",
            "/api/tags",
            "ollama serve",
            "OLLAMA_HOST",
            "evalflow doctor",
        ),
    ),
    Bad(
        "host-ollama-host-closed",
        "env",
        spec({"models": ["llama3.2:1b"], "hosts": ...}),
        ("{spec}", "cannot reach any host", "GET http://127.0.0.1:9/api/tags"),
        {"OLLAMA_HOST": "127.0.0.1:9"},
    ),
    Bad(
        "host-other-web-server",
        "spec",
        on_web_server(kind="openai"),
        (
            "{spec}",
            F.format("hosts[0].url"),
            "/v1/models answered HTTP 404 (an HTML page titled 'Not Found: evalflow view')",
            "no OpenAI-compatible API at this url; check the port",
        ),
    ),
    Bad(
        "host-other-web-server-no-kind",
        "spec",
        on_web_server(),
        (
            "{spec}",
            F.format("hosts[0].url"),
            "/api/tags answered HTTP 404 (an HTML page titled 'Not Found: evalflow view'), "
            "/v1/models too: no Ollama or OpenAI-compatible API at this url; check the port",
        ),
        absent=("kind: openai", "<html", "<!doctype"),
    ),
    Bad(
        "host-url-endpoint-path",
        "spec",
        on_web_server(kind="openai", path="/v1/chat/completions"),
        (
            "{spec}",
            F.format("hosts[0].url"),
            "/v1/chat/completions/v1/models answered HTTP 404",
            "the url has a path (/v1/chat/completions): give the server's root, "
            "e.g. http://127.0.0.1:",
        ),
    ),
    Bad(
        "judge-url-other-web-server",
        "judge",
        lambda w: ["judge", "demo", "--url", w.web_url, "--model", "judge:1b"],
        (
            "/api/tags answered HTTP 404 (an HTML page titled 'Not Found: evalflow view')",
            "no Ollama or OpenAI-compatible API at this url; check the port",
        ),
    ),
    Bad(
        "judge-reply-not-json",
        "judge",
        lambda w: ["judge", "demo", "--url", w.judge_url, "--model", "judge:1b"],
        # a web server's 200 page (newcomers' F3: it read "not JSON: '<html>...'")
        ("/api/tags answered an HTML page: no Ollama API at this url", "check the port"),
    ),
    Bad(
        "judge-host-closed",
        "judge",
        lambda w: _judge_closed_host(),
        (
            "cannot reach the judge host http://127.0.0.1:",
            "(--url): could not connect to 127.0.0.1:",
            "ollama serve",
            "--url or OLLAMA_HOST",
        ),
    ),
    Bad(  # the newcomer's N5: `--kind openai` was told to start Ollama
        "judge-host-closed-openai",
        "judge",
        lambda w: _judge_closed_host("--kind", "openai"),
        (
            "cannot reach the judge host http://127.0.0.1:",
            "(--url): could not connect to 127.0.0.1:",
            "start the OpenAI-compatible server there (llama.cpp's `llama-server`",
            "`vllm serve`), or name the judge's host with --url",
        ),
        absent=("ollama serve",),
    ),
]

DATABASE_CASES = [
    Bad(
        "db-older-schema",
        "database",
        lambda w: ["--database", _old_database(w), "experiments"],
        ("written by an older evalflow", "experiments."),
    ),
    Bad(
        "db-older-schema-show",
        "database",
        lambda w: ["--database", _old_database(w), "show", "demo"],
        ("written by an older evalflow",),
    ),
    Bad(
        "db-file-not-there",
        "database",
        lambda w: ["--database", f"sqlite:///{w.root / 'typo.db'}", "recommend", "qa"],
        ("--database: no results database at", "typo.db", "evalflow run SPEC"),
    ),
    Bad(
        "db-read-only-folder-writer",
        "database",
        lambda w: ["--database", _shared_copy(w), "baseline", "accept", "demo"],
        (
            "cannot open the results database {root}/shared/evalflow.db: its folder is read-only",
            "evalflow.db-wal and evalflow.db-shm",
            "copy the database to a folder you may write",
        ),
        read_only="shared",
    ),
    Bad(
        "db-read-only-folder-withdraw",
        "database",
        lambda w: ["--database", _shared_copy(w), "baseline", "withdraw", "demo"],
        (
            "cannot open the results database {root}/shared/evalflow.db: its folder is read-only",
            "copy the database to a folder you may write",
        ),
        read_only="shared",
    ),
    Bad(
        "db-read-only-folder-wal-changes",
        "database",
        lambda w: [
            "--database",
            _shared_copy(w, wal=b"\x37\x7f\x06\x82" + bytes(28)),
            "show",
            "demo",
        ],
        (
            "{root}/shared/evalflow.db: its folder is read-only and evalflow.db-wal beside it "
            "holds changes not yet in the database",
        ),
        read_only="shared",
    ),
    Bad(
        "db-read-only-older",
        "database",
        lambda w: ["--database", _read_only_older(w), "series"],
        (
            "the results database file:{root}/older.db lacks table series_calibrated_nights, which "
            "this evalflow adds to a database it opens",
            "and it is read-only",
            "open it once where it may be written",
        ),
    ),
    Bad(
        "db-url-mode-ro-writer",
        "database",
        lambda w: [
            "--database",
            f"sqlite:///file:{w.db_path}?mode=ro&uri=true",
            "run",
            str(w.spec),
        ],
        (
            "the results database file:{root}/results.db: it is read-only (attempt to write a "
            "readonly database): its URL opens it read-only (mode=ro); drop mode=ro from the URL",
        ),
        absent=("check the permissions",),
    ),
    Bad(
        "db-url-mode-ro-withdraw",
        "database",
        lambda w: ["--database", _demo_accepted_read_only(w), "baseline", "withdraw", "demo"],
        (
            "the results database file:{root}/results.db: it is read-only (attempt to write a "
            "readonly database): its URL opens it read-only (mode=ro); drop mode=ro from the URL",
        ),
    ),
    Bad(
        "db-another-applications",
        "database",
        lambda w: ["--database", _another_applications(w), "run", str(w.spec)],
        (
            "the database {root}/prefect.db holds 1 table, none of them evalflow's (flow_run)",
            "another application's database?",
            "--database or EVALFLOW_DATABASE_URL",
            "EVALFLOW_SHARE_DATABASE=1",
        ),
    ),
    Bad(
        "db-another-applications-show",
        "database",
        lambda w: ["--database", _another_applications(w), "show", "demo"],
        ("the database {root}/prefect.db holds 1 table, none of them evalflow's",),
    ),
    Bad(
        "db-another-applications-same-name",
        "database",
        lambda w: [
            "--database",
            _another_applications(w, "experiments", "experiment_id"),
            "experiments",
        ],
        ("the database {root}/prefect.db holds 1 table, none of them evalflow's (experiments)",),
    ),
    Bad(
        "db-another-applications-key-alike",
        "database",
        lambda w: [
            "--database",
            _another_applications(w, "experiments", "id", beside="notes"),
            "show",
            "demo",
        ],
        (
            "the database {root}/prefect.db holds 2 tables, none of them evalflow's "
            "(experiments, notes): another application's database?",
        ),
        absent=("older evalflow",),
    ),
    Bad(
        "env-database-another-applications",
        "env",
        lambda w: [_another_applications(w) and "retrain"],
        ("the database {root}/prefect.db holds 1 table, none of them evalflow's",),
        {"EVALFLOW_DATABASE_URL": "sqlite:///{root}/prefect.db"},
    ),
    Bad(  # the newcomer's N10 (recheck R2): it was set to WAL, then "an older evalflow"
        "env-share-database-name-taken",
        "env",
        lambda w: [
            "--database",
            _another_applications(w, "experiments", "id", beside="notes"),
            "experiments",
        ],
        (
            "the database {root}/prefect.db holds another application's table named as "
            "evalflow's (experiments): EVALFLOW_SHARE_DATABASE=1 adds evalflow's tables beside",
            "--database or EVALFLOW_DATABASE_URL",
        ),
        {"EVALFLOW_SHARE_DATABASE": "1"},
        absent=("older evalflow",),
    ),
    Bad(
        "env-share-database-not-yes-no",
        "env",
        lambda w: ["--database", _another_applications(w), "experiments"],
        ("environment variable EVALFLOW_SHARE_DATABASE='perhaps': expected 1",),
        {"EVALFLOW_SHARE_DATABASE": "perhaps"},
    ),
    Bad(
        "env-database-file-not-there",
        "env",
        lambda w: ["retrain"],
        ("EVALFLOW_DATABASE_URL: no results database at", "missing.db"),
        {"EVALFLOW_DATABASE_URL": "sqlite:////tmp/evalflow-bad-input-missing.db"},
    ),
]

# --- Every verb and option (issue 26 §2): one bad value per option, through the parser's
# option kinds (flows/cli/options.py) or the verb's own check. ---

SIM_HEAD = (
    "name: t\nsuite: SUITE\nmodels: [sim-small:1b]\n"
    "hosts: [{name: sim, url: 'simulated://local', kind: simulated}]\n"
)  # four lines: a case's own lines start at line 5


def spec_lines(text: str, command: str = "run") -> Callable[[World], list[str]]:
    """A spec of ``SIM_HEAD`` and ``text`` (its lines are 5, 6, ...)."""

    def argv(w: World) -> list[str]:
        w.spec.write_text((SIM_HEAD + text).replace("SUITE", str(w.suite)))
        return [command, str(w.spec)]

    return _shown(argv, f"{command}: the spec ends {text!r}")


def _user_module(w: World, name: str, source: str) -> str:
    """A user pipeline module ``name`` in the world's folder (on sys.path)."""
    (w.root / f"{name}.py").write_text(source)
    return f"{name}:analyse"


def user_pipeline(name: str, source: str) -> Callable[[World], list[str]]:
    def argv(w: World) -> list[str]:
        changes = {"pipeline": {"name": _user_module(w, name, source)}}
        return ["run", str(w.write_spec(changes))]

    return _shown(argv, f"run: pipeline {name}:analyse, whose module is {source!r}")


def rag_corpus(
    text: str, embed_model: str = "sim-small:1b", **changes: Any
) -> Callable[[World], list[str]]:
    """A rag pipeline whose corpus file holds ``text``."""

    def argv(w: World) -> list[str]:
        (w.root / "corpus.jsonl").write_text(text)
        pipeline = {"name": "rag", "corpus": "corpus.jsonl", "embed_model": embed_model}
        return ["run", str(w.write_spec({"pipeline": pipeline, **changes}))]

    extra = f", embed_model {embed_model}" + "".join(f", {k}: {v}" for k, v in changes.items())
    return _shown(argv, f"run: pipeline rag{extra}, its corpus file is {text!r}")


def _listening() -> socket.socket:
    """A socket listening on a free loopback port (the port a command finds in use)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    _HELD.append(sock)
    return sock


class _Pipe:
    """A named pipe at ``path``. A thread opens it to write and closes it at once, so a
    reader that opens it (`run` of a spec that was one waited forever, newcomer F1) reads
    an empty file and fails its case instead of hanging the suite; ``close`` lets go of
    a writer nobody read."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.writer = threading.Thread(target=lambda: open(path, "wb").close(), daemon=True)
        self.writer.start()
        _HELD.append(self)

    def close(self) -> None:
        while self.writer.is_alive():  # its open returns once the pipe has a reader
            os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
            self.writer.join(0.05)


def named_pipe(path: Path) -> Path:
    _Pipe(path)
    return path


_HELD: list[socket.socket | _Pipe] = []


def busy_port(*argv: str) -> Callable[[World], list[str]]:
    def build(w: World) -> list[str]:
        port = str(_listening().getsockname()[1])
        return [a.replace("PORT", port) for a in argv]

    return _shown(build, f"`{' '.join(argv)}` on a port another program listens on")


def cli(*argv: str) -> Callable[[World], list[str]]:
    """argv with SPEC, ROOT and FILE (an existing file) filled in."""

    def build(w: World) -> list[str]:
        places = {"SPEC": str(w.spec), "ROOT": str(w.root), "FILE": str(w.suite)}
        out = []
        for a in argv:
            for name, value in places.items():
                a = a.replace(name, value)
            out.append(a)
        return out

    shown = " ".join(
        a.replace("SPEC", "…/spec.yaml").replace("ROOT", "…").replace("FILE", "…/tiny.jsonl")
        for a in argv
    )
    return _shown(build, f"`{shown}`")


def with_experiment(name: str, *argv: str) -> Callable[[World], list[str]]:
    """argv, with a second experiment ``name`` stored beside ``demo`` first (one config,
    "big:8b", on demo's suite)."""

    def build(w: World) -> list[str]:
        engine = make_engine(w.db)
        with session_scope(engine) as session:
            scores = {make_config("big:8b"): {"exact_match": [1.0, 1.0, 1.0]}}
            add_experiment(session, name, make_suite(3), scores)
        engine.dispose()
        return list(argv)

    return _shown(build, f"`{' '.join(argv)}` (an experiment {name} stored beside demo)")


def _scored_by_a_scorer_gone(w: World, verb: str) -> list[str]:
    """``VERB gone``, an experiment ``gone`` stored first, scored by a user's scorer
    (``gone_checks:words``) whose module has gone since; no declaration of it is stored
    (an older evalflow scored it)."""
    module = w.root / "gone_checks.py"
    module.write_text(
        "from evaluation.metrics import scorer\n\n"
        "@scorer(score_type='continuous', higher_is_better=False)\n"
        "def words(case, output):\n    return float(len(output.split()))\n"
    )
    _user._loaded.cache_clear()
    sys.path.insert(0, str(w.root))  # importable while it scores, wherever the world is
    try:
        engine = make_engine(w.db)
        with session_scope(engine) as session:
            scores = {make_config("big:8b"): {"gone_checks:words": [1.0, 2.0, 1.0]}}
            add_experiment(session, "gone", make_suite(3), scores)
        engine.dispose()
    finally:
        sys.path.remove(str(w.root))
    module.unlink()
    sys.modules.pop("gone_checks", None)
    importlib.invalidate_caches()
    _user._loaded.cache_clear()
    return [verb, "gone"]


def _named_for_another(w: World) -> list[str]:
    """`run SPEC` of a spec named ``other``, an experiment ``other`` stored first that spec
    ``demo`` ran (``run demo.yaml --experiment other``)."""
    engine = make_engine(w.db)
    with session_scope(engine) as session:
        scores = {make_config("big:8b"): {"exact_match": [1.0, 1.0, 1.0]}}
        add_experiment(session, "other", make_suite(3), scores).spec = {"name": "demo"}
    engine.dispose()
    return ["run", str(w.write_spec({"name": "other"}))]


def gate_pair(
    *argv: str,
    metric: str = "exact_match",
    base_status: str = "completed",
    temperatures: tuple[float, ...] = (0.0,),
    cand_num_predict: int | None = None,
    base_scored: bool = True,
    scored_apart: bool = False,
    cand_metric: str | None = None,
) -> Callable[[World], list[str]]:
    """`gate cand --baseline base` plus argv, with two runs of demo's config on demo's
    suite stored first (``base`` right on 2 of 3 cases, ``cand`` on none; scored on
    ``metric``; ``cand`` completed, ``base`` of ``base_status``); one config a temperature
    of ``temperatures``, the candidate's with ``cand_num_predict`` where given; ``base``
    with no score where not ``base_scored``; where ``scored_apart``, ``base`` scored only
    on the case ``cand`` did not run; ``cand`` scored on ``cand_metric`` where given."""

    def build(w: World) -> list[str]:
        engine = make_engine(w.db)
        base = [make_config(temperature=t) for t in temperatures]
        cand = base
        if cand_num_predict is not None:
            cand = [
                Config(c.model, replace(c.params, num_predict=cand_num_predict), c.template)
                for c in base
            ]
        right = [1.0, 0.0, 1.0] if base_scored else [None, None, None]
        wrong: list[object] = [0.0] * 3
        if scored_apart:
            right, wrong = [None, None, 1.0], [0.0, 0.0, MISSING]
        with session_scope(engine) as session:
            for name, configs, values in (("base", base, right), ("cand", cand, wrong)):
                scored = cand_metric if cand_metric and name == "cand" else metric
                scores = {c: {scored: values} for c in configs}
                run = add_experiment(session, name, make_suite(3), scores)
                run.status = base_status if name == "base" else "completed"
        engine.dispose()
        return [
            "gate",
            "cand",
            "--baseline",
            "base",
            *(a.replace("ROOT", str(w.root)) for a in argv),
        ]

    shown = " ".join(a.replace("ROOT", "…") for a in argv)
    scored = f", scored on {metric}" if metric != "exact_match" else ""
    stored = "two completed runs" if base_status == "completed" else f"base {base_status}"
    if len(temperatures) > 1:
        stored += f" of temperatures {', '.join(f'{t:g}' for t in temperatures)}"
    if cand_num_predict is not None:
        stored += f", cand's num_predict {cand_num_predict}"
    if not base_scored:
        stored += ", base never scored"
    if scored_apart:
        stored += ", base scored only on the case cand did not run"
    if cand_metric:
        stored += f", cand scored on {cand_metric} only"
    return _shown(build, f"`gate cand --baseline base {shown}` ({stored} stored{scored})")


def opt(case_id: str, *argv: str, expect: str, **kw: Any) -> Bad:
    """A bad option value, refused by the parser naming the option."""
    return Bad(case_id, "cli", cli(*argv), (expect,), **kw)


def _deep_ratings(w: World) -> list[str]:
    path = w.root / "ratings.jsonl"
    path.write_text(f'{{"case": "c000", "notes": {DEEP}}}\n')
    return ["import-ratings", "demo", str(path)]


def _sparse_ratings(w: World) -> list[str]:
    """A ratings file one byte past the bound, written sparse: refused by its size, none
    of it read (a 200 MB value was read to 1.3 GB, then exit 1: newcomers' E2)."""
    path = w.root / "ratings.csv"
    with path.open("wb") as ratings:
        ratings.truncate(MAX_RATINGS_BYTES + 1)
    return ["import-ratings", "demo", str(path)]


def _many_ratings(w: World) -> list[str]:
    """One rating more than a file holds (2,000,000 ran past 300 s at 2 GB: E3)."""
    path = w.root / "ratings.csv"
    rows = "".join(f"c000,m:1b t=0,r{i},accuracy,4\n" for i in range(MAX_RATINGS + 1))
    path.write_text("case,config,rater,criterion,stars\n" + rows)
    return ["import-ratings", "demo", str(path)]


def _long_value_ratings(w: World) -> list[str]:
    """A value past csv's most (it was `evalflow failed: Error: field larger than field
    limit (131072) (not a problem with your input ...)`, exit 1: E2)."""
    path = w.root / "ratings.csv"
    long = '"' + "x" * 200_000 + '"'
    path.write_text(
        "case,config,rater,criterion,stars\nc000,m:1b t=0,ana,accuracy,5\n"
        f"{long},m:1b t=0,ana,accuracy,4\n"
    )
    return ["import-ratings", "demo", str(path)]


def ratings_file(text: str) -> Callable[[World], list[str]]:
    """`import-ratings demo` of a ratings.csv holding ``text``."""

    def argv(w: World) -> list[str]:
        path = w.root / "ratings.csv"
        path.write_text(text)
        return ["import-ratings", "demo", str(path)]

    return _shown(argv, f"`import-ratings demo …/ratings.csv` of {text!r}")


OPTION_CASES = [
    opt("opt-plan-experiment-name", "plan", "SPEC", "--experiment", "My Run!",
        expect="argument --experiment: expected an experiment name of [a-z0-9-]+"),
    opt("opt-plan-limit-negative", "plan", "SPEC", "--limit", "-2",
        expect="argument --limit: expected a whole number >= 1, got '-2'"),
    opt("opt-run-experiment-name", "run", "SPEC", "--experiment", "My Run!",
        expect="argument --experiment: expected an experiment name of [a-z0-9-]+"),
    opt("opt-run-experiment-name-too-long", "run", "SPEC", "--experiment", "a" * 300,
        expect="argument --experiment: expected an experiment name of at most 100 characters"),
    opt("opt-run-time-scale-negative", "run", "SPEC", "--time-scale", "-1",
        expect="argument --time-scale: expected a number >= 0 and <= 100, got '-1'"),
    opt("opt-plan-time-scale-negative", "plan", "SPEC", "--time-scale", "-1",
        expect="argument --time-scale: expected a number >= 0 and <= 100, got '-1'"),
    opt("opt-run-time-scale-huge", "run", "SPEC", "--time-scale", "1e20",
        expect="argument --time-scale: expected a number >= 0 and <= 100, got '1e20'"),
    opt("opt-run-time-scale-nan", "run", "SPEC", "--time-scale", "nan",
        expect="argument --time-scale: expected a number >= 0 and <= 100, got 'nan'"),
    opt("opt-run-time-scale-inf", "run", "SPEC", "--time-scale", "inf",
        expect="argument --time-scale: expected a number >= 0 and <= 100, got 'inf'"),
    opt("opt-run-interrupt-wait-negative", "run", "SPEC", "--interrupt-wait", "-1",
        expect="argument --interrupt-wait: expected a number >= 0, got '-1'"),
    opt("opt-run-workers-zero", "run", "SPEC", "--workers", "0",
        expect="argument --workers: expected a whole number >= 1, got '0'"),
    opt("opt-run-workers-huge", "run", "SPEC", "--workers", "65",
        expect="argument --workers: expected a whole number from 1 to 64, got '65'"),
    opt("opt-run-limit-text", "run", "SPEC", "--limit", "ten",
        expect="argument --limit: expected a whole number >= 1, got 'ten'"),
    opt("opt-run-level-unknown", "run", "SPEC", "--level", "everything",
        expect="argument --level: invalid choice: 'everything'"),
    opt("opt-rescore-metrics-empty", "rescore", "demo", "--metrics", " ",
        expect="argument --metrics: expected comma-separated names, none empty"),
    opt("opt-rescore-metrics-empty-name", "rescore", "demo", "--metrics", "rougeL,,chrf",
        expect="argument --metrics: expected comma-separated names, none empty"),
    opt("opt-rescore-metrics-twice", "rescore", "demo", "--metrics", "chrf,chrf",
        expect="argument --metrics: expected each name once (chrf given twice)"),
    opt("opt-rescore-first-empty", "rescore", "demo", "--first", " ",
        expect="argument --first: expected non-empty text"),
    opt("opt-view-export-existing-file", "view", "demo", "--export", "FILE",
        expect="argument --export: expected a folder, but it is a file"),
    opt("opt-export-out-existing-file", "export", "demo", "--out", "FILE",
        expect="argument --out: expected a folder, but it is a file"),
    # newcomer F10: `export --out r6.json` made a folder named r6.json (help: a folder);
    # a new folder named as a file is refused, an existing one of that name is taken
    opt("opt-export-out-file-name", "export", "demo", "--out", "ROOT/r6.json",
        expect="argument --out: expected a folder name, not a file's (files are written "
        "into it; this would make a folder named r6.json), e.g. '{root}/r6', got '{root}/r6.json'"),
    opt("opt-view-export-file-name", "view", "demo", "--export", "ROOT/site.html",
        expect="argument --export: expected a folder name, not a file's"),
    opt("opt-export-out-under-a-file", "export", "demo", "--out", "FILE/results",
        expect="argument --out: expected a path under a folder"),
    # a folder named - was made and written into: export writes a file per level, so
    # - is refused rather than read as standard output
    opt("opt-export-out-dash", "export", "demo", "--out", "-",
        expect="argument --out: expected a folder name (- is not standard output here), "
        "got '-'"),
    # '' wrote into the current folder
    opt("opt-export-out-empty", "export", "demo", "--out", "",
        expect="argument --out: expected a folder name, got ''"),
    opt("opt-view-export-dash", "view", "demo", "--export", "-",
        expect="argument --export: expected a folder name (- is not standard output here)"),
    # /proc takes no new folder: root passes the parser's check and was refused when
    # written, in other words ("argument --out /proc/nope: cannot write ...") than the
    # parser's; another user is refused it by the parser as not writable
    Bad("opt-export-out-cannot-create", "cli", cli("export", "demo", "--out", "/proc/nope"),
        ("evalflow export: argument --out: expected a place you may write", "got '/proc/nope'")),
    opt("opt-export-level-unknown", "export", "demo", "--level", "everything",
        expect="argument --level: invalid choice: 'everything'"),
    Bad("opt-report-default-folder-read-only", "cli",
        _shown(lambda w: ["report", "demo"],
               "`report demo` (no --out) with $EVALFLOW_HOME/reports read-only"),
        ("cannot write the report to {root}/home/reports/ (Permission denied): give --out "
         "FILE, or set EVALFLOW_HOME",),
        env={"EVALFLOW_HOME": "{root}/home"}, read_only="home/reports"),
    opt("opt-report-out-folder", "report", "demo", "--out", "ROOT",
        expect="argument --out: expected a file name, not a folder"),
    opt("opt-report-out-missing-folder", "report", "demo", "--out", "ROOT/nope/r.html",
        expect="argument --out: expected a file in an existing folder"),
    opt("opt-compare-adjust-unknown", "compare", "demo", "--adjust", "bonferroni",
        expect="argument --adjust: invalid choice: 'bonferroni'"),
    opt("opt-power-delta-zero", "power", "SPEC", "--delta", "0",
        expect="argument --delta: expected a number > 0, got '0'"),
    opt("opt-power-delta-nan", "power", "SPEC", "--delta", "nan",
        expect="argument --delta: expected a number > 0, got 'nan'"),
    opt("opt-power-alpha-zero", "power", "SPEC", "--delta", "0.1", "--alpha", "0",
        expect="argument --alpha: expected a number > 0 and < 1, got '0'"),
    opt("opt-power-power-one", "power", "SPEC", "--delta", "0.1", "--power", "1",
        expect="argument --power: expected a number > 0 and < 1, got '1'"),
    opt("opt-power-delta-required", "power", "SPEC",
        expect="the following arguments are required: --delta"),
    opt("opt-doctor-timeout-zero", "doctor", "--timeout", "0",
        expect="argument --timeout: expected a number > 0, got '0'"),
    opt("opt-doctor-timeout-negative", "doctor", "SPEC", "--timeout", "-1",
        expect="argument --timeout: expected a number > 0, got '-1'"),
    opt("opt-health-timeout-nan", "health", "--timeout", "nan",
        expect="argument --timeout: expected a number > 0, got 'nan'"),
    opt("opt-serve-nightly-cron", "serve", "--nightly-cron", "every night",
        expect="argument --nightly-cron: expected a cron expression of five fields"),
    opt("opt-serve-nightly-experiment", "serve", "--nightly-experiment", "qa-{day}",
        expect="argument --nightly-experiment: expected an experiment name that may hold "
        "{date} and {time} (e.g. qa-{date}-{time}): 'qa-{day}' may hold only {date} and {time}"),
    opt("opt-deploy-nightly-experiment-name", "deploy", "--nightly-experiment", "Nightly QA",
        expect="argument --nightly-experiment: expected an experiment name that may hold "
        "{date} and {time} (e.g. qa-{date}-{time}), got 'Nightly QA'"),
    opt("opt-serve-retrain-cron", "serve", "--retrain-cron", "0 4 * *",
        expect="argument --retrain-cron: expected a cron expression of five fields"),
    opt("opt-serve-timezone", "serve", "--timezone", "Mars/Olympus",
        expect="argument --timezone: expected an IANA time zone"),
    opt("opt-doctor-spec-missing", "doctor", "ROOT/nope.yaml",
        expect="argument spec: expected an existing file"),
    Bad("opt-doctor-spec-named-pipe", "cli",
        _shown(lambda w: ["doctor", str(named_pipe(w.root / "fifo.yaml"))],
               "`doctor …/fifo.yaml` (mkfifo)"),
        ("argument spec: expected a regular file, not a named pipe",)),
    opt("opt-health-spec-missing", "health", "ROOT/nope.yaml",
        expect="argument spec: expected an existing file"),
    opt("opt-serve-nightly-spec-missing", "serve", "--nightly-spec", "ROOT/nope.yaml",
        expect="argument --nightly-spec: expected an existing file"),
    opt("opt-deploy-source-missing", "deploy", "--source", "ROOT/nope",
        expect="argument --source: expected an existing folder"),
    opt("opt-deploy-pool-empty", "deploy", "--pool", "",
        expect="argument --pool: expected non-empty text"),
    opt("opt-deploy-nightly-spec-folder", "deploy", "--nightly-spec", "ROOT",
        expect="argument --nightly-spec: expected a file, not a folder"),
    opt("opt-deploy-nightly-cron", "deploy", "--nightly-cron", "61 2 * * *",
        expect="argument --nightly-cron: expected a cron expression of five fields"),
    opt("opt-deploy-retrain-cron", "deploy", "--retrain-cron", "H 4 * * 0",
        expect="argument --retrain-cron: expected a cron expression of five fields"),
    opt("opt-deploy-timezone", "deploy", "--timezone", "CEST+2",
        expect="argument --timezone: expected an IANA time zone"),
    opt("opt-serve-nightly-level", "serve", "--nightly-level", "subset",
        expect="argument --nightly-level: invalid choice: 'subset'"),
    opt("opt-serve-nightly-cases-zero", "serve", "--nightly-level", "calibrated",
        "--nightly-cases", "0", expect="argument --nightly-cases: expected a whole number >= 1"),
    opt("opt-deploy-nightly-level", "deploy", "--nightly-level", "Calibrated",
        expect="argument --nightly-level: invalid choice: 'Calibrated'"),
    opt("opt-deploy-nightly-cases-text", "deploy", "--nightly-cases", "ten",
        expect="argument --nightly-cases: expected a whole number >= 1"),
    opt("opt-review-port-too-high", "review", "demo", "--port", "70000",
        expect="argument --port: expected a port number 1-65535, got '70000'"),
    opt("opt-review-port-zero", "review", "demo", "--port", "0",
        expect="argument --port: expected a port number 1-65535, got '0'"),
    opt("opt-review-pairs-zero", "review", "demo", "--pairs", "0",
        expect="argument --pairs: expected a whole number >= 1, got '0'"),
    opt("opt-review-seed-negative", "review", "demo", "--seed", "-1",
        expect="argument --seed: expected a whole number >= 0, got '-1'"),
    opt("opt-review-host-with-port", "review", "demo", "--host", "127.0.0.1:8765",
        expect="argument --host: expected a host name or IP address (the port goes in --port)"),
    opt("opt-review-rater-blank", "review", "demo", "--rater", " ",
        expect="argument --rater: expected non-empty text"),
    opt("opt-judge-limit-zero", "judge", "demo", "--model", "j:1b", "--limit", "0",
        expect="argument --limit: expected a whole number >= 1, got '0'"),
    opt("opt-judge-limit-negative", "judge", "demo", "--model", "j:1b", "--limit", "-2",
        expect="argument --limit: expected a whole number >= 1, got '-2'"),
    opt("opt-judge-concurrency-zero", "judge", "demo", "--model", "j:1b", "--concurrency", "0",
        expect="argument --concurrency: expected a whole number >= 1, got '0'"),
    opt("opt-judge-attempts-zero", "judge", "demo", "--model", "j:1b", "--attempts", "0",
        expect="argument --attempts: expected a whole number >= 1, got '0'"),
    opt("opt-judge-num-predict-zero", "judge", "demo", "--model", "j:1b", "--num-predict", "0",
        expect="argument --num-predict: expected a whole number >= 1, got '0'"),
    opt("opt-judge-kind-unknown", "judge", "demo", "--model", "j:1b", "--kind", "vllm",
        expect="argument --kind: invalid choice: 'vllm'"),
    opt("opt-judge-seed-text", "judge", "demo", "--model", "j:1b", "--seed", "abc",
        expect="argument --seed: expected a whole number >= 0, got 'abc'"),
    opt("opt-judge-url-extra-port", "judge", "demo", "--model", "j:1b", "--url", "gpu:11434:1",
        expect="argument --url: 'gpu:11434:1': expected host:port"),
    opt("opt-judge-rubric-missing", "judge", "demo", "--model", "j:1b", "--rubric", "ROOT/r.yaml",
        expect="argument --rubric: expected an existing file"),
    opt("opt-judge-model-empty", "judge", "demo", "--model", "",
        expect="argument --model: expected non-empty text"),
    opt("opt-recommend-max-latency-negative", "recommend", "qa", "--max-latency", "-1",
        expect="argument --max-latency: expected a number > 0, got '-1'"),
    opt("opt-recommend-max-energy-zero", "recommend", "qa", "--max-energy", "0",
        expect="argument --max-energy: expected a number > 0, got '0'"),
    opt("opt-recommend-min-quality-percent", "recommend", "qa", "--min-quality", "70",
        expect="argument --min-quality: expected a number >= 0 and <= 1, got '70' (0.7, not 70)"),
    opt("opt-recommend-prefer-unknown", "recommend", "qa", "--prefer", "cost",
        expect="argument --prefer: invalid choice: 'cost'"),
    opt("opt-recommend-version-huge", "recommend", "qa", "--version", "100000000000000000000",
        expect="argument --version: expected a whole number from 1 to 2**53"),
    opt("opt-recommend-version-zero", "recommend", "qa", "--version", "0",
        expect="argument --version: expected a whole number >= 1, got '0'"),
    opt("opt-recommend-write-spec-exists", "recommend", "qa", "--write-spec", "SPEC",
        expect="argument --write-spec: expected a file that does not exist yet (nothing is "
        "overwritten)"),
    opt("opt-recommend-write-spec-no-folder", "recommend", "qa", "--write-spec",
        "ROOT/missing/next.yaml",
        expect="argument --write-spec: expected a file in an existing folder ("),
    # /proc takes no new file: root passes its permission check and is refused when the
    # file is tried, before the answer; another user is refused it as not writable
    Bad("opt-recommend-write-spec-cannot-create", "cli",
        cli("recommend", "qa", "--write-spec", "/proc/next.yaml"),
        ("evalflow recommend: argument --write-spec: expected a ", "got '/proc/next.yaml'")),
    # the system refuses to look at a name this long: a traceback and exit 1 before
    opt("opt-recommend-write-spec-name-too-long", "recommend", "qa", "--write-spec",
        f"ROOT/{'a' * 300}.yaml",
        expect="argument --write-spec: expected a path this system accepts (File name too "
        "long; "),
    # a trailing slash names a folder: a file `sub` was written before
    opt("opt-recommend-write-spec-trailing-slash", "recommend", "qa", "--write-spec",
        "ROOT/sub/",
        expect="argument --write-spec: expected a file name, not a folder, got '"),
    # no option reads - as standard output: a file named - was written before
    opt("opt-recommend-write-spec-dash", "recommend", "qa", "--write-spec", "-",
        expect="argument --write-spec: expected a file name (- is not standard output here)"),
    opt("opt-gate-junit-trailing-slash", "gate", "demo", "--junit", "ROOT/sub/",
        expect="argument --junit: expected a file name, not a folder, got '"),
    opt("opt-retrain-flag-value", "retrain", "--include-simulated=yes",
        expect="argument --include-simulated: ignored explicit argument 'yes'"),
    opt("opt-experiments-extra-word", "experiments", "demo",
        expect="evalflow experiments: unrecognized arguments: demo"),
    opt("opt-show-unknown-option", "show", "demo", "--all",
        expect="evalflow show: unrecognized arguments: --all"),
    opt("opt-recommend-unknown-option", "recommend", "qa", "--bogus",
        expect="evalflow recommend: unrecognized arguments: --bogus (see evalflow recommend"),
    opt("opt-recommend-task-type-and-limit", "recommend", "poetry", "--max-latency", "-1",
        expect="evalflow recommend: argument task_type: invalid choice: 'poetry'"),
    opt("opt-baseline-accept-unknown-option", "baseline", "accept", "demo", "--nope",
        expect="evalflow baseline accept: unrecognized arguments: --nope"),
    opt("opt-baseline-no-action", "baseline",
        expect="evalflow baseline needs a subcommand: accept EXPERIMENT or withdraw EXPERIMENT"),
    opt("opt-baseline-withdraw-unknown-option", "baseline", "withdraw", "demo", "--nope",
        expect="evalflow baseline withdraw: unrecognized arguments: --nope"),
    opt("opt-view-port-too-high", "view", "demo", "--port", "70000",
        expect="argument --port: expected a port number 1-65535, got '70000'"),
    opt("opt-view-host-blank", "view", "demo", "--host", "my host",
        expect="argument --host: expected a host name or IP address"),
    opt("opt-view-export-without-experiment", "view", "--export", "ROOT/out",
        expect="--export: name the experiment to export"),
    opt("opt-monitor-port-too-high", "monitor", "--port", "70000",
        expect="argument --port: expected a port number 1-65535, got '70000'"),
    opt("opt-monitor-host-blank", "monitor", "--host", "my host",
        expect="argument --host: expected a host name or IP address"),
    opt("opt-metrics-port-zero", "metrics", "--port", "0",
        expect="argument --port: expected a port number 1-65535, got '0'"),
    opt("opt-metrics-host-blank", "metrics", "--host", "my host",
        expect="argument --host: expected a host name or IP address"),
    opt("opt-metrics-health-spec-missing", "metrics", "--health-spec", "ROOT/nope.yaml",
        expect="argument --health-spec: expected an existing file"),
    opt("opt-serve-metrics-port-too-high", "serve", "--metrics-port", "70000",
        expect="argument --metrics-port: expected a port number 1-65535, got '70000'"),
    opt("opt-serve-metrics-host-blank", "serve", "--metrics-host", "my host",
        expect="argument --metrics-host: expected a host name or IP address"),
    opt("opt-serve-health-spec-missing", "serve", "--health-spec", "ROOT/nope.yaml",
        expect="argument --health-spec: expected an existing file"),
    opt("opt-verbose-and-quiet", "-v", "-q", "experiments",
        expect="argument -q/--quiet: not allowed with argument -v/--verbose"),
    # the watch over time (more in tests/bad_input/test_trends_input.py)
    opt("opt-run-series-name", "run", "SPEC", "--series", "My Series!",
        expect="argument --series: expected a series name of [a-z0-9-]+"),
    opt("opt-run-experiment-of-another-spec", "run", "SPEC", "--experiment", "demo",
        expect="--experiment demo: experiment 'demo' was run from spec 'demo', and this spec is "
        "'bad-input': a run would replace its configs with this spec's; give this run another "
        "--experiment, or run spec 'demo'"),
    opt("opt-plan-experiment-of-another-spec", "plan", "SPEC", "--experiment", "demo",
        expect="--experiment demo: experiment 'demo' was run from spec 'demo', and this spec is "
        "'bad-input'"),
    Bad("spec-name-of-another-specs-experiment", "spec", lambda w: _named_for_another(w),
        ("experiment 'other' was run from spec 'demo', and this spec is 'other'",
         "give this run an --experiment of its own")),
    Bad("spec-experiment-of-another-suite", "spec",
        lambda w: ["run", str(w.write_spec({"name": "demo"}))],
        ("experiment 'demo' already exists for suite 'toy', and this spec's is 'tiny': a rerun "
         "would mix their cases; give this run an --experiment of its own",)),
    opt("opt-run-series-of-another-run", "run", "SPEC", "--experiment", "demo", "--series", "other",
        expect="--series other: experiment 'demo' belongs to series 'demo', and a rerun keeps it; "
        "run it again without --series, or give a new --experiment to join 'other'"),
    opt("opt-series-extra", "series", "extra",
        expect="evalflow series: unrecognized arguments: extra"),
    Bad("opt-trends-unknown-series", "cli", cli("trends", "nope"),
        ("no series 'nope' in this database (series: demo)",
         "; the database searched: sqlite:///{root}/results.db")),
    opt("opt-trends-false-alarms-zero", "trends", "demo", "--false-alarms", "0",
        expect="argument --false-alarms: expected a number > 0 and < 100, got '0'"),
    opt("opt-trends-k-negative", "trends", "demo", "--k", "-1",
        expect="argument --k: expected a number > 0 and <= 5, got '-1'"),
    opt("opt-trends-false-alarms-no-threshold", "trends", "demo", "--false-alarms", "99",
        expect="leaves the p95 latency's CUSUM (its allowance k = 1.5, fixed) no threshold "
        "(h ≤ 0): use --false-alarms of at most "),
    opt("opt-trends-skip-unknown", "trends", "demo", "--skip", "latency",
        expect="--skip: no metric named 'latency'; the metrics of the watch of series 'demo': "),
    opt("opt-gate-alpha-one", "gate", "demo", "--alpha", "1",
        expect="argument --alpha: expected a number > 0 and < 1, got '1'"),
    opt("opt-gate-require-power-zero", "gate", "demo", "--require-power", "0",
        expect="argument --require-power: expected a number > 0 and <= 1, got '0'"),
    opt("opt-gate-max-failures-one", "gate", "demo", "--max-failures", "1",
        expect="argument --max-failures: expected a number >= 0 and < 1, got '1'"),
    Bad("opt-gate-require-power-nothing-to-judge", "cli",
        gate_pair("--require-power", "0.1", "--skip", "exact_match", "--junit", "ROOT/gate.xml"),
        ("--require-power 0.1 with --skip exact_match: no quality check is left to see a drop "
         "of 0.1 (the quality checks of this gate: exact_match); keep one, or leave "
         "--require-power out",)),
    Bad("opt-gate-require-power-no-share-metric", "cli",
        gate_pair("--require-power", "0.1", "--junit", "ROOT/gate.xml", metric="chrf"),
        ("--require-power 0.1 asks whether a drop of 0.1 of a 0–1 metric is caught, and no "
         "quality check of this gate is on a 0–1 scale (chrf 0–100); leave --require-power "
         "out",)),
    Bad("opt-gate-interrupted-baseline", "cli",  # recheck2-4: it passed, nothing tested
        gate_pair("--junit", "ROOT/gate.xml", base_status="interrupted"),
        ("baseline 'base' is interrupted: finish it first (rerun its `evalflow run` to resume "
         "it), or name another --baseline; only a completed, scored run can be a baseline",)),
    Bad("opt-gate-unscored-baseline", "cli",  # completed, never scored: it passed (exit 0)
        gate_pair("--junit", "ROOT/gate.xml", base_scored=False),
        ("baseline 'base' is completed but has no scores for this gate's quality checks "
         "(exact_match): each would go untested, and no gate passes on no evidence; score it "
         "first (`evalflow rescore base --metrics exact_match`), or name another --baseline",)),
    Bad("opt-gate-baseline-scored-apart", "cli",  # scored, not on a shared case: it passed
        gate_pair("--junit", "ROOT/gate.xml", scored_apart=True),
        ("'cand' and 'base' share 2 cases (of the 2 and 3 they ran), and too few of them are "
         "scored in both for any quality check of this gate (cases scored in both: "
         "exact_match 0; a paired test needs 2 of a config): each would go untested, and "
         "no gate passes on no evidence; score the cases they share (`evalflow rescore "
         "base --metrics exact_match`), or name another --baseline",)),
    Bad("opt-gate-no-metric-in-common", "cli",  # contains dropped silently: it passed
        gate_pair("--junit", "ROOT/gate.xml", cand_metric="contains"),
        ("'cand' and 'base' share 3 cases (of the 3 and 3 they ran), and too few of them are "
         "scored in both for any quality check of this gate (cases scored in both: "
         "contains 0 (not in the baseline); a paired test needs 2 of a config): each would "
         "go untested, and no gate passes on no evidence; score the cases they share "
         "(`evalflow rescore base --metrics contains`), or name another --baseline",)),
    Bad("opt-gate-two-configs-relabelled", "cli",  # recheck2-1: no config in common, no why
        gate_pair("--junit", "ROOT/gate.xml", temperatures=(0.0, 0.7), cand_num_predict=3),
        ("'cand' and 'base' have no config in common: 'cand' ran m:1b t=0 n=3, m:1b t=0.7 n=3; "
         "'base' ran m:1b t=0, m:1b t=0.7; not paired by model: m:1b has 2 configs in each "
         "run, and pairing by model needs the one config of a model in each run (which "
         "became which is not for the gate to guess); they differ in num_predict (256 -> 3)",)),
    opt("opt-gate-junit-folder", "gate", "demo", "--junit", "ROOT",
        expect="argument --junit: expected a file name, not a folder"),
    opt("opt-gate-summary-folder", "gate", "demo", "--summary", "ROOT",
        expect="argument --summary: expected a file name, not a folder"),
    opt("opt-gate-unknown-baseline", "gate", "demo", "--baseline", "nope",
        expect="no experiment named 'nope'"),
    opt("opt-gate-unknown-series", "gate", "demo", "--series", "nope",
        expect="no series 'nope' in this database"),
    opt("opt-gate-skip-empty-name", "gate", "demo", "--skip", "tokens_per_s,,latency_p95",
        expect="argument --skip: expected comma-separated names, none empty (e.g. rougeL,chrf), "
        "got 'tokens_per_s,,latency_p95'"),
    # calibrated subsets and item banks (docs/calibrated-subsets.md)
    opt("opt-plan-cases-text", "plan", "SPEC", "--level", "calibrated", "--cases", "abc",
        expect="argument --cases: expected a whole number >= 1, got 'abc'"),
    opt("opt-plan-width-too-wide", "plan", "SPEC", "--level", "calibrated", "--width", "2",
        expect="argument --width: expected a number >= 0.001 and <= 1, got '2'"),
    opt("opt-run-cases-zero", "run", "SPEC", "--level", "calibrated", "--cases", "0",
        expect="argument --cases: expected a whole number >= 1, got '0'"),
    opt("opt-bank-suite-never-run", "bank", "nope",
        expect="no suite named 'nope' has been run: an item bank is calibrated from stored"),
    opt("opt-bank-metric-blank", "bank", "toy", "--metric", " ",
        expect="argument --metric: expected non-empty text, got ' '"),
    opt("opt-bank-metric-unscored", "bank", "toy", "--metric", "rougel",
        expect="no stored 'rougel' scores for suite 'toy'; scored metrics: exact_match"),
    # the scheduler
    opt("opt-serve-limit-zero", "serve", "--limit", "0",
        expect="argument --limit: expected a whole number >= 1, got '0'"),
    opt("opt-serve-limit-text", "serve", "--limit", "abc",
        expect="argument --limit: expected a whole number >= 1, got 'abc'"),
    # judges calibrated to people (docs/calibrated-judges.md)
    Bad("opt-import-ratings-bad-stars", "cli",
        ratings_file("case,config,rater,criterion,stars\n"
                     "c000,m:1b t=0,ana,accuracy,5\nc001,m:1b t=0,ana,accuracy,9\n"),
        ("{root}/ratings.csv:3: field 'stars'", "expected an integer from 1 to 5", "'9'")),
    Bad("opt-import-ratings-unknown-config", "cli",
        ratings_file("case,config,rater,criterion,stars\nc000,m:8b t=0,ana,accuracy,5\n"),
        ("{root}/ratings.csv:2: field 'config'", "experiment demo has no config 'm:8b t=0'")),
    Bad("opt-import-ratings-unclosed-quote", "cli",
        ratings_file('case,config,rater,criterion,stars\nc000,"m:1b t=0,ana,accuracy,5\n'
                     "c001,m:1b t=0,ana,accuracy,4\n"),
        ("{root}/ratings.csv:2: field 'config'", "a quoted value opened here is never closed")),
    Bad("opt-import-ratings-nested-too-deep", "cli",
        _shown(lambda w: _deep_ratings(w),
               "`import-ratings demo …/ratings.jsonl`, a line holding 5000 nested lists"),
        ("{root}/ratings.jsonl:1:", "expected a JSON object (nested deeper than 64 levels)")),
    Bad("opt-import-ratings-file-too-large", "cli",
        _shown(_sparse_ratings, "`import-ratings demo …/ratings.csv` of 64 MiB + 1 byte (sparse)"),
        ("{root}/ratings.csv: the ratings file is 67,108,865 bytes; at most 67,108,864",)),
    Bad("opt-import-ratings-too-many", "cli",
        _shown(_many_ratings, "`import-ratings demo …/ratings.csv` of 100,001 ratings"),
        ("{root}/ratings.csv:100002:", "more than 100,000 ratings in one file")),
    Bad("opt-import-ratings-value-too-long", "cli",
        _shown(_long_value_ratings,
               "`import-ratings demo …/ratings.csv`, line 3's case a quoted value of 200,000 x"),
        ("{root}/ratings.csv:3:", "a value of at most 131,072 characters")),
    opt("opt-import-ratings-not-csv", "import-ratings", "demo", "SPEC",
        expect="spec.yaml: expected a .csv or .jsonl file"),
    opt("opt-import-ratings-min-ratings-zero", "import-ratings", "demo", "FILE",
        "--min-ratings", "0",
        expect="argument --min-ratings: expected a whole number >= 1, got '0'"),
    opt("opt-judge-card-min-ratings-negative", "judge-card", "demo", "--min-ratings", "-1",
        expect="argument --min-ratings: expected a whole number >= 1, got '-1'"),
    opt("opt-judge-card-judge-blank", "judge-card", "demo", "--judge", "",
        expect="argument --judge: expected non-empty text, got ''"),
    opt("opt-judge-card-unknown", "judge-card", "nope",
        expect="no experiment named 'nope'; known experiments: demo"),
    opt("opt-rate-next-unknown", "rate-next", "nope",
        expect="no experiment named 'nope'; known experiments: demo"),
    opt("opt-rate-next-adjust-unknown", "rate-next", "demo", "--adjust", "bonferroni",
        expect="argument --adjust: invalid choice: 'bonferroni'"),
]  # fmt: skip

SURFACE_CASES = [
    Bad(
        "verb-review-port-in-use",
        "cli",
        busy_port("review", "demo", "--port", "PORT"),
        ("--port ", "the port is in use", "pick another --port"),
    ),
    Bad(
        "verb-view-port-in-use",
        "cli",
        busy_port("view", "demo", "--port", "PORT"),
        ("--port ", "the port is in use"),
    ),
    Bad(
        "verb-metrics-port-in-use",
        "cli",
        busy_port("metrics", "--port", "PORT"),
        ("--port ", "the port is in use", "pick another --port"),
    ),
    Bad(
        "verb-serve-metrics-port-in-use",
        "cli",
        busy_port("serve", "--metrics-port", "PORT"),
        ("--metrics-port ", "the port is in use", "pick another --metrics-port"),
    ),
    Bad(
        "verb-recommend-version-missing",
        "cli",
        cli("recommend", "qa", "--version", "999"),
        (
            "selector version 999 does not exist; no version has been trained yet "
            "(`evalflow retrain` trains one)",
        ),
    ),
    Bad(
        "verb-power-delta-beyond-binary",
        "cli",
        cli("power", "SPEC", "--delta", "1.5"),
        ("--delta 1.5", "exact_match scores each case 0 or 1"),
    ),
    Bad(
        "verb-serve-nightly-spec-not-a-spec",
        "cli",
        cli("serve", "--nightly-spec", "FILE"),
        ("tiny.jsonl:1:2", "field 'id': unknown key"),
    ),
    Bad(
        "verb-deploy-nightly-spec-not-a-spec",
        "cli",
        cli("deploy", "--nightly-spec", "FILE"),
        ("tiny.jsonl:1:2", "field 'id': unknown key"),
    ),
    Bad("verb-rescore-unknown", "cli", cli("rescore", "nope"), ("no experiment", "nope")),
    Bad(
        "verb-rescore-metric-unknown",
        "cli",
        cli("rescore", "demo", "--metrics", "exact_match,rougel"),
        ("unknown metric 'rougel'",),
    ),
    Bad(
        "verb-rescore-first-unknown",
        "cli",
        cli("rescore", "demo", "--first", "rougel"),
        ("unknown metric 'rougel'",),
    ),
    Bad(  # it was taken: the leaderboard ranked the shortest outputs best
        "verb-rescore-first-descriptive",
        "cli",
        cli("rescore", "demo", "--first", "output_length"),
        ("--first output_length: output_length has no better direction",),
    ),
    Bad(
        "verb-report-unknown",
        "cli",
        cli("report", "nope", "--out", "ROOT/r.html"),
        ("no experiment", "nope"),
    ),
    Bad(
        "verb-compare-unknown",
        "cli",
        cli("compare", "nope"),
        ("no experiment named 'nope'", "; the database searched: sqlite:///{root}/results.db"),
    ),
    Bad(
        "verb-compare-two-unknown",
        "cli",
        cli("compare", "nope", "demo", "nada"),
        (
            "no experiments named 'nope', 'nada'; known experiments: demo; the database "
            "searched: sqlite:///{root}/results.db",
        ),
    ),
    Bad(
        "verb-compare-config-unknown", "cli", cli("compare", "demo", "--config", "nope"), ("nope",)
    ),
    Bad(
        "verb-compare-two-configs-unknown",
        "cli",
        cli("compare", "demo", "--config", "nope", "--config", "nada"),
        ("experiment demo has no configs 'nope', 'nada'; its configs: 'm:1b t=0' (",),
    ),
    Bad(
        "verb-compare-config-and-baseline-unknown",
        "cli",
        cli("compare", "demo", "--config", "nope", "--baseline", "nada"),
        (
            "experiment demo has no config 'nope'; baseline 'nada' is not among the configs "
            "of demo; the configs of demo: 'm:1b t=0' (",
        ),
    ),
    Bad(
        "verb-compare-two-baselines-unknown",
        "cli",
        cli("compare", "demo", "--baseline", "nope", "--baseline", "nada"),
        (
            "baselines 'nope', 'nada' are not among the compared configs; the configs of demo: "
            "'m:1b t=0' (",
        ),
    ),
    Bad(
        "verb-compare-baseline-twice",
        "cli",
        with_experiment(
            "other", "compare", "demo", "other", "--baseline", "demo", "--baseline", "other"
        ),
        (
            "--baseline given twice names 2 configs: 'demo' ('demo:m:1b t=0'), "
            "'other' ('other:big:8b t=0'); give one baseline",
        ),
    ),
    Bad(
        "verb-compare-baseline-unknown",
        "cli",
        cli("compare", "demo", "--baseline", "nope"),
        ("nope",),
    ),
    Bad(
        "verb-compare-scorer-not-here",
        "cli",
        _shown(
            lambda w: _scored_by_a_scorer_gone(w, "compare"),
            "`compare gone`, an experiment scored by a user's scorer (gone_checks:words) "
            "whose module is gone since, scored before evalflow stored scorers' declarations",
        ),
        (
            "metric 'gone_checks:words': cannot import gone_checks: No module named "
            "'gone_checks'; the results database {root}/results.db keeps no declaration of it "
            "to read it with (it was scored before evalflow kept them): read it where its code "
            "imports, or rescore it there (evalflow rescore EXPERIMENT --metrics "
            "gone_checks:words) to keep one",
        ),
    ),
    Bad(
        "verb-compare-config-twice",
        "cli",
        cli("compare", "demo", "--config", "m:1b", "--config", "m:1b"),
        ("is named twice ('m:1b')", "name each config once"),
    ),
    Bad(
        "verb-compare-config-other-experiment",
        "cli",
        cli("compare", "demo", "--config", "demp:m:1b"),
        ("'demp' is not an experiment of this comparison ('demo')",),
    ),
    Bad(
        "verb-compare-one-config",
        "cli",
        cli("compare", "demo", "--config", "m:1b"),
        ("nothing to compare: the selection has one config",),
    ),
    Bad(
        "verb-power-pilot-unknown",
        "cli",
        cli("power", "SPEC", "--delta", "0.1", "--pilot", "nope"),
        ("no experiment named 'nope'",),
    ),
    Bad(
        "verb-review-configs-unknown",
        "cli",
        cli("review", "demo", "--configs", "nope", "x"),
        ("nope",),
    ),
    Bad(
        "verb-judge-configs-unknown",
        "cli",
        cli("judge", "demo", "--model", "j:1b", "--url", "127.0.0.1:9", "--configs", "nope"),
        ("nope",),
    ),
    Bad("verb-baseline-unknown", "cli", cli("baseline", "accept", "nope"), ("nope",)),
    Bad(
        "verb-baseline-withdraw-unknown",
        "cli",
        cli("baseline", "withdraw", "nope"),
        ("no experiment named 'nope'",),
    ),
    Bad(
        "verb-baseline-withdraw-not-accepted",
        "cli",
        cli("baseline", "withdraw", "demo"),
        ("demo is not accepted in demo: nothing to withdraw (demo has no accepted run)",),
    ),
    Bad("verb-review-unknown", "cli", cli("review", "nope"), ("no experiment", "nope")),
]

SECRET_CASES = [
    Bad(
        "secret-database-port-not-a-number",
        "env",
        lambda w: ["experiments"],
        ("EVALFLOW_DATABASE_URL='postgresql://ana:***@db:port/x'", "its port is not a number"),
        {"EVALFLOW_DATABASE_URL": "postgresql://ana:s3cret@db:port/x"},
        absent=("s3cret",),
    ),
    Bad(
        "secret-database-driver-missing",
        "cli",
        cli("--database", "mysql+pymysql://ana:s3cret@127.0.0.1/x", "experiments"),
        ("mysql+pymysql://ana:***@127.0.0.1/x", "driver is not installed"),
        absent=("s3cret",),
    ),
    Bad(
        "secret-database-query-password",
        "cli",
        cli(
            "--database",
            "postgresql+psycopg2://ana@127.0.0.1:1/x?password=s3cret&connect_timeout=2",
            "experiments",
        ),
        ("cannot open the results database", "password=***"),
        absent=("s3cret",),
    ),
    Bad(
        "secret-database-not-a-url",
        "cli",
        cli("--database", "ana:s3cret@db/x", "experiments"),
        ("--database 'ana:***@db/x': expected a SQLAlchemy URL",),
        absent=("s3cret",),
    ),
    Bad(
        "secret-ollama-host-credentials-bad-port",
        "env",
        spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='http://ana:***@gpu:99999'", "invalid port '99999'"),
        {"OLLAMA_HOST": "http://ana:s3cret@gpu:99999"},
        absent=("s3cret",),
    ),
    Bad(
        "secret-ollama-host-extra-port",
        "env",
        spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='ana:***@gpu:11434:9'", "expected host:port"),
        {"OLLAMA_HOST": "ana:s3cret@gpu:11434:9"},
        absent=("s3cret",),
    ),
    Bad(
        "secret-ollama-host-token-query",
        "env",
        spec({"hosts": ...}, "plan"),
        ("OLLAMA_HOST='gpu:x?token=***'", "invalid port"),
        {"OLLAMA_HOST": "gpu:x?token=s3cret"},
        absent=("s3cret",),
    ),
    Bad(
        "secret-spec-host-query-key",
        "spec",
        spec({"hosts": [{"name": "a", "url": "http://127.0.0.1:1/?api_key=s3cret"}]}),
        (
            "{spec}",
            F.format("hosts[0].url"),
            "takes no ?query",
            "got 'http://127.0.0.1:1/?api_key=***'",
        ),
        absent=("s3cret",),
    ),
    Bad(
        "spec-alias-of-the-wrong-type",
        "spec",
        spec_text(
            "name: t\nsuite: SUITE\nhosts: [{name: sim, url: 'simulated://local', kind: simulated}]"
            "\nmodels: &m [sim-small:1b]\ngrid: {temperature: *m}\n"
        ),
        ("{spec}:5:21:", F.format("grid.temperature[0]"), "(*m repeats &m of line 4)"),
    ),
    Bad(
        "secret-judge-url-credentials",
        "cli",
        cli("judge", "demo", "--model", "j:1b", "--url", "http://ana:s3cret@gpu:0"),
        ("argument --url: 'http://ana:***@gpu:0'", "invalid port '0'"),
        absent=("s3cret",),
    ),
    Bad(
        "secret-unknown-option-api-key",
        "cli",
        cli("run", "SPEC", "--api-key", "sk-LIVE123"),
        ("unrecognized arguments: --api-key ***; a key is never given as an option", "api_key_env"),
        absent=("LIVE123",),
    ),
    Bad(
        "secret-unknown-option-equals",
        "cli",
        cli("plan", "SPEC", "--token=sk-LIVE123", "--password", "hunter2"),
        ("unrecognized arguments: --token=*** --password ***", "--api-key-env"),
        absent=("LIVE123", "hunter2"),
    ),
    Bad(
        "secret-unknown-short-option",
        "cli",
        cli("plan", "SPEC", "-k", "sk-LIVE123", "-pLIVEpw99"),
        ("unrecognized arguments: -k *** -p***; a key is never given as an option",),
        absent=("LIVE123", "LIVEpw99"),
    ),
    Bad(
        "secret-unknown-header-option",
        "cli",
        cli("run", "SPEC", "-H", "Authorization: Bearer sk-LIVE123"),
        ("unrecognized arguments: -H Authorization: ***; a key is never given as an option",),
        absent=("LIVE123",),
    ),
    Bad(
        "secret-stray-key-shaped-word",
        "cli",
        cli("run", "SPEC", "sk-SECRETabc123XYZ", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
        ("unrecognized arguments: *** ***; a key is never given as an option", "api_key_env"),
        absent=("SECRETabc123XYZ", "AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
    ),
    Bad(
        "secret-unknown-option-value-as-spec",
        "cli",
        cli("doctor", "--api-key", "sk-LIVE123"),
        ("argument spec: expected an existing file, got '***'",),
        absent=("LIVE123",),
    ),
    Bad(
        "secret-unknown-option-before-verb",
        "cli",
        cli("--api-key", "sk-LIVE123", "run", "SPEC"),
        ("argument command: invalid choice: '***'",),
        absent=("LIVE123",),
    ),
]

LINE_CASES = [
    Bad("line-unknown-key", "spec", spec_lines("grid:\n  temprature: [0.1]\n"),
        ("{spec}:6:3: field 'grid.temprature'", "did you mean 'temperature'?")),
    Bad("line-bad-list-item", "spec", spec_lines("grid:\n  temperature: [0.0, -1]\n"),
        ("{spec}:6:22: field 'grid.temperature[1]'", "must be in [0, 2]")),
    Bad("line-stop-not-a-list", "spec", spec_lines("grid:\n  stop: 'Question:'\n"),
        ("{spec}:6:9: field 'grid.stop'", "must be a list of non-empty strings, got str")),
    Bad("line-required-key", "spec", spec_text("suite: SUITE\nmodels: [a]\n"),
        ("{spec}:1:1: field 'name'", "is required")),
    Bad("line-metric", "spec", spec_lines("metrics:\n  - exact_match\n  - rougel\n"),
        ("{spec}:7:5: field 'metrics[1]'", "unknown metric 'rougel'")),
    Bad("line-samples", "spec", spec_lines("samples_per_case: 0\n"),
        ("{spec}:5:19: field 'samples_per_case'", "must be >= 1")),
    Bad("line-limits", "spec", spec_lines("limits:\n  max_configs: 0\n"),
        ("{spec}:6:16: field 'limits.max_configs'", "must be >= 1")),
    Bad("line-template", "spec", spec_lines("templates:\n  q: 'Answer.'\n"),
        ("{spec}:6:6: field 'templates.q'", "never uses {input}")),
    Bad("line-metric-wrong-task-type", "spec", spec_lines("metrics: [accuracy]\n"),
        ("{spec}:5:11: field 'metrics[0]'", "cannot score a qa suite")),
]  # fmt: skip

PIPELINE_CASES = [
    Bad("pipeline-import-raises", "spec",
        user_pipeline("boom_runtime", "raise RuntimeError('no GPU here')\n"),
        ("{spec}", F.format("pipeline.name"), "cannot import boom_runtime",
         "RuntimeError: no GPU here")),
    Bad("pipeline-import-syntax-error", "spec",
        user_pipeline("boom_syntax", "async def analyse(case, params, llm:\n"),
        ("{spec}", F.format("pipeline.name"), "boom_syntax.py:1", "SyntaxError")),
    Bad("pipeline-bad-parameter-declaration", "spec",
        user_pipeline("boom_declared", "from evaluation.pipelines import pipeline\n\n"
                      "@pipeline(parameters={'passes': list})\n"
                      "async def analyse(case, params, llm):\n    return ''\n"),
        ("{spec}", F.format("pipeline.name"), "TypeError: parameter 'passes'")),
    Bad("pipeline-sections-empty", "spec",
        spec({"pipeline": {"name": "sections", "sections": {}}}),
        ("{spec}", F.format("pipeline.sections"), "must name at least one prompt")),
    Bad("pipeline-chunk-size-huge", "spec",
        spec({"pipeline": {"name": "map_reduce"}, "grid": {"chunk_size": [10**20]}}),
        ("{spec}", F.format("grid.chunk_size[0]"), "far beyond any sane value")),
    Bad("pipeline-chunk-size-huge-fixed", "spec",
        spec({"pipeline": {"name": "map_reduce", "chunk_size": 10**20}}),
        ("{spec}", F.format("pipeline.chunk_size"), "far beyond any sane value")),
    Bad("pipeline-rag-corpus-empty", "spec", rag_corpus(""),
        ("{spec}", F.format("pipeline.corpus"), "corpus.jsonl", "has no documents")),
    Bad("pipeline-rag-corpus-malformed", "spec",
        rag_corpus('{"id": "a", "text": "x"}\n{"id": 1}\n'),
        ("{spec}", F.format("pipeline.corpus"), "corpus.jsonl:2", "expected {")),
    Bad("pipeline-rag-corpus-named-pipe", "spec",
        _shown(lambda w: ["run", str(w.write_spec({"pipeline": {
            "name": "rag", "corpus": str(named_pipe(w.root / "c.jsonl"))}}))],
            "run: pipeline rag, its corpus c.jsonl a named pipe"),
        ("{spec}", F.format("pipeline.corpus"), "c.jsonl is a named pipe")),
    Bad("pipeline-rag-corpus-nested-too-deep", "spec",
        _shown(rag_corpus(f'{{"id": "a", "text": "x", "m": {DEEP}}}\n'),
               "run: pipeline rag, a corpus line holding 5000 nested lists"),
        ("{spec}", F.format("pipeline.corpus"), "corpus.jsonl:1", "nested deeper than 64 levels")),
    Bad("pipeline-rag-corpus-not-json", "spec", rag_corpus("id,text\n"),
        ("{spec}", F.format("pipeline.corpus"), "corpus.jsonl:1: not JSON")),
    Bad("pipeline-rag-embed-model-unserved", "spec",
        rag_corpus('{"id": "a", "text": "x"}\n', embed_model="nomic-embed-text",
                   hosts=[{"name": "sim", "url": "simulated://local", "kind": "simulated",
                           "models": ["sim-small:1b"]}]),
        ("{spec}", F.format("pipeline.embed_model"), "embedding model 'nomic-embed-text'",
         "no host serves")),
    Bad("race-single-config", "spec", spec({"strategy": "race"}),
        ("{spec}", F.format("strategy"), "at least two configs", "this sweep has 1")),
    Bad("race-budget-below-a-round", "spec",
        spec({"strategy": "race", "budget": 1, "grid": {"temperature": [0.0, 0.7]}}),
        ("{spec}", F.format("budget"), "cannot buy the race's first round (2:")),
    Bad("race-first-metric-descriptive", "spec",
        spec({"strategy": "race", "grid": {"temperature": [0.0, 0.7]},
              "metrics": ["output_length", "exact_match"]}),
        ("{spec}", F.format("metrics[0]"), "output_length has no better direction")),
]  # fmt: skip


KEY = "sk-corpus-Rw5n"  # the key the keyed host wants: in no output
WRONG_KEY = "sk-wrong-Pq4z"


def keyed_spec(
    host: dict[str, Any], *command: str, changes: dict[str, Any] | None = None
) -> Callable[[World], list[str]]:
    """``command`` (default `run`) on a spec whose one host is the keyed one, with
    ``host``'s fields (a field None: left out) and the spec's other ``changes``."""
    verb, *options = command or ("run",)
    changes = changes or {}

    def fields(url: str) -> dict[str, Any]:
        entry = {"name": "vllm", "url": url, "kind": "openai"} | host
        return {key: value for key, value in entry.items() if value is not None}

    def argv(w: World) -> list[str]:
        hosts = [fields(w.keyed_url)]
        spec = w.write_spec({"models": ["llama3.2:1b"], "hosts": hosts} | changes)
        return [verb, str(spec), *options]

    shown = json.dumps(fields("KEYED"))
    more = "".join(f", {k}: {json.dumps(v)}" for k, v in changes.items())
    return _shown(
        argv,
        f"{' '.join(command or ('run',))}: hosts: [{shown}]{more} (KEYED: a host that wants a key)",
    )


def keyed_judge(w: World) -> list[str]:
    """`judge` of the keyed host with its key from EVALFLOW_CORPUS_KEY, its kind
    detected (no --kind)."""
    url = w.keyed_url
    return [
        "judge",
        "demo",
        "--url",
        url,
        "--model",
        "judge:1b",
        "--api-key-env",
        "EVALFLOW_CORPUS_KEY",
    ]


KEY_CASES = [
    Bad(
        "spec-host-api-key-literal",
        "spec",
        spec({"hosts": [{"name": "a", "url": "http://a:1", "kind": "openai", "api_key": KEY}]}),
        ("{spec}", F.format("hosts[0].api_key"), "a key is never written in a spec", "api_key_env"),
        absent=(KEY,),
    ),
    Bad(
        "spec-host-api-key-env-not-a-name",
        "spec",
        spec({"hosts": [{"name": "a", "url": "http://a:1", "kind": "openai", "api_key_env": KEY}]}),
        ("{spec}", F.format("hosts[0].api_key_env"), "the name of an environment variable"),
        absent=(KEY,),
    ),
    Bad(
        "spec-host-api-key-env-and-password",
        "spec",
        spec(
            {
                "hosts": [
                    {"name": "a", "url": "http://u:pw@a:1", "kind": "openai", "api_key_env": "K"}
                ]
            }
        ),
        ("{spec}", F.format("hosts[0].api_key_env"), "either the user:password", "not both"),
    ),
    Bad(
        "spec-metric-embed-model-unpooled",
        "spec",
        keyed_spec(
            {"api_key_env": "EVALFLOW_CORPUS_KEY"},
            changes={"metrics": [{"semantic_similarity": {"embed_model": "chat-embed"}}]},
        ),
        (
            "{spec}",
            F.format("metrics[0]"),
            "vllm (model 'chat-embed'): the server answered one vector per token (2 of 2 "
            "numbers for an input), not one per input",
            "Serve an embedding model",
        ),
        {"EVALFLOW_CORPUS_KEY": KEY},
        absent=(KEY,),
    ),
    Bad(
        "spec-host-api-key-env-unset",
        "env",
        keyed_spec({"api_key_env": "EVALFLOW_CORPUS_KEY"}),
        (
            "{spec}",
            F.format("hosts[0].api_key_env"),
            "environment variable EVALFLOW_CORPUS_KEY is not set (or is empty)",
        ),
        {"EVALFLOW_CORPUS_KEY": ""},
    ),
    *(
        Bad(
            name,
            "spec",
            keyed_spec({"api_key_env": "EVALFLOW_CORPUS_KEY"} | host, *command),
            (
                "{spec}",
                F.format("hosts[0].api_key_env"),
                "vllm: HTTP 401",
                "the host refused the key from $EVALFLOW_CORPUS_KEY",
            ),
            {"EVALFLOW_CORPUS_KEY": WRONG_KEY},
            absent=(WRONG_KEY, KEY, "check the port"),
        )
        for name, command, host in [
            ("host-key-refused", (), {}),
            ("host-key-refused-probe", ("plan", "--probe"), {}),
            ("host-key-refused-no-kind", (), {"kind": None}),
        ]
    ),
    *(
        Bad(
            name,
            "spec",
            keyed_spec(host),
            (
                "{spec}",
                F.format("hosts[0]"),
                "vllm: HTTP 401",
                "the host wants a key",
                "api_key_env",
            ),
            absent=("check the port",),
        )
        for name, host in [("host-key-missing", {}), ("host-key-missing-no-kind", {"kind": None})]
    ),
    Bad(
        "judge-api-key-env-unset",
        "judge",
        keyed_judge,
        ("--api-key-env: environment variable EVALFLOW_CORPUS_KEY is not set",),
        {"EVALFLOW_CORPUS_KEY": ""},
    ),
    Bad(
        "judge-key-refused",
        "judge",
        keyed_judge,
        ("HTTP 401", "the host refused the key from $EVALFLOW_CORPUS_KEY"),
        {"EVALFLOW_CORPUS_KEY": WRONG_KEY},
        absent=(WRONG_KEY, KEY, "check the port"),
    ),
    Bad(
        "judge-key-missing",
        "judge",
        lambda w: keyed_judge(w)[:-2],
        ("HTTP 401", "the host wants a key and none was sent", "--api-key-env"),
        absent=("check the port",),
    ),
]

CASES = (
    SPEC_CASES
    + SUITE_CASES
    + CLI_CASES
    + ENV_CASES
    + HOST_CASES
    + DATABASE_CASES
    + OPTION_CASES
    + SURFACE_CASES
    + SECRET_CASES
    + LINE_CASES
    + PIPELINE_CASES
    + KEY_CASES
)


def _piped_documents(w: World) -> list[str]:
    spec = w.broken_suite(sidecar=QA_SIDECAR | {"documents": "d.jsonl"})
    named_pipe(w.root / "broken" / "d.jsonl")
    return ["run", str(spec)]


def _piped_sidecar(w: World) -> Path:
    path = _no_sidecar(w)
    named_pipe(path.with_name("tiny.suite.yaml"))
    return path


def _no_sidecar(w: World) -> Path:
    path = w.write_suite(w.root / "lonely")
    path.with_name("tiny.suite.yaml").unlink()
    return path


def _renamed(w: World, name: str) -> Path:
    return w.suite.rename(w.suite.with_name(name))


def _judge_closed_host(*more: str) -> list[str]:
    """`judge demo` at a port where nothing listens."""
    return [
        "judge",
        "demo",
        "--url",
        f"http://127.0.0.1:{_closed_port()}",
        "--model",
        "judge:1b",
        *more,
    ]


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _old_database(w: World) -> str:
    """A results database as an older evalflow left it, lacking a column this version
    cannot add (``experiments.suite``), one row in it."""
    path = w.root / "old.db"
    older_lacking_a_required_column(path)
    return f"sqlite:///{path}"


def _demo_accepted_read_only(w: World) -> str:
    """demo accepted as its series' baseline, and a URL that opens the database read-only
    (mode=ro): withdrawing that accept is refused before the series is watched."""
    engine = make_engine(w.db)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE experiments SET accepted_baseline = 1 WHERE name = 'demo'"
        )
    engine.dispose()
    return f"sqlite:///file:{w.db_path}?mode=ro&uri=true"


def _another_applications(
    w: World, table: str = "flow_run", key: str = "id", *, beside: str = ""
) -> str:
    """Another application's database (one table of Prefect's, or MLflow's ``experiments``
    keyed by ``experiment_id``: evalflow's name, not its columns; or ``experiments`` with
    evalflow's key, ``beside`` a table of its own), one row in it, as its URL; the case
    checks that it is left byte for byte as it was."""
    import sqlite3

    path = w.root / "prefect.db"
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE {table} ({key} INTEGER PRIMARY KEY, name TEXT)")
        if beside:
            connection.execute(f"CREATE TABLE {beside} (id INTEGER PRIMARY KEY, text TEXT)")
        connection.execute(f"INSERT INTO {table} (name) VALUES ('kept')")
    connection.close()
    w.another_applications = path.read_bytes()
    return f"sqlite:///{path}"


def _read_only_older(w: World) -> str:
    """A database an older evalflow wrote (without a table added since), read-only."""
    path = w.root / "older.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE series_calibrated_nights")
    engine.dispose()
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def _shared_copy(w: World, wal: bytes = b"") -> str:
    """A database in WAL mode, closed (no -wal or -shm beside it), in a folder ``shared``
    (which the case makes read-only), with a -wal file holding ``wal`` where given (a
    writer's changes not yet folded in)."""
    import sqlite3

    shared = w.root / "shared"
    shared.mkdir(parents=True)
    connection = sqlite3.connect(shared / "evalflow.db")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.close()
    if wal:
        (shared / "evalflow.db-wal").write_bytes(wal)
    return f"sqlite:///{shared / 'evalflow.db'}"


def row_counts(url: str) -> dict[str, int]:
    """Rows in every table of the database at ``url`` that has any (a table created
    empty, e.g. the selector's by `recommend`, holds nothing written)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            counts = {
                name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in inspect(connection).get_table_names()
            }
    finally:
        engine.dispose()
    return {name: n for name, n in counts.items() if n}


class _Page(BaseHTTPRequestHandler):
    """A web server answering every path with one HTML page (``status``, ``body``)."""

    status = 200
    body = b""

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


class _NotJson(_Page):
    """A "judge host" whose every reply is an HTML page, not Ollama's JSON."""

    body = b"<html><body>It works!</body></html>"


class _NotFoundPage(_Page):
    """Another web server (a web UI, ``evalflow view``): a 404 HTML page for every path."""

    status = 404
    body = (
        b'<!doctype html>\n<html lang="en">\n<head><title>Not Found: evalflow view'
        b"</title></head>\n<body>\n<h1>Not Found</h1>\n</body>\n</html>\n"
    )


class _Keyed(_Page):
    """An OpenAI-compatible host started with a key (vLLM's ``--api-key KEY``): a
    request without ``Authorization: Bearer KEY`` gets its 401; with it, the models.
    Ollama's routes (``/api/...``) answer 404 whatever the key: the key guards ``/v1``.
    Its ``chat-embed`` embeds as a chat GGUF served with ``"embedding": true`` does: a
    vector per token (two), not one per input."""

    def do_GET(self) -> None:
        if not self.path.startswith("/v1/"):
            self.status, self.body = 404, b'{"detail": "Not Found"}'
        elif self.headers.get("Authorization") != f"Bearer {KEY}":
            self.status, self.body = 401, b'{"error": "Unauthorized"}'
        elif self.path == "/v1/embeddings":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            vector = {"object": "embedding", "embedding": [[0.5, 0.25], [0.1, 0.2]], "index": 0}
            self.status, self.body = 200, json.dumps({"data": [vector]}).encode()
        else:
            models = [{"id": "llama3.2:1b"}, {"id": "chat-embed"}]
            self.status, self.body = 200, json.dumps({"object": "list", "data": models}).encode()
        super().do_GET()

    do_POST = do_GET


def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def keyed_host() -> Iterator[str]:
    yield from _serving(_Keyed)


@pytest.fixture(scope="module")
def not_json_host() -> Iterator[str]:
    yield from _serving(_NotJson)


@pytest.fixture(scope="module")
def web_server() -> Iterator[str]:
    yield from _serving(_NotFoundPage)


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results database holding one experiment, ``demo``: built once, copied per case."""
    path = tmp_path_factory.mktemp("template") / "results.db"
    engine = make_engine(f"sqlite:///{path}")
    with session_scope(engine) as session:
        add_experiment(
            session, "demo", make_suite(3), {make_config(): {"exact_match": [1.0, 0.0, 1.0]}}
        )
    engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
    return path


@pytest.fixture
def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    not_json_host: str,
    web_server: str,
    keyed_host: str,
    demo_database: Path,
) -> Iterator[World]:
    w = World(tmp_path)
    w.judge_url, w.web_url, w.keyed_url = not_json_host, web_server, keyed_host
    shutil.copyfile(demo_database, w.db_path)
    monkeypatch.setenv("EVALFLOW_DATABASE_URL", w.db)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))  # user pipeline modules written there
    yield w
    while _HELD:
        _HELD.pop().close()


def _fill(text: str, places: dict[str, str]) -> str:
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse exits itself
        rc = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_in_one_line_with_nothing_written(
    bad: Bad, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    places = {"root": str(world.root), "spec": str(world.spec)}
    for name, value in bad.env.items():
        value = _fill(value, places)
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    argv = bad.argv(world)  # may store more first (``with_experiment``)
    if bad.read_only:  # os.access stands in for the permissions root does not have
        folder, access = world.root / bad.read_only, os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda path, mode: not (mode & os.W_OK and Path(path) == folder) and access(path, mode),
        )
    before = row_counts(world.db)
    files = files_under(world.root)
    places |= {"suite": str(world.suite), "sidecar": str(world.sidecar)}
    rc, out, err = run_cli(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for fragment in bad.expect:
        assert _fill(fragment, places) in lines[0], (fragment, lines[0])
    for secret in bad.absent:
        assert secret not in out + err
    assert row_counts(world.db) == before
    assert files_under(world.root) == files  # no file written, none changed
    if (kept := getattr(world, "another_applications", None)) is not None:
        assert (world.root / "prefect.db").read_bytes() == kept  # not even made WAL


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time (databases aside:
    opening one may touch its header; their rows are compared instead)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and ".db" not in p.name and "__pycache__" not in p.parts
    }


def test_the_corpus_is_large_and_its_table_lists_every_case() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", DOCS.read_text(), flags=re.M)
    assert sorted(listed) == sorted(c.id for c in CASES)
    inputs = {c.input for c in CASES}
    assert inputs == {"spec", "suite", "cli", "env", "judge", "database"}


GLOBAL_OPTIONS = {"-h", "--help", "--database", "-v", "--verbose", "-q", "--quiet"}


def test_every_verb_and_every_option_that_takes_a_value_has_a_bad_case(
    tmp_path: Path,
) -> None:
    """Each verb of `evalflow --help` has a case, and each option of each verb that
    takes a value is given a bad one (flags take none; the global options have their
    own cases: cli-database-not-a-url, opt-verbose-and-quiet)."""
    tried: dict[str, set[str]] = {}
    try:
        for c in CASES:
            argv = c.argv(World(tmp_path / c.id))
            words = [w for w in argv if w not in ("-v", "-q")]
            if words[:1] == ["--database"]:
                words = words[2:]
            if words:
                options = {w.split("=")[0] for w in words if w.startswith("-")}
                tried.setdefault(words[0], set()).update(options)
    finally:
        while _HELD:
            _HELD.pop().close()
    missing = []
    for name, verb in _verbs(build_parser()):
        if name in ("accept", "withdraw"):
            name = "baseline"
        if name not in tried:
            missing.append(name)
            continue
        for action in verb._actions:
            named = set(action.option_strings) - GLOBAL_OPTIONS
            if named and action.nargs != 0 and not named & tried[name]:
                missing.append(f"{name} {'/'.join(sorted(named))}")
    assert not missing, missing


def test_a_folder_named_as_a_file_is_taken_when_it_exists(tmp_path: Path) -> None:
    """`--out r6.json` is refused as a new folder (opt-export-out-file-name), but a folder
    of that name someone made is theirs to name."""
    from flows.cli import options

    made = tmp_path / "r6.json"
    made.mkdir()
    assert options.output_folder(str(made)) == made
