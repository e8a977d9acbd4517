"""The kinds of value a command-line option takes, each checked in one place.

Every verb declares its options with these as argparse ``type=`` callables, so a bad
value is refused by the parser, before anything is opened or written, in one line that
names the option (``error: evalflow judge: argument --limit: expected a whole number
>= 1, got '0'``). A new option picks the kind that says what it means: a count, a
port, a name, a file to write.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

from evaluation.errors import EvalError
from evaluation.input_files import special_file
from evaluation.spec import experiment_name_problem


def _refuse(expected: str, text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


#: The largest whole number an option takes: a database's 64-bit integer holds it, and it
#: is far beyond any sane count (as the spec's own limit, 2**53).
MAX_WHOLE_NUMBER = 2**53


def whole_number(minimum: int = 1, maximum: int = MAX_WHOLE_NUMBER) -> Callable[[str], int]:
    """An integer >= ``minimum`` and at most ``maximum``: a count (``--limit``,
    ``--pairs``) or a seed (0)."""
    most = "2**53" if maximum == MAX_WHOLE_NUMBER else str(maximum)

    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped.removeprefix("-")
        if not digits.isascii() or not digits.isdigit():
            raise _refuse(f"a whole number >= {minimum}", text)
        if len(digits) > 20 or int(stripped) > maximum:  # int() of 5000 digits raises
            raise _refuse(f"a whole number from {minimum} to {most}", text)
        if int(stripped) < minimum:
            raise _refuse(f"a whole number >= {minimum}", text)
        return int(stripped)

    return parse


count = whole_number(1)
seed = whole_number(0)
# Counts sent to a model server or that repeat work: the spec's own bounds
# (evaluation/spec/_fields.py BOUNDS, evaluation/spec/_params.py).
attempts = whole_number(1, 100)  # as limits.max_attempts
concurrency = whole_number(1, 1024)  # as a host's slots
tokens = whole_number(1, 2**24)  # as num_predict


def number(
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> Callable[[str], float]:
    """A finite number (never nan or inf), optionally bounded: ``above`` and ``below``
    exclusive, ``at_least`` and ``at_most`` inclusive."""
    bounds = [
        f"> {above:g}" if above is not None else "",
        f">= {at_least:g}" if at_least is not None else "",
        f"< {below:g}" if below is not None else "",
        f"<= {at_most:g}" if at_most is not None else "",
    ]
    expected = "a number " + " and ".join(b for b in bounds if b) if any(bounds) else "a number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _refuse(expected, text) from None
        if (
            not math.isfinite(value)
            or (above is not None and not value > above)
            or (at_least is not None and not value >= at_least)
            or (below is not None and not value < below)
            or (at_most is not None and not value <= at_most)
        ):
            raise _refuse(expected, text)
        return value

    return parse


seconds = number(above=0)  # a timeout, a latency limit
positive = number(above=0)
non_negative = number(at_least=0)
probability = number(above=0, below=1)
_share = number(at_least=0, at_most=1)


def share(text: str) -> float:
    """A score on a 0-1 scale; a refused percentage says so as the help does ("0.7, not
    70": `--min-quality 70` was refused without it)."""
    try:
        return _share(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (0.7, not 70)") from None


def port(text: str) -> int:
    """A TCP port to serve on, 1-65535."""
    from evaluation.settings import port_number

    number = port_number(text.strip())
    if number is None:
        raise _refuse("a port number 1-65535", text)
    return number


def host_url(value: str) -> str:
    """A model server's URL, read as OLLAMA_HOST is (``host:port``, ``http://host:port``),
    with a port 1-65535 and no ``host:port:extra``."""
    from evaluation.errors import EvalError
    from evaluation.settings import ollama_url

    try:
        return ollama_url(value, source="--url")
    except EvalError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--url ")) from None


def key_variable(value: str) -> str:
    """The name of the environment variable holding a host's key (``--api-key-env``;
    whether it is set is checked when the command runs); a value that is no such name
    is not shown, in case it is the key itself."""
    from evaluation.spec._load import ENV_NAME_PATTERN

    if not re.fullmatch(ENV_NAME_PATTERN, value):
        raise argparse.ArgumentTypeError(
            "expected the name of an environment variable (upper-case letters, digits and "
            "_), e.g. VLLM_KEY; the value is not shown, in case it is the key itself"
        )
    return value


def address(value: str) -> str:
    """An address to serve on: a host name or an IP address, without a port."""
    import ipaddress

    bare = value.strip("[]")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", value):
            raise _refuse("a host name or IP address (the port goes in --port)", value) from None
    return bare if ":" in bare else value


def cron(value: str) -> str:
    """A cron expression of five fields (``0 2 * * *``), as Prefect's schedules accept."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=value)
    except ValidationError:
        raise _refuse("a cron expression of five fields, e.g. '0 2 * * *'", value) from None
    if len(value.split()) != 5:
        raise _refuse("a cron expression of five fields, e.g. '0 2 * * *'", value)
    return value


def timezone(value: str) -> str:
    """An IANA time zone name (``UTC``, ``Europe/Berlin``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _refuse("an IANA time zone such as UTC or Europe/Berlin", value) from None
    return value


def experiment_name(text: str) -> str:
    """A name a new experiment is stored under: lower-case letters, digits and dashes."""
    problem = experiment_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def experiment_template(text: str) -> str:
    """An experiment name that may hold ``{date}`` and ``{time}`` (the scheduled start's,
    UTC): the nightly deployment's ``experiment`` parameter."""
    from datetime import UTC, datetime

    from flows.run_names import experiment_name

    try:
        experiment_name(text, datetime(2025, 3, 9, 2, 0, tzinfo=UTC))
    except EvalError as exc:
        raise argparse.ArgumentTypeError(
            "expected an experiment name that may hold {date} and {time} (e.g. "
            f"qa-{{date}}-{{time}}): {str(exc).removeprefix('experiment: ')}"
        ) from None
    if experiment_name_problem(text.replace("{date}", "d").replace("{time}", "t")):
        raise argparse.ArgumentTypeError(
            "expected an experiment name that may hold {date} and {time} (e.g. "
            f"qa-{{date}}-{{time}}), got {text!r}"
        )
    return text


def series_name(text: str) -> str:
    """A series' name: the experiment-name rule, named as a series'."""
    problem = experiment_name_problem(text, "series")
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def text(value: str) -> str:
    """Any non-blank text (a rater's name, a model name)."""
    if not value.strip():
        raise _refuse("non-empty text", value)
    return value


def name_list(value: str) -> list[str]:
    """Comma-separated names (``--metrics rougeL,chrf``): none of them empty, none twice."""
    names = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not name for name in names):
        raise _refuse("comma-separated names, none empty (e.g. rougeL,chrf)", value)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise _refuse(f"each name once ({', '.join(repeated)} given twice)", value)
    return names


def _path_checked(parse: Callable[[str], Path]) -> Callable[[str], Path]:
    """``parse``, with a path the system refuses to look at (a name too long, a loop of
    links) refused like any other bad value: argparse takes no OSError, which printed a
    traceback and exit 1 (``--write-spec`` of a 300-character name)."""

    def checked(value: str) -> Path:
        try:
            return parse(value)
        except OSError as exc:
            shown = value if len(value) <= 60 else f"{value[:28]}…{value[-28:]}"
            raise _refuse(
                f"a path this system accepts ({exc.strerror}; {len(value)} characters)"
                if exc.errno == errno.ENAMETOOLONG
                else f"a path this system accepts ({exc.strerror})",
                shown,
            ) from None

    checked.__doc__ = parse.__doc__
    return checked


def _named(value: str, kind: str) -> Path:
    """``value`` as the name of a ``kind`` ("file", "folder") to write: not blank (``''``
    was the current folder), not ``-`` (no option here reads it as standard output; a
    file or a folder named ``-`` was written)."""
    if not value.strip():
        raise _refuse(f"a {kind} name", value)
    if value == "-":
        raise _refuse(f"a {kind} name (- is not standard output here)", value)
    return Path(value).expanduser()


def _file_name(value: str) -> Path:
    """``value`` as the name of a file to write (``_named``), not ending in a slash
    (``sub/`` names a folder: the slash was dropped and a file ``sub`` written)."""
    path = _named(value, "file")
    if value.endswith(("/", os.sep)):
        raise _refuse("a file name, not a folder", value)
    return path


@_path_checked
def existing_file(value: str) -> Path:
    """A file that must exist and be readable (a spec, a rubric)."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise _refuse("a file, not a folder", value)
    if (kind := special_file(path)) is not None:  # it exists: not "an existing file"
        raise _refuse(f"a regular file, not {kind}", value)
    if not path.is_file():
        raise _refuse("an existing file", value)
    if not os.access(path, os.R_OK):
        raise _refuse("a file you may read", value)
    return path


@_path_checked
def existing_folder(value: str) -> Path:
    """A folder that must exist (a checkout to deploy from)."""
    path = Path(value).expanduser()
    if not path.is_dir():
        raise _refuse("an existing folder", value)
    return path


@_path_checked
def new_file(value: str) -> Path:
    """A file to create: refused if it exists (nothing is overwritten), if its folder
    does not exist (none is made: a mistyped folder is not created silently) or cannot
    be written, or if the file cannot be created there: a folder such as /proc passes
    the permission check and then refuses the file, so it is tried, created and removed
    at once, by the parser (before any work, in the parser's own frame)."""
    path = _file_name(value)
    if path.is_dir():
        raise _refuse("a file name, not a folder", value)
    if path.exists() or path.is_symlink():
        raise _refuse("a file that does not exist yet (nothing is overwritten)", value)
    if not path.parent.is_dir():
        raise _refuse(f"a file in an existing folder ({path.parent} does not exist)", value)
    _writable_folder(path.parent, value)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"expected a file that can be created, got {value!r} ({exc.strerror})"
        ) from None
    path.unlink()
    return path


@_path_checked
def output_file(value: str) -> Path:
    """A file to write, replacing any file of that name (the verb's help says so): not
    a folder, in a folder that exists and can be written."""
    path = _file_name(value)
    if path.is_dir():
        raise _refuse("a file name, not a folder", value)
    if not path.parent.is_dir():
        raise _refuse(f"a file in an existing folder ({path.parent} does not exist)", value)
    _writable_folder(path.parent, value)
    if path.exists() and not os.access(path, os.W_OK):
        raise _refuse("a file you may write", value)
    return path


@_path_checked
def output_folder(value: str) -> Path:
    """A folder to write files into (``_named``: export writes one file per level, so
    ``-`` is refused rather than read as standard output): an existing, writable
    folder, or one whose nearest existing parent is writable (it is created)."""
    path = _named(value, "folder")
    if path.exists() and not path.is_dir():
        raise _refuse("a folder, but it is a file", value)
    if not path.exists() and path.suffix.lower() in FILE_SUFFIXES:
        raise _refuse(
            "a folder name, not a file's (files are written into it; this would make a "
            f"folder named {path.name}), e.g. {str(path.with_suffix(''))!r}",
            value,
        )
    _writable_folder(path, value)
    return path


#: What a new folder's name must not end in: the files evalflow writes (`export --out
#: r6.json` silently made a folder r6.json, holding r6-…-cases.csv). An existing folder
#: of such a name is taken: someone made it on purpose.
FILE_SUFFIXES = frozenset({".csv", ".json", ".jsonl", ".parquet", ".xlsx", ".html"})


def _writable_folder(folder: Path, value: str) -> None:
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise _refuse(f"a path under a folder ({existing} is a file)", value)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _refuse(f"a place you may write ({existing} is not writable)", value)


#: OSError numbers that mean a path the user gave cannot be used (not evalflow's fault).
PATH_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.EACCES,
        errno.EPERM,
        errno.EEXIST,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EROFS,
        errno.ENAMETOOLONG,
    }
)


def cannot_write(exc: OSError, command: str, option: str, value: object) -> Exception:
    """The error for `evalflow COMMAND`'s writing under ``option``'s ``value`` failing with
    ``exc``: where the place cannot be used (the parser checks what it can, but not, as
    root, a folder the kernel refuses) in the words of the parser's own refusals
    ("evalflow export: argument --out: expected ..., got '...'"; it read "argument --out
    /proc/nope: cannot write ..." beside them), else ``exc`` itself (a full disk is no
    bad input)."""
    if exc.errno not in PATH_ERRNOS or exc.filename is None:
        return exc
    from evaluation.errors import EvalError

    return EvalError(
        f"evalflow {command}: argument {option}: expected a place you may write, got "
        f"'{value}' (cannot write {exc.filename}: {exc.strerror}) "
        f"(see evalflow {command} --help)"
    )
