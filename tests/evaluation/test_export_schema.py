"""The export's data dictionary (docs/export-schema.md) against what is written: every
column written is documented, every documented column is written, in that order, in
every format, for levels with rows and for empty ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import Session

from evaluation.export import LEVELS, export_experiment
from evaluation.review.schema import Judgement
from evaluation.review.store import CRITERIA, record_pair_rating, save_pairs
from evaluation.spec import PARAMETERS
from evaluation.storage.repository import generations_frame
from tests.support.review_db import add_stages, build_review_db

DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "export-schema.md"


PARAMETERS_ROW = "| *generation parameters* |"


def _tables() -> dict[str, list[str]]:
    """Column names per section, from each section's table in the dictionary; the row
    standing for the generation parameters is kept as ``*``."""
    out: dict[str, list[str]] = {}
    section = None
    for line in DICTIONARY.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## (.+)$", line)
        if heading:
            section = heading.group(1)
            out[section] = []
        elif line.startswith(PARAMETERS_ROW) and section:
            out[section].append("*")
        elif (row := re.match(r"\| `(\w+)` \|", line)) and section:
            out[section].append(row.group(1))
    return out


def documented() -> dict[str, list[str]]:
    """Columns per level as documented, the parameters' row expanded."""
    tables = _tables()
    params = tables.pop("Generation parameters")
    return {
        level: [c for column in columns for c in (params if column == "*" else [column])]
        for level, columns in tables.items()
    }


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """An experiment with rows at every level: a rating and a judge verdict too."""
    db = build_review_db(f"sqlite:///{tmp_path_factory.mktemp('schema') / 'r.db'}", n_cases=3)
    with Session(db.engine) as session:
        ids = generations_frame(session, db.experiment_id).id.tolist()
        (pair,) = save_pairs(session, db.experiment_id, [("toy-qa/c00", ids[0], ids[3])])
        stars = {"A": dict.fromkeys(CRITERIA, 4), "B": dict.fromkeys(CRITERIA, 2)}
        record_pair_rating(session, pair.id, rater="ann", stars=stars, preference="A")
        session.add(
            Judgement(
                experiment_id=db.experiment_id,
                judge="judge:7b",
                generation_id=ids[0],
                criterion="accuracy",
                stars=4,
            )
        )
        add_stages(session, db)
        session.commit()
    return db


def _columns(path: Path, fmt: str) -> list[str]:
    if fmt == "csv":
        return pd.read_csv(path, nrows=0).columns.tolist()
    if fmt == "json":
        schema = json.loads(path.read_text(encoding="utf-8"))["schema"]["fields"]
        return [f["name"] for f in schema]
    return pd.read_parquet(path).columns.tolist()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_every_written_column_is_documented_and_every_documented_one_written(filled, tmp_path, fmt):
    docs = documented()
    assert list(docs) == list(LEVELS)
    with Session(filled.engine) as session:
        paths = export_experiment(session, filled.experiment, out_dir=tmp_path, fmt=fmt)
    for level, path in zip(LEVELS, paths, strict=True):
        assert _columns(path, fmt) == docs[level], level
        if fmt == "csv":
            assert len(pd.read_csv(path)) > 0, f"{level} should have rows here"


def test_an_empty_level_keeps_its_documented_columns(tmp_path):
    db = build_review_db(f"sqlite:///{tmp_path / 'e.db'}", n_cases=2)
    docs = documented()
    with Session(db.engine) as session:
        paths = export_experiment(
            session, db.experiment, out_dir=tmp_path, fmt="json", levels=["ratings", "judgements"]
        )
        (book,) = export_experiment(
            session, db.experiment, out_dir=tmp_path, fmt="excel", levels=["ratings"]
        )
    for level, path in zip(("ratings", "judgements"), paths, strict=True):
        assert json.loads(path.read_text())["data"] == []
        assert _columns(path, "json") == docs[level]
    assert pd.read_excel(book, sheet_name="ratings").columns.tolist() == docs["ratings"]


def test_one_column_per_generation_parameter_and_one_name_per_concept():
    assert _tables()["Generation parameters"] == [p.name for p in PARAMETERS]
    docs = documented()
    for level in ("generations", "scores", "aggregates", "ratings", "judgements"):
        assert docs[level][:2] == ["experiment_id", "experiment"]
        assert "*" in _tables()[level], level
    names = {c for columns in docs.values() for c in columns}
    assert not names & {"config", "config_a", "config_b", "group", "id"}


def documented_types() -> dict[str, dict[str, str]]:
    """Each level's column types as the dictionary lists them, parameters expanded."""
    out: dict[str, dict[str, str]] = {}
    section = None
    for line in DICTIONARY.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"## (.+)$", line):
            section = heading.group(1)
            out[section] = {}
        elif (row := re.match(r"\| `(\w+)` \| (\w+) \|", line)) and section:
            out[section][row.group(1)] = row.group(2)
    params = out.pop("Generation parameters")
    return {level: types | params for level, types in out.items()}


# What each documented type is in Parquet (pyarrow) and in JSON's Table Schema.
_PARQUET = {
    "integer": pa.types.is_integer,
    "number": pa.types.is_floating,
    "boolean": pa.types.is_boolean,
    "text": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "JSON": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "time": pa.types.is_timestamp,
}
_JSON = {
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "text": "string",
    "JSON": "string",
    "time": "datetime",
}


@pytest.mark.parametrize("empty", [False, True])
def test_exported_types_are_the_documented_ones(filled, tmp_path, empty):
    # The newcomer's Parquet had top_p, top_k, num_ctx and seed (never sent) as type
    # null, and JSON called them strings; the dictionary says number and integer.
    engine, name = filled.engine, filled.experiment
    if empty:
        db = build_review_db(f"sqlite:///{tmp_path / 'e.db'}", n_cases=2)
        engine, name = db.engine, db.experiment
    types = documented_types()
    with Session(engine) as session:
        kw = {"levels": LEVELS}  # stages too where none are stored: empty, typed
        parquet = export_experiment(session, name, out_dir=tmp_path / "p", fmt="parquet", **kw)
        tables = export_experiment(session, name, out_dir=tmp_path / "j", fmt="json", **kw)
    wrong = []
    for level, path, table in zip(LEVELS, parquet, tables, strict=True):
        fields = json.loads(table.read_text(encoding="utf-8"))["schema"]["fields"]
        for field, json_field in zip(pq.read_schema(path), fields, strict=True):
            documented = types[level][field.name]
            if not _PARQUET[documented](field.type) or json_field["type"] != _JSON[documented]:
                wrong.append(f"{level}.{field.name}: {documented}, {field.type}, {json_field}")
    assert not wrong, "\n".join(wrong)


def test_csv_times_are_iso_8601_as_documented(filled, tmp_path):
    # A newcomer's CSV had "2026-11-24 21:46:03+00:00": ISO 8601 puts a "T" there, and
    # the dictionary says ISO 8601 (JSON had it).
    with Session(filled.engine) as session:
        paths = export_experiment(session, filled.experiment, out_dir=tmp_path, fmt="csv")
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")
    seen = 0
    for level, path in zip(LEVELS, paths, strict=True):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "created_at" not in frame:
            continue
        for value in frame["created_at"]:
            assert value == "" or iso.match(value), f"{level}: {value!r}"
            seen += value != ""
    assert seen > 0
