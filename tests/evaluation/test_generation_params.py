"""One table of generation parameters: adding one is one edit of
``evaluation/spec/_params.py``, and it reaches everything that lists parameters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.errors import SpecError
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.spec._params import BY_NAME, GRID_ORDER, NAMES, PARAMETERS

ROOT = Path(__file__).resolve().parents[2]

# The edit a newcomer makes to add parameters: new fields, one rule between two of them
# (named apart from the pipelines' chunk_size, chunk_overlap, min_similarity, parallel).
NEW_FIELDS = """
    min_p: float | None = param(minimum=0.0, maximum=1.0, ollama="min_p", openai="min_p")
    span_size: int | None = param(minimum=1)
    span_overlap: int | None = param(minimum=0)
    min_score: float | None = param(minimum=-1.0, maximum=1.0)
    pipeline: str = param("single", choices=("single", "map_reduce"))
    batched: bool | None = param()
"""
NEW_RULE = """RULES: tuple[Rule, ...] = (
    Rule(
        "span_overlap",
        "span_overlap must be less than span_size",
        lambda p: p.span_overlap is None or p.span_size is None or p.span_overlap < p.span_size,
    ),
)"""

# Run in a copy of the tree with the edit above; prints what each consumer saw.
PROBE = r"""
import json, sys
from pathlib import Path
from sqlmodel import Session
import evaluation
assert Path(evaluation.__file__).parent == Path.cwd() / "evaluation", evaluation.__file__
from evaluation.errors import SpecError
from evaluation.spec import GenerationParams, parse_spec, expand, Config, PromptTemplate
from evaluation.storage.db import make_engine
from evaluation.storage.models import ConfigRow
from evaluation.storage.training import training_frame
from evaluation.statistics.effects import DEFAULT_PARAMETERS
from evaluation.backends.openai_compat import chat_completion_payload
from evaluation.backends.base import GenerationRequest
from evaluation.suites import Message
from evaluation.export import level_frame
from selection.frame import REQUIRED_COLUMNS, validate_training_frame
from selection.features import CONFIG_NUMERIC, CONFIG_CATEGORICAL
from selection.quality import quality_metric
from selection.recommendation import Option, Estimate
from tests.support.results_db import add_experiment, make_suite

suite, seen = sys.argv[1], {}
base = {"name": "p", "suite": suite, "models": ["m:1b"]}

def refusal(grid):
    try:
        parse_spec(base | {"grid": grid})
    except SpecError as exc:
        return str(exc)
    return None

spec = parse_spec(base | {"grid": {
    "min_p": [0.05, 0.1], "span_size": [256, 512], "span_overlap": [0, 128],
    "pipeline": ["single", "map_reduce"], "batched": [True, False],
}})
configs = expand(spec)
seen["n_configs"] = len(configs)
seen["label"] = configs[0].label
seen["refusals"] = [
    refusal({"min_p": [1.5]}), refusal({"span_overlap": [-1]}),
    refusal({"min_score": [-2]}), refusal({"pipeline": ["bogus"]}),
    refusal({"batched": ["yes"]}), refusal({"span_size": [100], "span_overlap": [100]}),
    refusal({"pipeline": {"min": 1, "max": 2, "step": 1}}),
]
seen["old_hash"] = Config("m", GenerationParams(temperature=0.5), PromptTemplate("default")).hash
p = configs[0].params
seen["ollama"] = p.to_ollama_options()
request = GenerationRequest("m", (Message("user", "hi"),), p)
payload = chat_completion_payload(request)
seen["openai"] = {k: payload[k] for k in payload if k not in ("messages", "stream_options")}
seen["columns"] = list(ConfigRow.__table__.c.keys())
engine = make_engine("sqlite://")
with Session(engine) as session:
    scores = {c: {"exact_match": [1.0, 0.0, 1.0]} for c in configs[:2]}
    experiment = add_experiment(session, "exp", make_suite(3), scores)
    frame = training_frame(session, quality_metric, include_simulated=True)
    seen["frame"] = {n: frame[n].tolist() for n in ("min_p", "span_size", "pipeline", "batched")}
    validate_training_frame(frame)
    exported = level_frame(session, experiment, "aggregates")
    seen["export_labels"] = sorted(set(exported["config_label"]))
