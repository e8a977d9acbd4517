"""The gate's output files (`--junit`, `--summary`): written together or not at all, and
never by replacing what a path names when that would lose something (a symlink, a pipe or
device, the log this process's own stdout or stderr is redirected to, its stdin)."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path


def write_both(junit, summary, error) -> None:
    """Write the JUnit file and append the summary, or neither: the JUnit text goes to
    a file beside the one its path names (through a symlink: the link stays; its mode
    kept) first, moved in place only once the summary could be written; an error names
    the option whose file could not be written. A JUnit path naming no regular file (a
    pipe, a device), or one through /proc/*/fd, is written to, before the summary, never
    replaced; one naming the file this process's stdout or stderr is open on
    (`--junit /dev/stdout >> ci.log`) is written through that stream: the rename
    swapped the log out from under it (recheck R1, stop 71)."""
    for option, given in (("--junit", junit), ("--summary", summary)):
        if given and _own_fd(given[0]) == 0:
            raise error(
                f"{option} {given[0]}: names the gate's standard input: give a file to write"
            )
    staged = target = None
    try:
        if junit:
            path, text = junit
            try:
                if not (_through_stream(path, text) or _written_to(path, text)):
                    target = path.resolve()
                    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                    _stage(staged, target, text)
            except OSError as exc:
                raise error(_refused("--junit", path, exc, staged, target)) from exc
        if summary:
            path, text = summary
            try:
                if not _through_stream(path, text):
                    _append(path, text)
            except OSError as exc:
                raise error(f"--summary {path}: cannot write it ({exc.strerror})") from exc
        if staged is not None:
            try:
                staged.replace(target)
            except OSError as exc:
                raise error(f"--junit {junit[0]}: cannot write it ({exc.strerror})") from exc
            staged = None
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)


def _through_stream(path: Path, text: str) -> bool:
    """Write ``text`` through sys.stdout or sys.stderr where ``path`` names the file that
    fd 1 or 2 is open on: a file of its own would be written at another offset, or
    replaced, under the redirection."""
    stream = {1: sys.stdout, 2: sys.stderr}.get(_own_fd(path))
    if stream is None:
        return False
    stream.write(text)
    stream.flush()
    return True


def _own_fd(path: Path) -> int | None:
    """Which of fds 1, 2, 0 is open on the file ``path`` names, if one is."""
    try:
        named = path.stat()
    except OSError:
        return None
    for fd in (1, 2, 0):
        try:
            own = os.fstat(fd)
        except OSError:
            continue
        if (own.st_dev, own.st_ino) == (named.st_dev, named.st_ino):
            return fd
    return None


def _written_to(path: Path, text: str) -> bool:
    """Append ``text`` to a path naming no regular file, or one through /proc/*/fd (an
    open file of some process: replacing it swaps it out from under that process)."""
    if not (_through_proc(path) or (path.exists() and not path.is_file())):
        return False
    with path.open("a", encoding="utf-8") as out:
        out.write(text)
    return True


def _through_proc(path: Path) -> bool:
    """Whether ``path``, or a link on its way to a file, lies in /proc (`/dev/stdout`
    -> /proc/self/fd/1, /dev/fd/3): read link by link, as resolve() skips through."""
    step = Path(os.path.abspath(path))
    for _ in range(40):
        step = Path(os.path.realpath(step.parent)) / step.name
        if step.parts[:2] == ("/", "proc"):
            return True
        if not step.is_symlink():
            return False
        step = step.parent / os.readlink(step)
    return False


def _stage(staged: Path, target: Path, text: str) -> None:
    """Write ``text`` to ``staged`` with the mode of the ``target`` it will replace (a
    600 file stays 600), else the usual mode for a new file."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else 0o600)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        _write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _refused(option: str, path: Path, exc: OSError, staged, target) -> str:
    """The error line: where the folder refuses the file written beside the target, which
    itself could be written, say that rather than 'cannot write it'."""
    refused = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    beside = refused and staged is not None and not staged.exists()
    if beside and target.is_file() and os.access(target, os.W_OK):
        return (
            f"{option} {path}: its folder {target.parent} refuses a new file "
            f"({exc.strerror}): the XML is written beside {target.name} and moved over it"
        )
    return f"{option} {path}: cannot write it ({exc.strerror})"


def _append(path: Path, text: str) -> None:
    """Append ``text`` to ``path``, or leave it as it was: a write refused part way (a
    full disk) is cut back to the length the file had, a file it made removed."""
    made = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, text.encode("utf-8"))
        except OSError:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                if made:
                    path.unlink(missing_ok=True)
                else:
                    os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
