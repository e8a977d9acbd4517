"""How a run ended, kept beside a SQLite database that could not take it (its disk full).

A run that fails because its disk is full cannot record that in the database either:
`experiments` then found a "running" run whose process was gone and said ``crashed``,
while the disk was still full and the reason known. So each run reserves a small note
beside the database file when it claims its experiment (``reserve``: ``NOTE_BYTES`` of
blanks, on disk while there is room), and a run whose end cannot be stored writes it
there (``write``: over the reserved bytes, which needs no free space); `experiments` reads
it for a run whose process is gone (``read``). One note per experiment, naming the run's
claim token, so a note never speaks for another run of the experiment. Databases other
than a SQLite file keep no notes (a server's full disk is not this machine's).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from evaluation.settings import sqlite_file

NOTE_BYTES = 4096


def _note(url: URL | str, experiment: str) -> Path | None:
    """The note's path beside the SQLite file of ``url`` (one named as a URI filename,
    ``file:PATH?mode=ro&uri=true``, too: a teammate's copy read so kept none)."""
    url = make_url(url) if isinstance(url, str) else url
    database = sqlite_file(url.render_as_string(hide_password=False), uri_filename=True)
    if database is None:
        return None
    name = hashlib.sha256(experiment.encode()).hexdigest()[:16]
    return database.with_name(database.name + ".run-notes") / f"{name}.note"


def reserve(url: URL | str, experiment: str) -> None:
    """Room for the note of ``experiment``'s run (best effort: a run goes on without)."""
    if (path := _note(url, experiment)) is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b" " * NOTE_BYTES, 0)
            os.fsync(fd)
        finally:
            os.close(fd)


def write(url: URL | str, experiment: str, token: str, status: str, reason: str) -> bool:
    """Keep how the run with claim ``token`` ended; whether it could be kept."""
    if (path := _note(url, experiment)) is None:
        return False
    text = json.dumps({"token": token, "status": status, "reason": reason}).encode()
    text = text[:NOTE_BYTES]  # a reason is one short line; never past the reserved room
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        os.pwrite(fd, text.ljust(NOTE_BYTES), 0)
        os.fsync(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def read(url: URL | str, experiment: str, token: str) -> tuple[str, str] | None:
    """(status, reason) kept for the run with claim ``token``, if any."""
    if (path := _note(url, experiment)) is None:
        return None
    try:
        note = json.loads(path.read_bytes().strip() or b"{}")
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("token") != token:
        return None
    return str(note.get("status")), str(note.get("reason"))
