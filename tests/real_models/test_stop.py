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
FEW_SHOT = (
    "Question: What colour is a clear daytime sky?\nAnswer: Blue\n\n"
    "Question: How many legs does a spider have?\nAnswer: Eight\n\n"
    "{input}\nAnswer:"
)
"""Worked turns before the case. With the case alone, the greedy answer on one CPU (AMD
EPYC, 2026-11-24) ended at end-of-text in all 6 cases, where on another it had gone on
inventing turns (kernels differ by CPU, and so do borderline greedy choices); after
these, it went on to a next "Question:" in 4 of 6 (a test must not hang on one CPU)."""


@pytest.mark.usefixtures("prefect_harness")
def test_a_stop_sequence_ends_the_base_models_invented_turns(real_server, tmp_path, database_url):
    spec = write_spec(
        tmp_path,
        real_server,
        SUITES / "qa-short.jsonl",
        name="stop",
        models=[GEMMA],
        grid={"num_predict": [48], "stop": [[], [QUESTION]]},
        templates={"few-shot": FEW_SHOT},
        metrics=["contains"],
    )
    summary = run_sweep(spec, database_url, limit=8)
    assert (summary["generated"], summary["failed"]) == (16, 0)
    generations, _ = stored(database_url, "stop")
    free, stopped = (c.hash for c in expand(load_spec(spec)))  # stop [] first, as in the grid
    outputs = generations.pivot(index="case_uid", columns="config_hash", values="output")
    assert outputs.shape == (8, 2)
    invented = 0
    for full, cut in zip(outputs[free], outputs[stopped], strict=True):
        assert QUESTION not in cut
        assert full.startswith(cut.rstrip())  # the same greedy text, cut before the turn
        if QUESTION in full:
            invented += 1
            assert full.split(QUESTION)[0].rstrip() == cut.rstrip()
    assert invented >= 2  # without stop the base model did invent turns in these cases
    assert sum(bool(cut.strip()) for cut in outputs[stopped]) >= 2  # an answer, then the cut
