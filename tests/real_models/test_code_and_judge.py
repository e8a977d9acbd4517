"""Code written by real models, run in the bubblewrap sandbox; and a real model as the
judge, through `evalflow judge` against the OpenAI-compatible server (its API detected
from the server), with its grades constrained to the rubric and bounded by --limit."""

from __future__ import annotations

import math
import shutil

import pytest

from evaluation.review.schema import Judgement
from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.real_models.conftest import SUITES, run_sweep, stored, write_spec
from tests.support.real_models import CHAT_MODELS, SMOLLM2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` (.ci/run does)",
)
@pytest.mark.usefixtures("prefect_harness")
def test_code_from_real_models_is_scored_in_the_sandbox(real_server, tmp_path, database_url):
    spec = write_spec(
        tmp_path,
        real_server,
        SUITES / "code-python.jsonl",
        name="code",
        grid={"num_predict": [32]},
    )
    summary = run_sweep(spec, database_url, limit=1)
    assert (summary["generated"], summary["failed"]) == (len(CHAT_MODELS), 0)
    _, scores = stored(database_url, "code")
    for metric in ("pass@1", "tests_passed"):  # scored (0 or more), never skipped
        values = scores[scores["metric"] == metric]["value"]
        assert len(values) == len(CHAT_MODELS) and values.notna().all()
        assert ((values >= 0) & (values <= 1)).all()


@pytest.mark.usefixtures("prefect_harness")
def test_a_real_model_judges_through_the_openai_compatible_server(
    real_server, tmp_path, database_url, capsys
):
    spec = write_spec(
        tmp_path, real_server, SUITES / "qa-short.jsonl", name="judged", grid={"num_predict": [12]}
    )
    run_sweep(spec, database_url, limit=2)
    command = ["--database", database_url, "judge", "judged", "--url", real_server.url]
    command += ["--model", SMOLLM2, "--limit", "1", "--attempts", "1", "--num-predict", "96"]
    assert main(command) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"openai:{SMOLLM2}: ")  # the API detected from the server
    with session_scope(make_engine(database_url)) as session:
        rows = list(session.query(Judgement).all())
    graded = [r for r in rows if r.criterion != "preference"]
    pairs = [r for r in rows if r.criterion == "preference"]
    # --limit 1: one generation per config (3 criteria each), one pair in both orders
    assert len(graded) == 3 * len(CHAT_MODELS) and len(pairs) == 2
    for row in graded:  # a grade in the rubric's range, or missing with the reason
        assert row.stars in {1, 2, 3, 4, 5} or (row.stars is None and "unscored" in row.reason)
    # the server takes the judge's requests: some grades come back (all missing meant
    # llama-cpp-python had refused the json_schema response_format on every request)
    assert any(row.stars is not None for row in graded), {r.reason for r in graded}
    assert all("response_format" not in (r.reason or "") for r in rows)
    _, scores = stored(database_url, "judged")
    judged = scores[scores["metric"].str.startswith("judge_")]["value"]
    assert len(judged) == 3 * len(CHAT_MODELS)
    assert all(math.isnan(v) or 0 <= v <= 1 for v in judged)  # missing is NaN, never 0
