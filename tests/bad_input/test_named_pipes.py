"""A file to read that is a named pipe, on every verb that reads one (newcomer F1): `run`
and `plan` of a spec that was a pipe waited forever for a writer, where `doctor` refused
it. Each verb now refuses it in one line, exit 2, without opening it to wait.

Each pipe here has a writer thread that opens it and closes it at once: a verb that
opens the pipe to read gets an empty file and fails its case, instead of hanging."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.input_files import NotARegularFile, read_bytes, read_text, special_file
from flows.cli import main


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    writer = threading.Thread(target=lambda: open(path, "wb").close(), daemon=True)
    writer.start()
    yield path
    while writer.is_alive():  # its open returns once the pipe has a reader
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(0.05)


SPEC = "is a named pipe; expected a sweep spec file (YAML)"
OPTION = "expected a regular file, not a named pipe"
VERBS = [
    (["run", "PIPE"], SPEC),
    (["plan", "PIPE"], SPEC),
    (["power", "PIPE", "--delta", "0.1"], SPEC),
    (["doctor", "PIPE"], f"argument spec: {OPTION}"),
    (["health", "PIPE"], f"argument spec: {OPTION}"),
    (["serve", "--nightly-spec", "PIPE"], f"argument --nightly-spec: {OPTION}"),
    (["deploy", "--nightly-spec", "PIPE"], f"argument --nightly-spec: {OPTION}"),
    (["metrics", "--health-spec", "PIPE"], f"argument --health-spec: {OPTION}"),
    (["judge", "demo", "--model", "j:1b", "--rubric", "PIPE"], f"argument --rubric: {OPTION}"),
    (["import-ratings", "demo", "PIPE"], f"argument file: {OPTION}"),
]


@pytest.mark.parametrize(("argv", "expected"), VERBS, ids=[" ".join(v[0][:2]) for v in VERBS])
def test_every_verb_refuses_a_named_pipe_to_read_in_one_line(
    argv: list[str],
    expected: str,
    pipe: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("EVALFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'results.db'}")
    try:
        rc = main([str(pipe) if word == "PIPE" else word for word in argv])
    except SystemExit as exc:  # the parser exits itself
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert expected in err, err
    assert "Traceback" not in err


def test_the_readers_say_what_a_path_is_and_never_wait_on_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "p"
    os.mkfifo(fifo)  # no writer: an open that waited would never return
    (tmp_path / "f").write_bytes(b"a\r\nb\rc\n")
    (tmp_path / "link").symlink_to(tmp_path / "f")
    assert special_file(fifo) == "a named pipe"
    assert special_file("/dev/null") == "a character device"
    for plain in (tmp_path / "f", tmp_path / "link", tmp_path, tmp_path / "nothing"):
        assert special_file(plain) is None
    with pytest.raises(NotARegularFile, match="is a named pipe, not a regular file"):
        read_bytes(fifo)
    with pytest.raises(NotARegularFile, match="is a character device"):
        read_bytes("/dev/zero", 10)
    with pytest.raises(NotARegularFile, match="is a folder"):
        read_text(tmp_path)
    assert read_bytes(tmp_path / "link", 3) == b"a\r\n"
    assert read_text(tmp_path / "f") == (tmp_path / "f").read_text()  # line ends as before
