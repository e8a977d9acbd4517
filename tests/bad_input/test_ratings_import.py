"""Ratings made elsewhere, imported: a file that rates outputs that do not exist, on
another scale, or too few of them is refused in one line (file, line, field, what was
expected), exit 2, and nothing is stored; a good file is stored once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bad_input.test_corpus import row_counts, run_cli
from tests.support.review_db import build_review_db

HEADER = "case,config,rater,criterion,stars\n"
GOOD = "".join(f"c0{i},alpha:1b,ana,accuracy,{1 + i % 5}\n" for i in range(4))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ratings") / "results.db"
    build_review_db(f"sqlite:///{path}").engine.dispose()
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "results.db"
    path.write_bytes(template.read_bytes())
    return f"sqlite:///{path}"


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


ROW = {"case": "c00", "config": "alpha:1b", "rater": "ana", "criterion": "accuracy", "stars": 4}

# name: (file name, content, what the one line says after "FILE")
CASES = {
    "no-such-case": (
        "r.csv",
        HEADER + GOOD + "c99,alpha:1b,ana,accuracy,3\n",
        ":6: field 'case': expected a case of toy-review, got 'c99'",
    ),
    "no-such-config": (
        "r.csv",
        HEADER + "c00,delta:9b,ana,accuracy,3\n" + GOOD,
        ":2: field 'config': experiment toy-review has no config 'delta:9b'",
    ),
    "no-such-sample": (  # it blamed 'case' (newcomers' C5)
        "r.jsonl",
        jsonl(ROW, {**ROW, "case": "c01", "sample": 2}),
        ":2: field 'sample': expected a sample of config alpha:1b for case c01 (0), got 2",
    ),
    "unclosed-quote": (  # it read ':6: field 'rater': expected a value' (newcomers' C5)
        "r.csv",
        HEADER + 'c00,"alpha:1b,ana,accuracy,4\n' + GOOD,
        ":2: field 'config': a quoted value opened here is never closed: it runs to the end "
        'of the file; expected its closing " (a " inside a quoted value is written "")',
    ),
    "unclosed-quote-last-column": (
        "r.csv",
        HEADER + GOOD + 'c05,alpha:1b,ana,accuracy,"4\n',
        ":6: field 'stars': a quoted value opened here is never closed",
    ),
    "stars-above-the-scale": (
        "r.csv",
        HEADER + GOOD + "c05,alpha:1b,ana,accuracy,7\n",
        ":6: field 'stars': expected an integer from 1 to 5 (the review page's stars), got '7'",
    ),
    "stars-on-the-unit-scale": (
        "r.jsonl",
        jsonl(ROW, {**ROW, "case": "c01", "stars": 0.75}),
        ":2: field 'stars': expected an integer from 1 to 5",
    ),
    "stars-in-words": (
        "r.csv",
        HEADER + "c00,alpha:1b,ana,accuracy,four\n",
        ":2: field 'stars': expected an integer from 1 to 5",
    ),
    "too-few-ratings": (
        "r.csv",
        HEADER + "c00,alpha:1b,ana,accuracy,4\n",
        ": field 'criterion': expected at least 2 rated outputs for 'accuracy', got 1",
    ),
    "unknown-criterion": (
        "r.csv",
        HEADER + GOOD + "c00,alpha:1b,ana,charm,4\n",
        ":6: field 'criterion': expected one of accuracy, completeness, relevance, speed",
    ),
    "missing-column": (
        "r.csv",
        "case,config,rater,stars\nc00,alpha:1b,ana,4\n",
        ":1: field 'criterion': expected a header with case, config, rater, criterion, stars",
    ),
    "duplicate-column": (
        "r.csv",
        "case,config,rater,criterion,stars,stars\nc00,alpha:1b,ana,accuracy,4,5\n",
        ":1: duplicate column 'stars'",
    ),
    "semicolons": (
        "r.csv",
        "case;config;rater;criterion;stars\nc00;alpha:1b;ana;accuracy;4\n",
        ":1: field 'case': expected a header with case, config, rater, criterion, stars "
        "(comma-separated); found case;config;rater;criterion;stars",
    ),
    "evalflow-export-columns": (
        "r.csv",
        "case_id,config_label,rater,criterion,stars\nc00,alpha:1b,ana,accuracy,4\n",
        "found case_id, config_label, rater, criterion, stars",
    ),
    "empty-value": (
        "r.csv",
        HEADER + GOOD + "c05,alpha:1b,,accuracy,4\n",
        ":6: field 'rater': expected a value",
    ),
    "same-slot-twice": (
        "r.csv",
        HEADER + GOOD + "c01,alpha:1b,ana,accuracy,5\n",
        ":6: field 'rater': expected one rating per rater, output and criterion; line 3",
    ),
    "not-json": (
        "r.jsonl",
        jsonl(ROW) + "{case: c01}\n",
        ":2: expected a JSON object",
    ),
    "unknown-field": (
        "r.jsonl",
        jsonl({**ROW, "score": 3}),
        ":1: field 'score': expected only case, config, rater, criterion, stars, sample, notes",
    ),
    "other-format": ("r.xlsx", "x", ": expected a .csv or .jsonl file"),
    "empty-file": ("r.csv", HEADER, ": expected at least one rating, found none"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line_with_nothing_written(case, db, tmp_path, capsys) -> None:
    name, content, expected = CASES[case]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    before = row_counts(db)
    rc, out, err = run_cli(["--database", db, "import-ratings", "toy-review", str(path)], capsys)
    lines = err.strip().splitlines()
    assert rc == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and expected in lines[0], err
    assert "Traceback" not in out + err
    assert row_counts(db) == before


def test_a_good_file_is_stored_once(db, tmp_path, capsys) -> None:
    path = tmp_path / "r.csv"
    path.write_text(HEADER + GOOD + "c00,beta:3b,bo,accuracy,2\nc01,beta:3b,bo,accuracy,3\n")
    before = row_counts(db).get("ratings", 0)
    argv = ["--database", db, "import-ratings", "toy-review", str(path)]
    rc, out, _ = run_cli(argv, capsys)
    assert rc == 0 and out.startswith("6 ratings of toy-review by ana, bo (accuracy): 6 stored")
    assert row_counts(db)["ratings"] == before + 6
    rc, out, _ = run_cli(argv, capsys)
    assert rc == 0 and "0 stored, 6 already there" in out
    assert row_counts(db)["ratings"] == before + 6


def test_a_csv_with_a_byte_order_mark_is_read(db, tmp_path, capsys) -> None:
    """Excel's "CSV UTF-8" starts with U+FEFF; the header is still case,config,..."""
    path = tmp_path / "r.csv"
    path.write_bytes(("\ufeff" + HEADER + GOOD).encode("utf-8"))
    rc, out, err = run_cli(["--database", db, "import-ratings", "toy-review", str(path)], capsys)
    assert rc == 0 and out.startswith("4 ratings of toy-review by ana (accuracy): 4 stored"), err


def test_a_note_holding_a_line_separator_is_read(db, tmp_path, capsys) -> None:
    """JSON strings may hold U+2028 raw; the file's lines end at "\\n" only."""
    path = tmp_path / "r.jsonl"
    rows = [{**ROW, "case": f"c0{i}", "notes": "first\u2028second"} for i in range(3)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    rc, out, err = run_cli(["--database", db, "import-ratings", "toy-review", str(path)], capsys)
    assert rc == 0 and out.startswith("3 ratings of toy-review by ana (accuracy): 3 stored"), err
