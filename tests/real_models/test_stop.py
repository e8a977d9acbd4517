"""Stop sequences on a real engine: the base Gemma-3-270M answers "Answer: X" and goes on
inventing "Question: ..." turns; with ``stop: ["\\nQuestion:"]`` llama.cpp ends each output
before the first invented turn, so it is the same greedy output cut there."""

from __future__ import annotations

import pytest

from evaluation.spec import expand, load_spec
from tests.real_models.conftest import SUITES, run_sweep, stored, write_spec
from tests.support.real_models import GEMMA

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

QUESTION = "\nQuestion:"


@pytest.mark.usefixtures("prefect_harness")
def test_a_stop_sequence_ends_the_base_models_invented_turns(real_server, tmp_path, database_url):
    spec = write_spec(
        tmp_path,
        real_server,
        SUITES / "qa-short.jsonl",
        name="stop",
        models=[GEMMA],
        grid={"num_predict": [48], "stop": [[], [QUESTION]]},
        metrics=["contains"],
    )
    summary = run_sweep(spec, database_url, limit=6)
    assert (summary["generated"], summary["failed"]) == (12, 0)
    generations, _ = stored(database_url, "stop")
    free, stopped = (c.hash for c in expand(load_spec(spec)))  # stop [] first, as in the grid
    outputs = generations.pivot(index="case_uid", columns="config_hash", values="output")
    assert outputs.shape == (6, 2)
    invented = 0
    for full, cut in zip(outputs[free], outputs[stopped], strict=True):
        assert QUESTION not in cut
        assert full.startswith(cut.rstrip())  # the same greedy text, cut before the turn
        if QUESTION in full:
            invented += 1
            assert full.split(QUESTION)[0].rstrip() == cut.rstrip()
    assert invented >= 2  # without stop the base model did invent turns in these cases