seen["required"] = list(REQUIRED_COLUMNS)
seen["effects"] = list(DEFAULT_PARAMETERS)
seen["numeric_features"] = list(CONFIG_NUMERIC)
seen["categorical_features"] = list(CONFIG_CATEGORICAL)
chosen = {"min_p": 0.1, "span_size": 256.0, "pipeline": "map_reduce"}
option = Option("h", "m", "l", chosen, "default", "", Estimate(0, 0, 0))
seen["recommended"] = {k: v for k, v in vars(option.config().params).items() if v is not None}
print(json.dumps(seen))
"""


def _edit(source: str) -> str:
    anchor, rules = "\n    def to_ollama_options", "RULES: tuple[Rule, ...] = (\n"
    assert anchor in source and rules in source
    source = source.replace(anchor, NEW_FIELDS + anchor, 1)
    entry = NEW_RULE.split("(\n", 1)[1].rsplit(")", 1)[0]  # the Rule(...) of NEW_RULE
    return source.replace(rules, rules + entry, 1)


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What the tree says after adding six parameters (a float, two ints with a rule
    between them, a range in -1..1, a text choice and a bool) in one file."""
    tree = tmp_path_factory.mktemp("tree")
    for package in ("evaluation", "selection"):
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    definitions = tree / "evaluation" / "spec" / "_params.py"
    definitions.write_text(_edit(definitions.read_text()))
    changed = [
        p.relative_to(tree).as_posix()
        for p in tree.rglob("*.py")
        if p.read_bytes() != (ROOT / p.relative_to(tree)).read_bytes()
    ]
    assert changed == ["evaluation/spec/_params.py"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
    suite = ROOT / "benchmarks" / "suites" / "qa-short.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(suite)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_new_parameter_reaches_the_grid_and_its_validation(seen: dict) -> None:
    assert seen["n_configs"] == 2 * 2 * 2 * 2 * 2
    assert seen["refusals"] == [
        "field 'grid.min_p[0]': min_p must be in [0, 1], got 1.5",
        "field 'grid.span_overlap[0]': span_overlap must be >= 0, got -1",
        "field 'grid.min_score[0]': min_score must be in [-1, 1], got -2.0",
        "field 'grid.pipeline[0]': pipeline must be one of single, map_reduce, got 'bogus'",
        "field 'grid.batched[0]': expected true or false, got 'yes' (str)",
        "field 'grid.span_overlap': span_overlap must be less than span_size; the grid combines "
        "span_size=100, span_overlap=100",
        "field 'grid.pipeline': pipeline takes a list of values, not a range (it is not a number)",
    ]
    assert "min_p=0.05" in seen["label"] and "pipeline=single" in seen["label"]


def test_a_new_parameter_leaves_stored_config_hashes_alone(seen: dict) -> None:
    config = Config("m", GenerationParams(temperature=0.5), PromptTemplate("default"))
    assert seen["old_hash"] == config.hash


def test_a_new_parameter_is_sent_where_its_table_says(seen: dict) -> None:
    assert seen["ollama"] == {"num_predict": 256, "min_p": 0.05}
    assert seen["openai"] == {"model": "m", "stream": True, "max_tokens": 256, "min_p": 0.05}


def test_a_new_parameter_reaches_storage_and_export(seen: dict) -> None:
    assert {"min_p", "span_size", "span_overlap", "pipeline", "batched"} <= set(seen["columns"])
    assert seen["frame"]["min_p"] == [0.05] * 6
    assert seen["frame"]["pipeline"] == ["single"] * 6
    assert seen["frame"]["batched"] == [True] * 3 + [False] * 3
    assert all("min_p=0.05" in label for label in seen["export_labels"])


def test_a_new_parameter_reaches_effects_and_the_selector(seen: dict) -> None:
    assert {"min_p", "span_size", "span_overlap", "pipeline", "batched"} <= set(seen["required"])
    assert {"min_p", "span_size", "span_overlap", "min_score"} <= set(seen["effects"])
    assert not {"pipeline", "batched"} & set(seen["effects"])
    assert {"min_p", "span_size", "batched"} <= set(seen["numeric_features"])
    assert "pipeline" in seen["categorical_features"]
    assert seen["recommended"] == {
        "num_predict": 256,
        "min_p": 0.1,
        "span_size": 256,
        "pipeline": "map_reduce",
    }


PIPELINE_PARAMETERS = (
    "chunk_size",
    "chunk_overlap",
    "retrieve_k",
    "min_similarity",
    "parallel",
    "embed_model",
)


def test_the_table_holds_the_six_parameters_as_before() -> None:
    """The six, stop, then the pipelines' parameters (evaluation/pipelines), never sent."""
    six = ("temperature", "top_p", "top_k", "num_predict", "num_ctx", "seed")
    assert (*six, "stop", *PIPELINE_PARAMETERS) == NAMES
    assert GRID_ORDER[:6] == ("num_ctx", "temperature", "top_p", "top_k", "num_predict", "seed")
    assert all(BY_NAME[n].ollama is None and BY_NAME[n].openai is None for n in PIPELINE_PARAMETERS)
    assert [p.rule for p in PARAMETERS][:6] == [
        "must be in [0, 2]",
        "must be in (0, 1]",
        "must be in [1, 1048576]",
        "must be in [1, 16777216]",
        "must be in [1, 16777216]",
        "must be in [0, 4294967295]",
    ]
    assert not BY_NAME["top_p"].accepts(0.0) and BY_NAME["top_p"].accepts(1.0)
    assert GenerationParams(seed=3).to_openai_fields() == {"max_tokens": 256, "seed": 3}


def test_a_rule_between_parameters_is_checked_on_every_config(monkeypatch) -> None:
    from evaluation.spec import SweepSpec, expand
    from evaluation.spec import _model as spec_module
    from evaluation.spec._params import Rule

    rule = Rule("top_k", "top_k must exceed num_ctx", lambda p: (p.top_k or 0) > (p.num_ctx or 0))
    monkeypatch.setattr(spec_module, "RULES", (rule,))
    spec = SweepSpec(
        "s",
        Path("x.jsonl"),
        ("m",),
        {"num_ctx": (8, 64), "top_k": (32,)},
        (PromptTemplate("d"),),
        (),
    )
    with pytest.raises(SpecError, match="top_k must exceed num_ctx; the grid combines num_ctx=64"):
        expand(spec)


def test_each_sample_of_a_seeded_config_gets_its_own_reproducible_seed():
    from evaluation.spec import sample_seed

    params = GenerationParams(temperature=0.7, seed=7)
    seeds = [params.for_sample(i).seed for i in range(5)]
    assert seeds[0] == 7  # sample 0 keeps the config's seed: stored runs stay comparable
    assert len(set(seeds)) == 5 and seeds == [sample_seed(7, i) for i in range(5)]
    assert all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(8, 0) not in seeds  # not seed + i: seed 8 is another config's
    assert GenerationParams(temperature=0.7).for_sample(3).seed is None  # unseeded stays so
    assert params.for_sample(2).temperature == 0.7
