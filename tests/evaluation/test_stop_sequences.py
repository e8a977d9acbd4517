"""``stop``: stop sequences as a generation setting (a base model that invents further
"Question:" turns is cut at the first one), read from the grid, part of a config's
identity only when set, stored, shown in labels, and honoured by the simulated backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import Session

from evaluation.backends.base import GenerationRequest
from evaluation.backends.simulated import SimulatedBackend
from evaluation.errors import SpecError
from evaluation.export import level_frame
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate, expand, parse_spec
from evaluation.storage.db import make_engine
from evaluation.storage.training import training_frame
from evaluation.suites import Message
from selection.frame import validate_training_frame
from selection.quality import quality_metric
from selection.recommendation import Estimate, Option
from tests.support.results_db import add_experiment, make_suite

ROOT = Path(__file__).resolve().parents[2]
BASE = {"name": "s", "suite": str(ROOT / "benchmarks/suites/qa-short.jsonl"), "models": ["m:1b"]}
QUESTION = "\nQuestion:"


def configs(stop: object) -> list[Config]:
    return expand(parse_spec(BASE | {"grid": {"stop": stop}}))


def test_one_list_applies_to_every_config_and_a_list_of_lists_is_swept() -> None:
    (one,) = configs([QUESTION])
    assert one.params.stop == (QUESTION,)
    swept = configs([[QUESTION], [], [QUESTION, "\n\n"]])
    assert [c.params.stop for c in swept] == [(QUESTION,), None, (QUESTION, "\n\n")]
    assert [c.label for c in swept] == [
        'm:1b stop=["\\nQuestion:"]',
        "m:1b",  # [] is no stop sequence: the config without one
        'm:1b stop=["\\nQuestion:","\\n\\n"]',
    ]
    spaced = Config("m", GenerationParams(stop=("User: ",)), PromptTemplate("default"))
    assert spaced.label == 'm stop=["User:\\u0020"]'  # one word: labels split at spaces


def test_stop_enters_the_hash_only_when_set() -> None:
    # the hash of this config on main before stop existed: stored configs keep theirs
    unset = Config("m:1b", GenerationParams(), PromptTemplate("default"))
    assert unset.hash == "fa6cb6ea75fd1056" == configs([])[0].hash
    assert "stop" not in GenerationParams().hash_payload()
    assert configs([QUESTION])[0].hash not in (unset.hash, configs(["\n\n"])[0].hash)


@pytest.mark.parametrize(
    ("stop", "field", "got"),
    [
        ("\nQuestion:", "grid.stop", "got str"),
        ([3], "grid.stop[0]", "got int"),
        ([""], "grid.stop[0]", "got ''"),
        ([["a"], "b"], "grid.stop[1]", "got str"),
        ({"min": 1, "max": 2, "step": 1}, "grid.stop", "got dict"),
    ],
)
def test_a_bad_stop_is_refused_naming_the_field(stop: object, field: str, got: str) -> None:
    with pytest.raises(SpecError) as refused:
        configs(stop)
    assert str(refused.value).startswith(
        f"field '{field}': stop must be a list of non-empty strings, {got}"
    )


def test_a_repeated_stop_list_is_named_as_written_not_as_a_python_tuple() -> None:
    with pytest.raises(SpecError) as refused:
        configs([[QUESTION], [QUESTION]])
    assert str(refused.value) == (
        "field 'grid.stop[1]': duplicate value [\"\\nQuestion:\"] (already at grid.stop[0])"
    )


def test_stop_is_sent_as_a_list_stored_as_json_and_read_back() -> None:
    params = GenerationParams(stop=(QUESTION,))
    assert params.to_ollama_options() == {"num_predict": 256, "stop": [QUESTION]}
    assert params.to_openai_fields() == {"max_tokens": 256, "stop": [QUESTION]}
    config = Config("m:1b", params, PromptTemplate("default"))
    with Session(make_engine("sqlite://")) as session:
        experiment = add_experiment(
            session, "exp", make_suite(2), {config: {"exact_match": [1.0, 0.0]}}
        )
        exported = level_frame(session, experiment, "aggregates")
        frame = validate_training_frame(
            training_frame(session, quality_metric, include_simulated=True)
        )
    assert set(frame["stop"]) == {'["\\nQuestion:"]'}  # a categorical feature of the selector
    assert set(exported["stop"]) == {'["\\nQuestion:"]'}  # JSON text in its column
    stored = {"stop": exported["stop"].iloc[0]}
    option = Option(config.hash, "m:1b", config.label, stored, "default", "", Estimate(0, 0, 0))
    assert option.config() == config  # a recommendation gives back the same config


def test_the_simulated_backend_cuts_its_output_before_the_first_stop_sequence() -> None:
    host = HostSpec("sim", "simulated://", kind="simulated")

    async def output(stop: tuple[str, ...] | None) -> tuple[str, str]:
        backend = SimulatedBackend(host, time_scale=0.0, seed=0)
        message = (Message("user", "alpha beta gamma delta epsilon zeta eta theta"),)
        params = GenerationParams(temperature=0.0, stop=stop)
        result = await backend.generate(GenerationRequest("sim-large:8b", message, params))
        return result.text, result.done_reason

    full, _ = asyncio.run(output(None))
    words = full.split()
    assert len(words) >= 3
    cut, reason = asyncio.run(output((" " + words[2], "never in it")))
    assert cut == full[: full.index(" " + words[2])] and reason == "stop"
