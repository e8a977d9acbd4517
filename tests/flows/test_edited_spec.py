"""A spec edited and run again under the same experiment name (a newcomer's finding: the
run said "2 configs" and its leaderboard showed 4, the old ones mixed in, unannounced).
The configs the spec no longer has are named as the run starts, left out of what the run
and every later reading show, kept stored, and back, without generating them again, when
a spec has them; resuming and extending are unchanged."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select
from sqlmodel import Session

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import DroppedConfig, Generation, Score
from evaluation.storage.repository import get_experiment, set_experiment_metrics
from flows.cli import main
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/qa-short.jsonl"
CASES = sum(1 for line in SUITE.read_text().splitlines() if line.strip())


def write_spec(path, temperatures):
    path.write_text(
        yaml.safe_dump(
            {
                "name": "edited",
                "suite": str(SUITE),
                "models": ["sim-small:1b", "sim-large:8b"],
                "grid": {"temperature": temperatures, "num_predict": [64]},
                "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
            }
        )
    )
    return path


def test_configs_an_edited_spec_dropped_are_named_left_out_and_kept(
    tmp_path, monkeypatch, capsys, caplog
):
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    database = f"sqlite:///{tmp_path / 'results.db'}"
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "evalflow"))

    def evalflow(*args: str) -> tuple[int, str, str]:
        code = main(["--database", database, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    spec = write_spec(tmp_path / "spec.yaml", [0.0, 0.7])  # 4 configs
    code, out, err = evalflow("run", str(spec))
    assert code == 0, err
    assert "no longer has" not in out + err + caplog.text
    assert f"edited: {4 * CASES} generations to run (4 configs × " in err

    write_spec(spec, [0.0, 0.3])  # 0.7 removed, 0.3 added: 2 configs stay, 2 new
    code, planned, _ = evalflow("plan", str(spec))  # said before anything runs
    assert code == 0
    # named, as the run's warning names them (it only counted them)
    note = next(line for line in planned.splitlines() if line.startswith("note: 2 stored"))
    assert note.startswith(
        f"note: 2 stored configs (sim-small:1b t=0.7, sim-large:8b t=0.7; {2 * CASES} "
        "generations done) of 'edited' not in this spec"
    )
    engine = make_engine(database)
    with session_scope(engine) as session:  # as `rescore edited --metrics rougeL` leaves it
        row = get_experiment(session, "edited")
        set_experiment_metrics(session, row.id, [*row.metrics, "rougeL"])
    caplog.clear()
    code, out, err = evalflow("run", str(spec))
    assert code == 0, err
    # the rescore's metric is kept, and scored on what the run generated (newcomer N3: a
    # rerun set the spec's metrics, and rougeL left show and trends without a word)
    assert "edited: also scored on rougeL (added by `evalflow rescore`, not in this spec)" in (
        err + caplog.text
    )
    with Session(engine) as session:
        rouge = select(func.count()).select_from(Score).where(Score.metric == "rougeL")
        assert session.exec(rouge).one()[0] == 4 * CASES  # the spec's 4 configs, 2 new
    # as it starts, a warning (on the terminal even under the display); Prefect's console
    # handler writes to the stderr it found when it was made: capsys's, pytest's own or an
    # earlier test's, closed (logging then prints the unformatted message), so the record
    logged = err + "\n" + caplog.text
    said = next(line for line in logged.splitlines() if "edited: 2 stored configs (" in line)
    assert "no longer has" in said
    assert "edited: 2 stored configs (" in said and f"{2 * CASES} generations done)" in said
    assert "t=0.7" in said and "kept stored" in said
    assert f"{2 * CASES} generated, 0 failed, {2 * CASES} already done" in out
    # the first line counts what is left, not the spec's every generation (it said 4 × CASES)
    assert f"edited: {2 * CASES} generations to run, {2 * CASES} already stored (4 configs" in err
    board, under = out.split("Leaderboard: edited")[1].split("Not above: 2 stored configs")
    assert board.count("\n#") == 4 and "t=0.7" not in board and "t=0.7" in under
    report = (tmp_path / "evalflow/reports/evalflow-edited-report.html").read_text()
    assert "t=0.7" in report.split("Not above")[1] and "t=0.7" not in report.split("Not above")[0]

    code, shown, _ = evalflow("show", "edited", "--wide")
    assert "rougeL" in shown
    rows = [line for line in shown.splitlines() if line.startswith("#") and "t=" in line]
    assert len(rows) == 4 and not any("t=0.7" in row for row in rows), shown
    assert "Not above: 2 stored configs" in shown and "t=0.7" in shown.split("Not above")[1]

    code, compared, _ = evalflow("compare", "edited")
    pairs, under = compared.split("Not above: 2 stored configs (")
    assert code == 0 and "t=0.7" not in pairs, compared
    under = " ".join(under.split())  # wrapped at the terminal's width
    assert "t=0.7" in under and "of 'edited', which the spec last run no longer has" in under

    code, _, _ = evalflow("export", "edited", "--out", str(tmp_path / "out"))
    generations = pd.read_csv(tmp_path / "out" / "edited-generations.csv")
    assert code == 0 and len(generations) == 4 * CASES
    assert "t=0.7" not in " ".join(generations["config_label"])

    code, _, _ = evalflow("view", "edited", "--export", str(tmp_path / "pages"))
    pages = [page.read_text() for page in (tmp_path / "pages").glob("*.html")]
    assert code == 0 and len(list((tmp_path / "pages" / "g").glob("*.html"))) == 4 * CASES
    assert not any("t=0.7" in page.split("Not above")[0] for page in pages)
    summary = (tmp_path / "pages" / "summary.html").read_text()
    assert "t=0.7" in summary.split("Not above: 2 stored configs")[1]

    with Session(engine) as session:  # nothing deleted
        assert session.exec(select(func.count()).select_from(Generation)).one()[0] == 6 * CASES
        assert len(session.exec(select(DroppedConfig)).all()) == 2

    write_spec(spec, [0.0, 0.3, 0.7])  # extended back: resumed, nothing generated
    caplog.clear()
    code, out, err = evalflow("run", str(spec))
    assert code == 0, err
    assert "no longer has" not in out + err + caplog.text
    assert f"0 generated, 0 failed, {6 * CASES} already done" in out
    assert f"edited: 0 generations to run, {6 * CASES} already stored (6 configs" in err
    assert out.split("Leaderboard: edited")[1].count("\n#") == 6
    with Session(engine) as session:
        assert session.exec(select(DroppedConfig)).all() == []
