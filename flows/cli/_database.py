"""The one way a command opens the results database."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

T = TypeVar("T")


def open_engine(
    args: argparse.Namespace, *, reads_only: bool = False, create: bool = True
) -> Engine:
    """The database named by ``--database`` (else the environment, else the default),
    with every table a command may touch, review tables included (unless not
    ``create``). For a verb that ``reads_only``, a SQLite file in WAL mode in a folder
    that may not be written is read as a snapshot, which the verb says once on stderr
    (``storage.snapshot``); other verbs are refused it. Such a verb reads a user's
    scorer whose code does not import here as its stored declaration says, that of the
    experiment it names (``storage.scorers``); a verb that scores refuses it."""
    from evaluation.storage.db import open_database
    from evaluation.storage.snapshot import snapshot_note

    engine = open_database(args.database, create=create, reads_only=reads_only)
    if (note := snapshot_note(engine)) and not getattr(args, "snapshot_noted", False):
        args.snapshot_noted = True  # a verb may open the database more than once
        print(f"note: {note}", file=sys.stderr)
    if reads_only and create:  # created where it may be: one lacking it is older, read-only
        from evaluation.storage.scorers import remember_stored_declarations

        remember_stored_declarations(engine, named_experiments(args))
    return engine


def named_experiments(args: argparse.Namespace) -> list[str]:
    """The experiments a verb's arguments name (``experiment``, ``experiments``)."""
    named = getattr(args, "experiments", None) or [getattr(args, "experiment", None)]
    return [name for name in named if isinstance(name, str)]


def open_reader(args: argparse.Namespace) -> Engine:
    """The database as ``open_engine`` opens it, for a verb that only reads: where it is
    a SQLite file not created yet (a fresh home), an empty database in memory stands in,
    so the verb finds no experiments and answers as it would on an empty database,
    without creating the file (a read verb writes nothing; `doctor` says "no database
    yet" the same way)."""
    from evaluation.settings import database_url, no_database_yet

    if no_database_yet(database_url(args.database)):
        from evaluation.storage.db import make_engine

        return make_engine("sqlite://")
    return open_engine(args, reads_only=True)


def missing_default_database(args: argparse.Namespace) -> Path | None:
    """The default database file when it does not exist yet (a fresh home), else None:
    a read-only command must not create it, nor the home folder. A database the user
    named is checked by the app (``refuse_a_named_database_not_there``)."""
    from evaluation.settings import DATABASE_URL_ENV, evalflow_home

    if args.database or os.environ.get(DATABASE_URL_ENV):
        return None
    path = evalflow_home() / "evalflow.db"
    return None if path.exists() else path


def refuse_an_experiment_of_a_fresh_home(args: argparse.Namespace) -> None:
    """For a verb that names an experiment (or several): on a fresh home, where nothing
    is stored, refused before anything is opened (a refusal writes nothing, the home
    folder included), saying where evalflow looked and how one gets stored: exit 2, as
    an unknown experiment is."""
    from evaluation.errors import StorageError

    named = getattr(args, "experiment", None) or (getattr(args, "experiments", None) or [None])[0]
    if isinstance(named, str) and (path := missing_default_database(args)) is not None:
        raise StorageError(
            f"no experiment named {named!r}: no results database at {path} yet (nothing "
            "stored in this EVALFLOW_HOME); run one with: evalflow run SPEC"
        )


def read_for_bank(database: str | None, needs: str, read: Callable[[Session], T]) -> T:
    """``read`` on the results database for a level that needs an item bank, never
    creating one: refused (``BankRefused``, exit 2, ``needs`` saying who needs what) when
    a SQLite file is not there yet."""
    from evaluation.itembank import BankRefused
    from evaluation.settings import database_url, no_database_yet
    from evaluation.storage.db import make_engine, session_scope

    url = database_url(database)
    if no_database_yet(url):
        raise BankRefused(f"{needs} and there is no results database yet")
    engine = make_engine(url, create=False)
    try:
        with session_scope(engine) as session:
            return read(session)
    finally:
        engine.dispose()


def shown_database(words: list[str], i: int) -> str:
    """Word ``i`` of a masked command line (``redact_argv``), a SQLite ``--database``
    file made absolute when it is that option's value (a relative one names the file only
    from where the command ran); any other word as it is."""
    word = words[i]
    if word.startswith("--database="):
        return "--database=" + _absolute_sqlite(word.removeprefix("--database="))
    if i and words[i - 1] == "--database":
        return _absolute_sqlite(word)
    return word


def follow_up(command: Sequence[str], argv: Sequence[str]) -> str:
    """``evalflow COMMAND``, the command to run next, shell-quoted, with the ``--database``
    of the command line ``argv`` that suggests it (the next one reads the same database),
    masked and made absolute as `run`'s "resume with:" line has it, the same note after
    it where a password was masked."""
    from evaluation.redact import PASSWORD_NOTE, redact_argv

    words = redact_argv(argv)
    database: list[str] = []
    masked = False
    for i, word in enumerate(words):
        if word.startswith("--database="):
            database, masked = [shown_database(words, i)], word != argv[i]
        elif i and words[i - 1] == "--database":
            database, masked = ["--database", shown_database(words, i)], word != argv[i]
    return shlex.join(["evalflow", *command, *database]) + PASSWORD_NOTE * masked


def _absolute_sqlite(url: str) -> str:
    """A SQLite URL whose file path is relative (``sqlite:///results.db``), with it made
    absolute; any other URL as it is."""
    from evaluation.settings import sqlite_file

    path = sqlite_file(url) if url.startswith("sqlite:///") else None
    if path is None or path.is_absolute():
        return url
    return "sqlite:///" + os.path.abspath(url.removeprefix("sqlite:///"))
