"""One schema module per owner, each listing its tables; engines get them created
explicitly, whatever else a script happened to import first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from sqlmodel import SQLModel

from evaluation.itembank import schema as itembank_schema
from evaluation.review import schema as review_schema
from evaluation.series import schema as series_schema
from evaluation.storage import models as results_schema
from evaluation.storage.text_search import FTS_TABLE
from selection import schema as selection_schema

ROOT = Path(__file__).resolve().parents[1]
OWNERS = (results_schema, review_schema, series_schema, itembank_schema, selection_schema)


def test_every_table_belongs_to_exactly_one_owner() -> None:
    import selection.recommender  # noqa: F401  (every module that defines a table, loaded)

    listed = [model.__table__.name for owner in OWNERS for model in owner.TABLES]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(SQLModel.metadata.tables)


def test_the_tables_annotations_are_evaluated_as_their_classes_are_made() -> None:
    """No owner's schema module postpones its annotations (``from __future__ import
    annotations``): pydantic would evaluate every field's from its string as each table
    class is made, ~2.5% of `show`'s start-up (callgrind: 2,133 -> 2,069 M instructions
    for importing the tables)."""
    postponed = [
        f"{model.__name__}.{name}"
        for owner in OWNERS
        for model in owner.TABLES
        for name, annotation in model.__annotations__.items()
        if isinstance(annotation, str)
    ]
    assert postponed == []


def _tables_made_by(code: str) -> list[str]:
    """The tables a fresh process finds after running ``code`` (which makes ``engine``)."""
    probe = (
        f"{code}\nfrom sqlalchemy import inspect\nprint(sorted(inspect(engine).get_table_names()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_make_engine_creates_every_evaluation_table_with_nothing_else_imported() -> None:
    made = _tables_made_by(
        "from evaluation.storage.db import make_engine\nengine = make_engine('sqlite://')"
    )
    expected = {
        m.__table__.name
        for m in (
            *results_schema.TABLES,
            *review_schema.TABLES,
            *series_schema.TABLES,
            *itembank_schema.TABLES,
        )
    }
    # SQLite's FTS5 output search index (storage/text_search) and its shadow tables
    search = {t for t in made if t == FTS_TABLE or t.startswith(f"{FTS_TABLE}_")}
    assert FTS_TABLE in search
    assert set(made) - search == expected


def test_the_selector_creates_its_tables_on_the_engine_it_is_given() -> None:
    made = _tables_made_by(
        "from evaluation.storage.db import make_engine\n"
        "from selection import recommend\n"
        "engine = make_engine('sqlite://')\n"
        "recommend('qa', engine=engine)"
    )
    assert {m.__table__.name for m in selection_schema.TABLES} <= set(made)


def test_one_utcnow() -> None:
    defined = [
        path.relative_to(ROOT).as_posix()
        for package in ("evaluation", "selection", "tasks", "flows", "deployments")
        for path in (ROOT / package).rglob("*.py")
        if any(
            isinstance(node, ast.FunctionDef) and node.name == "utcnow"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    assert defined == ["evaluation/storage/models.py"]
