"""Ratings people made outside evalflow, imported as if given on the review page.

A CSV file (a header row) or JSON Lines (one object a line), one rating a row, fields:
``case`` (the case id), ``config`` (as ``show`` names it: label, hash or prefix),
``rater``, ``criterion``, ``stars`` (an integer 1–5), optionally ``sample`` (the sample
index, default 0) and ``notes``. The whole file is checked before anything is written:
the first problem is one line (file, line, field, what was expected) and nothing is
stored. Importing a file again stores nothing new (a rating that says the same is
kept as it is, as on the review page).

A file is at most ``MAX_RATINGS_BYTES`` (refused by its size before it is read) and
``MAX_RATINGS`` ratings (refused at the row past it, before any is checked); a CSV
value is at most ``csv.field_size_limit()`` characters (Python's csv refuses longer).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from evaluation import bounded_json
from evaluation.errors import EvalError
from evaluation.input_files import FileTooLarge, read_text
from evaluation.labels import config_named
from evaluation.storage.db import session_scope
from evaluation.storage.repository import experiment_configs, generations_frame, get_experiment

REQUIRED = ("case", "config", "rater", "criterion", "stars")
OPTIONAL = ("sample", "notes")
STARS = (1, 5)
#: Below this many rated outputs of one criterion nothing can be estimated from them
#: (a mean's interval needs two); ``--min-ratings`` may ask for more.
MIN_RATINGS = 2
MAX_RATINGS = 100_000
"""The most ratings one file holds: 2,000,000 ran past 300 s and 1.96 GB before this
bound, without a line (newcomers' E3). An import stores its ratings together
(``review.store.record_ratings``), ~0.17 ms of CPU a rating with its checks at load 17
(it was ~1.5 ms, each stored alone: benchmarks/perf/ratings_store.py). Import more in
several files: importing one again stores nothing new."""
STORE_AT_ONCE = 2_000
"""Ratings stored together (``record_ratings``): their rows held at once, not the
file's (100,000 at once peaked at 866 MiB)."""
MAX_RATINGS_BYTES = 64 << 20
"""The largest ratings file read (64 MiB: 100,000 ratings of ~670 bytes, notes included);
a 200 MB value of one was read to 1.3 GB before csv refused it (newcomers' E2)."""


class RatingsFileError(EvalError):
    """A ratings file that cannot be imported: one line, where and what was expected."""


@dataclass(frozen=True)
class ImportedRating:
    line: int
    generation_id: int
    rater: str
    criterion: str
    stars: int
    notes: str


@dataclass(frozen=True)
class ImportResult:
    ratings: int  # rows in the file
    stored: int  # new rows written
    unchanged: int  # ratings already stored as they are
    superseded: int  # earlier ratings of the same slot a new one replaced
    raters: tuple[str, ...]
    criteria: tuple[str, ...]


def _fail(path: Path, line: int | None, field: str | None, expected: str) -> RatingsFileError:
    where = f"{path}:{line}" if line is not None else str(path)
    what = f" field {field!r}:" if field else ""
    return RatingsFileError(f"{where}:{what} {expected}")


def read_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    """(line number, fields) of every rating in a .csv or .jsonl file."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise _fail(path, None, None, "expected a .csv or .jsonl file")
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, read as text.
        text = read_text(path, "utf-8-sig", most=MAX_RATINGS_BYTES)
    except FileTooLarge as exc:
        raise _fail(
            path,
            None,
            None,
            f"the ratings file is {exc.size:,} bytes; at most {exc.most:,} (64 MiB, "
            f"{MAX_RATINGS:,} ratings: import them in several files)",
        ) from None
    except OSError as exc:
        raise _fail(path, None, None, f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _fail(path, None, None, f"expected UTF-8 text ({exc.reason})") from exc
    if suffix == ".csv":
        # lines of the text, not a StringIO of it: that held 4 bytes a character
        reader = csv.DictReader(_lines(text))
        try:
            return _csv_rows(path, text, reader)
        except csv.Error as exc:
            line = reader.reader.line_num or 1  # the reader's: DictReader's lags a row
            if "field larger than field limit" in str(exc):
                expected = (
                    f"a value of at most {csv.field_size_limit():,} characters "
                    '(a quoted value may run on: is its closing " missing?)'
                )
                raise _fail(path, line, None, expected) from None
            raise _fail(path, line, None, f"expected CSV ({exc})") from None
    rows = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and friends raw (a
    # note holding one was "expected a JSON object (Unterminated string ...)")
    for i, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        if len(rows) == MAX_RATINGS:
            raise _too_many(path, i)
        try:
            obj = bounded_json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _fail(path, i, None, f"expected a JSON object ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise _fail(path, i, None, "expected a JSON object")
        rows.append((i, obj))
    return rows


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its ``\\n``, one at a time."""
    start = 0
    while start < len(text):
        end = text.find("\n", start) + 1 or len(text)
        yield text[start:end]
        start = end


def _too_many(path: Path, line: int) -> RatingsFileError:
    return _fail(
        path,
        line,
        None,
        f"more than {MAX_RATINGS:,} ratings in one file; at most {MAX_RATINGS:,} "
        "(import them in several files)",
    )


def _csv_rows(path: Path, text: str, reader: csv.DictReader) -> list[tuple[int, dict]]:
    """The rows of a CSV ratings file (read_rows)."""
    header = reader.fieldnames or []
    twice = next((name for i, name in enumerate(header) if name in header[:i]), None)
    if twice is not None:  # DictReader would keep the last column of that name
        raise _fail(path, 1, None, f"duplicate column {twice!r}")
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        found = ", ".join(header) if header else "nothing"
        raise _fail(
            path,
            1,
            missing[0],
            f"expected a header with {', '.join(REQUIRED)} (comma-separated); found {found}",
        )
    rows = []
    before = reader.line_num  # the line before the row read next
    for row in reader:
        if len(rows) == MAX_RATINGS:
            raise _too_many(path, reader.line_num)
        if None in row:
            raise _fail(path, reader.line_num, None, f"expected {len(header)} columns")
        rows.append((reader.line_num, dict(row)))
        before, last_before = reader.line_num, before
    if rows and (opened := _unclosed_quote(text, last_before, rows[-1][1])) is not None:
        line, field = opened
        raise _fail(
            path,
            line,
            field,
            "a quoted value opened here is never closed: it runs to the end of the file; "
            'expected its closing " (a " inside a quoted value is written "")',
        )
    return rows


def _unclosed_quote(text: str, before: int, last: dict[str, object]) -> tuple[int, str] | None:
    """(line, field) of a quoted value in the file's last row (after line ``before``)
    never closed, else None. Read leniently, as Python's csv reads, it takes in every
    line after it, and the row comes out short: it was blamed on a column after it
    ("field 'rater': expected a value") on the file's last line."""
    lines = text.split("\n")
    first = next((n for n in range(before + 1, len(lines) + 1) if lines[n - 1]), None)
    field = next((name for name, value in reversed(last.items()) if value is not None), None)
    if first is None or field is None:
        return None
    try:  # read strictly, the row ends inside its quotes
        list(csv.reader(io.StringIO("\n".join(lines[first - 1 :]), newline=""), strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return first, field
    return None


def _stars(value: object) -> int | None:
    """An integer grade from a CSV string or a JSON number; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def check_ratings(
    engine: Engine,
    experiment: str,
    path: Path,
    *,
    criteria: tuple[str, ...],
    min_ratings: int = MIN_RATINGS,
) -> list[ImportedRating]:
    """Every rating of the file matched to the generation it rates; RatingsFileError on
    the first problem. ``criteria``: the names a rating may have."""
    rows = read_rows(path)
    if not rows:
        raise _fail(path, None, None, "expected at least one rating, found none")
    with session_scope(engine) as session:
        row = get_experiment(session, experiment)
        table = experiment_configs(session, row.id)
        gens = generations_frame(session, row.id)
    hashes, labels = table["hash"].astype(str).tolist(), table["label"].astype(str).tolist()
    ok = gens[gens["status"] == "ok"]
    by_key = {
        (str(g.config_hash), str(g.case_id), int(g.sample_index)): int(g.id)
        for g in ok.itertuples()
    }
    cases = set(gens["case_id"].astype(str))
    samples: dict[tuple[str, str], set[int]] = {}  # of every generation, failed ones too
    for g in gens.itertuples():
        samples.setdefault((str(g.config_hash), str(g.case_id)), set()).add(int(g.sample_index))
    out: list[ImportedRating] = []
    seen: dict[tuple, int] = {}
    for line, fields in rows:
        for name in REQUIRED:
            value = fields.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise _fail(path, line, name, "expected a value")
        unknown = sorted(set(fields) - {*REQUIRED, *OPTIONAL})
        if unknown:
            raise _fail(path, line, unknown[0], f"expected only {', '.join(REQUIRED + OPTIONAL)}")
        stars = _stars(fields["stars"])
        if stars is None or not STARS[0] <= stars <= STARS[1]:
            raise _fail(
                path,
                line,
                "stars",
                f"expected an integer from {STARS[0]} to {STARS[1]} (the review page's stars), "
                f"got {fields['stars']!r}",
            )
        criterion = str(fields["criterion"]).strip()
        if criterion not in criteria:
            expected = f"expected one of {', '.join(criteria)}, got {criterion!r}"
            raise _fail(path, line, "criterion", expected)
        try:
            config = config_named(str(fields["config"]).strip(), hashes, labels, row.name)
        except EvalError as exc:
            raise _fail(path, line, "config", str(exc)) from None
        case = str(fields["case"]).strip()
        if case not in cases:
            raise _fail(path, line, "case", f"expected a case of {row.name}, got {case!r}")
        sample = _stars(fields.get("sample", 0))
        if sample is None or sample < 0:
            expected = f"expected a sample index ≥ 0, got {fields['sample']!r}"
            raise _fail(path, line, "sample", expected)
        generation = by_key.get((config, case, sample))
        known = sorted(samples.get((config, case), ()))
        if generation is None and known and sample not in known:  # not the case's fault
            raise _fail(
                path,
                line,
                "sample",
                f"expected a sample of config {fields['config']} for case {case} "
                f"({', '.join(map(str, known[:10]))}{', …' * (len(known) > 10)}), got {sample}",
            )
        if generation is None:
            raise _fail(
                path,
                line,
                "case",
                f"expected an output of config {fields['config']} for case {case} sample "
                f"{sample}; {row.name} has no successful one",
            )
        rater = str(fields["rater"]).strip()
        slot = (rater, generation, criterion)
        if slot in seen:
            raise _fail(
                path,
                line,
                "rater",
                f"expected one rating per rater, output and criterion; line {seen[slot]} "
                "rates the same",
            )
        seen[slot] = line
        notes = "" if fields.get("notes") is None else str(fields["notes"])
        out.append(ImportedRating(line, generation, rater, criterion, stars, notes))
    for criterion in sorted({r.criterion for r in out}):
        outputs = len({r.generation_id for r in out if r.criterion == criterion})
        if outputs < min_ratings:
            raise _fail(
                path,
                None,
                "criterion",
                f"expected at least {min_ratings} rated outputs for {criterion!r}, got {outputs} "
                "(fewer cannot be estimated from)",
            )
    return out


def import_ratings(
    engine: Engine,
    experiment: str,
    path: Path,
    *,
    criteria: tuple[str, ...],
    min_ratings: int = MIN_RATINGS,
) -> ImportResult:
    """Check the whole file, then store every rating in one transaction."""
    from evaluation.review.store import GivenRating, record_ratings
    from evaluation.storage.db import saved_at_once

    ratings = check_ratings(engine, experiment, path, criteria=criteria, min_ratings=min_ratings)
    given = [
        GivenRating(r.rater, r.generation_id, r.criterion, stars=r.stars, notes=r.notes)
        for r in ratings
    ]

    def store(session) -> tuple[int, int, int]:
        stored = unchanged = superseded = 0
        for start in range(0, len(given), STORE_AT_ONCE):  # the rows of one part at a time
            done = record_ratings(session, given[start : start + STORE_AT_ONCE])
            stored += sum(new is not None for new, _ in done)
            unchanged += sum(new is None for new, _ in done)
            superseded += sum(replaced for _, replaced in done)
        return stored, unchanged, superseded

    # the same rating saved at once by the review page (or another import): tried again
    stored, unchanged, superseded = saved_at_once(engine, store)
    return ImportResult(
        len(ratings),
        stored,
        unchanged,
        superseded,
        tuple(sorted({r.rater for r in ratings})),
        tuple(sorted({r.criterion for r in ratings})),
    )
