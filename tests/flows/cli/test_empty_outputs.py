"""A model that returns nothing: Gemma-3-270M answered "" to 5 of 5 cases on a newcomer's
llama.cpp server; the run counted 5 successes, said nothing, and the config could top the
leaderboard (fastest of all). Each empty output is still scored as its metrics score ""
(not a failure), and run, show, the view's summary and the report say how many per config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, echo_reply, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

CASES = 3


def reply(model: str, messages) -> str:
    """Nothing from the "quiet" model, the prompt from the other."""
    return "" if model.startswith("quiet") else echo_reply(model, messages)


def test_empty_outputs_are_scored_and_said_per_config(tmp_path: Path, capsys, database_url):
    config = StandInConfig(models=("quiet:1b", "echo:1b"), reply=reply)
    with running_standin(config) as standin:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "quiet",
                    "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                    "models": ["quiet:1b", "echo:1b"],
                    "grid": {"temperature": [0.0], "num_predict": [24]},
                    "metrics": ["contains"],
                    "hosts": [{"name": "local", "url": standin.url, "slots": 2}],
                }
            )
        )
        code = main(["--database", database_url, "run", str(spec), "--limit", str(CASES), "-q"])
    out = capsys.readouterr().out
    assert code == 0, out  # a success, scored: contains of "" is 0
    flag = (
        f"EMPTY OUTPUTS: {{}} quiet:1b returned nothing in {CASES} of {CASES} "
        "outputs; each is scored as an empty answer"
    )
    assert len([x for x in out.splitlines() if x.startswith("EMPTY OUTPUTS")]) == 1
    shown = " ".join(out.split())  # the flag wraps at the width (100 columns, captured)
    config_hash = shown.split("EMPTY OUTPUTS: ", 1)[1].split()[0]
    line = flag.format(config_hash)
    assert line in shown, out
    assert (
        f"warning: {CASES} outputs empty, in 1 of 2 configs: scored as empty answers, not as "
        "failures (EMPTY OUTPUTS above)"
    ) in out
    header = next(x for x in out.splitlines() if x.lstrip().startswith("#"))
    assert header.split()[-1] == "empty"
    quiet = next(x for x in out.splitlines() if "quiet:1b" in x and x.startswith("#"))
    assert quiet.split()[-1] == str(CASES)

    assert main(["--database", database_url, "show", "quiet"]) == 0
    assert line in " ".join(capsys.readouterr().out.split())

    from evaluation.compare._leaderboard import load_leaderboard
    from evaluation.view.summary import experiment_summary

    engine = make_engine(database_url)
    with session_scope(engine) as session:
        summary = experiment_summary(session, "quiet")
        tags = {row.label: row.empty for row in summary.rows}
        assert line in summary.flags
        assert line in load_leaderboard(session, "quiet").notes  # the report's notes
        scores = session.exec(
            text(
                "SELECT s.value FROM scores s JOIN generations g ON g.id = s.generation_id "
                "WHERE g.config_hash = :c AND s.metric = 'contains'"
            ),
            params={"c": config_hash},
        ).all()
    assert tags == {"quiet:1b": f"empty outputs: {CASES} of {CASES}", "echo:1b": ""}
    assert [value for (value,) in scores] == [0.0] * CASES

    # Each empty generation's page says so above its (empty) output.
    import httpx

    from evaluation.view.app import create_app
    from tests.support.asgi_server import serving

    with session_scope(engine) as session:
        ids = dict(
            session.exec(text("SELECT config_hash, MIN(id) FROM generations GROUP BY 1")).all()
        )
    empty_page = "Empty output: the model returned nothing."
    with serving(create_app(engine)) as url, httpx.Client(base_url=url) as client:
        pages = {c: client.get(f"/e/quiet/g/{i}").text for c, i in ids.items()}
    assert [empty_page in page for c, page in pages.items() if c == config_hash] == [True]
    assert [empty_page in page for c, page in pages.items() if c != config_hash] == [False]

    # Stored before empty outputs were counted: read as before, nothing said.
    with session_scope(engine) as session:
        session.exec(text("DELETE FROM aggregates WHERE metric = 'empty_outputs'"))
    assert main(["--database", database_url, "show", "quiet"]) == 0
    shown = capsys.readouterr().out
    assert "EMPTY OUTPUTS" not in shown and "empty" not in shown.splitlines()[1]
