"""The bad-input corpus: every user-facing input, malformed, through the real CLI.

Each case runs ``evalflow`` in-process and checks what issue 11 asks of every refusal:
exit code 2, exactly one line on stderr (``error: ...``) naming the file, line, field or
variable and what was expected, no traceback, and no row written anywhere (the row count
of every table of the results database is the same before and after). The cases are
listed, with what each covers, in docs/bad-input.md; a test keeps that table in step.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, func, inspect, select, table

from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.conftest import REPO
from tests.support.results_db import add_experiment, make_config, make_suite

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
        "spec-unknown-key",
        "spec",
        spec({"model": ["a"]}),
        ("{spec}", F.format("model"), "did you mean 'models'?"),
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
        ("{spec}", F.format("grid.temperature[0]"), "must be >= 0"),
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
        ("{spec}", F.format("grid.top_k[0]"), "must be >= 1"),
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
        ("{spec}", F.format("grid.seed[0]"), "must be >= 0"),
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
        "spec-invalid-yaml",
        "spec",
        spec_text("name: t\nmodels: [a\n"),
        ("{spec}", "not valid YAML", "line 3"),
    ),
    Bad(
        "spec-duplicate-key",
        "spec",
        spec_text("name: t\nname: u\n"),
        ("{spec}", "duplicate key 'name'"),
    ),
    Bad(
        "spec-not-a-mapping",
        "spec",
        spec_text("- name\n"),
        ("{spec}", "expected a mapping, got list"),
    ),
    Bad("spec-empty-file", "spec", spec_text(""), ("{spec}", "expected a mapping, got null")),
    Bad(
        "spec-not-utf8",
        "spec",
        spec_text(b"name: t\nsuite: SUITE\nmodels: [caf\xe9]\n"),
        ("{spec}", "line 3: not UTF-8 text"),
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
    Bad(
        "spec-pipeline-retrieve-k-zero",
        "spec",
        spec(
            {
                "pipeline": {"name": "rag", "corpus": "tiny.jsonl", "embed_model": "e"},
                "grid": {"retrieve_k": [0, 10]},
            }
        ),
        ("{spec}", F.format("grid.retrieve_k[0]"), "retrieve_k must be >= 1"),
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

SUITE_CASES = [
    Bad(
        "suite-invalid-json", "suite", suite(cases=['{"id": "c1",']), ("{suite}:1", "invalid JSON")
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
        ("evalflow: unrecognized arguments: --fast",),
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
        ("argument --time-scale: expected a number >= 0, got 'fast'",),
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
]

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
        ("cannot reach any host", "GET http://127.0.0.1:9/api/tags"),
        {"OLLAMA_HOST": "127.0.0.1:9"},
    ),
    Bad(
        "judge-reply-not-json",
        "judge",
        lambda w: ["judge", "demo", "--url", w.judge_url, "--model", "judge:1b"],
        ("not JSON",),
    ),
    Bad(
        "judge-host-closed",
        "judge",
        lambda w: [
            "judge",
            "demo",
            "--url",
            f"http://127.0.0.1:{_closed_port()}",
            "--model",
            "judge:1b",
        ],
        ("ConnectError",),
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
]

CASES = SPEC_CASES + SUITE_CASES + CLI_CASES + ENV_CASES + HOST_CASES + DATABASE_CASES


def _no_sidecar(w: World) -> Path:
    path = w.write_suite(w.root / "lonely")
    path.with_name("tiny.suite.yaml").unlink()
    return path


def _renamed(w: World, name: str) -> Path:
    return w.suite.rename(w.suite.with_name(name))


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _old_database(w: World) -> str:
    """A results database as an older evalflow left it: an experiments table with fewer
    columns, one row in it."""
    path = w.root / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT)")
        connection.exec_driver_sql("INSERT INTO experiments (name) VALUES ('old')")
    engine.dispose()
    return f"sqlite:///{path}"


def row_counts(url: str) -> dict[str, int]:
    """Rows in every table of the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in inspect(connection).get_table_names()
            }
    finally:
        engine.dispose()


class _NotJson(BaseHTTPRequestHandler):
    """A "judge host" whose every reply is an HTML page, not Ollama's JSON."""

    def do_GET(self) -> None:
        body = b"<html><body>It works!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def not_json_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotJson)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, not_json_host: str) -> World:
    w = World(tmp_path)
    w.judge_url = not_json_host
    engine = make_engine(w.db)
    with session_scope(engine) as session:
        add_experiment(
            session, "demo", make_suite(3), {make_config(): {"exact_match": [1.0, 0.0, 1.0]}}
        )
    engine.dispose()
    monkeypatch.setenv("EVALFLOW_DATABASE_URL", w.db)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    return w


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
    before = row_counts(world.db)
    argv = bad.argv(world)
    places |= {"suite": str(world.suite), "sidecar": str(world.sidecar)}
    rc, out, err = run_cli(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for fragment in bad.expect:
        assert _fill(fragment, places) in lines[0], (fragment, lines[0])
    assert row_counts(world.db) == before


def test_the_corpus_is_large_and_its_table_lists_every_case() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", DOCS.read_text(), flags=re.M)
    assert sorted(listed) == sorted(c.id for c in CASES)
    inputs = {c.input for c in CASES}
    assert inputs == {"spec", "suite", "cli", "env", "judge", "database"}
