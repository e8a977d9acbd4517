"""The docs a user follows still hold: every relative link of the README and the guide
resolves (the file, and the heading an ``#anchor`` names), every ``evalflow`` command
line of their code blocks parses with the real command line parser (nothing runs), every
YAML block loads and every whole spec among them is a valid sweep spec, and the bundled
sweeps' table lists every bundled sweep."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCS = [
    REPO / "README.md",
    REPO / "ARCHITECTURE.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "benchmarks" / "sweeps" / "README.md",
    REPO / "benchmarks" / "suites" / "README.md",
    REPO / "benchmarks" / "perf" / "README.md",
]

_FENCE = re.compile(r"^\s*```\s*(\w*)")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _name(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def _blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """The fenced code blocks of a markdown file: (language, first line number, lines)."""
    blocks: list[tuple[str, int, list[str]]] = []
    current: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = _FENCE.match(line)
        if fence and current is None:
            current = (fence.group(1), number + 1, [])
        elif fence:
            blocks.append(current)
            current = None
        elif current is not None:
            current[2].append(line)
    return blocks


def _prose(path: Path) -> list[tuple[int, str]]:
    """The lines of a markdown file outside its code blocks."""
    inside, lines = False, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            inside = not inside
        elif not inside:
            lines.append((number, line))
    return lines


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a markdown file's headings: lower case, punctuation
    dropped, spaces as hyphens, a repeated one numbered (-1, -2 ...)."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose(path):
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1).strip())
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def test_anchors_are_made_as_github_makes_them():
    """A slug rule that matched nothing would pass the link test below."""
    page = REPO / "docs" / "running-for-real.md"
    assert "inference-engines-ollama-llamacpp-vllm" in anchors(page)
    assert "4-a-process-work-pool-and-the-deployments" in anchors(page)


def broken_links(path: Path) -> list[str]:
    broken = []
    for number, line in _prose(path):
        line = re.sub(r"`[^`]*`", "", line)  # a link in code is text, not a link
        for match in _LINK.finditer(line):
            target = match.group(1) or match.group(2)
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            where = (path.parent / file).resolve() if file else path
            if not where.exists():
                broken.append(f"{_name(path)}:{number}: {target} (no such file)")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{_name(path)}:{number}: {target} (no such heading)")
    return broken


@pytest.mark.parametrize("path", DOCS, ids=_name)
def test_every_relative_link_resolves(path: Path):
    assert not broken_links(path), "\n".join(broken_links(path))


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path: Path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## Its part\n", encoding="utf-8")
    page.write_text(
        "[ok](other.md#its-part) [gone](nowhere.md) [bad](other.md#no-part)\n"
        "`[in code](nowhere.md)`\n```\n[in a block](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert [line.split(": ", 1)[1] for line in broken_links(page)] == [
        "nowhere.md (no such file)",
        "other.md#no-part (no such heading)",
    ]


def documented_commands() -> list[tuple[str, list[str]]]:
    """Every ``evalflow`` command line of the docs' code blocks, as argv after the verb's
    program name, with where it is written (a synopsis with ``[optional]`` parts goes in
    a ```text block, which is not a command to copy)."""
    found = []
    for path in DOCS:
        for language, first, lines in _blocks(path):
            if language not in ("", "bash", "sh", "console"):
                continue
            for offset, line in enumerate(lines):
                if re.match(r"\s*(\.venv/bin/)?evalflow\s", line):
                    words = shlex.split(line, comments=True)
                    found.append((f"{_name(path)}:{first + offset}", words[1:]))
    return found


def test_the_docs_show_commands_of_every_kind():
    """A reader that found none would pass the test below."""
    verbs = {argv[0] for _, argv in documented_commands()}
    assert {"run", "plan", "show", "view", "doctor", "compare", "judge", "review"} <= verbs


_REPO_PATHS = ("benchmarks/", "docs/", "tests/", "deployments/")


def _a_file_of_the_reader_or_of_the_repo(kind):
    """``kind`` (an ``options`` check of an existing path) for a documented command: a
    path into this repository must be there; any other (``my-sweep.yaml``,
    ``/opt/evalflow/specs/nightly.yaml``) is the reader's own file."""

    def check(value: str) -> Path:
        if value.startswith(_REPO_PATHS):
            return kind(str(REPO / value))
        return Path(value)

    return check


def test_every_documented_command_parses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Each command line a page shows is one the parser takes as written (placeholders
    such as EXPERIMENT are words like any name), run from an empty folder where the files
    it writes could be written. A refused one exits 2 with its reason."""
    from flows.cli import options
    from flows.cli.app import build_parser

    for kind in ("existing_file", "existing_folder"):
        monkeypatch.setattr(
            options, kind, _a_file_of_the_reader_or_of_the_repo(getattr(options, kind))
        )
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    refused = []
    for where, argv in documented_commands():
        try:
            parser.parse_args(argv)
        except SystemExit:
            refused.append(f"{where}: evalflow {shlex.join(argv)}")
    assert not refused, "\n".join(refused)


def documented_yaml() -> list[tuple[Path, str, object]]:
    found = []
    for path in DOCS:
        for language, first, lines in _blocks(path):
            if language in ("yaml", "yml"):
                where = f"{_name(path)}:{first}"
                found.append((path, where, yaml.safe_load("\n".join(lines))))
    return found


def test_every_yaml_block_loads_and_every_whole_spec_is_valid():
    from evaluation.spec._load import parse_spec

    specs = 0
    for path, where, data in documented_yaml():
        if not (isinstance(data, dict) and {"name", "suite", "models"} <= set(data)):
            continue
        # a spec's suite is relative to the spec: the README's is saved at the top, the
        # guide's in benchmarks/sweeps/ (as its own comment says)
        base = REPO if path.parent == REPO else REPO / "benchmarks" / "sweeps"
        parse_spec(data, path=where, base_dir=base)
        specs += 1
    assert specs >= 3


def test_the_bundled_sweeps_table_lists_every_bundled_sweep():
    folder = REPO / "benchmarks" / "sweeps"
    table = (folder / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+\.yaml)` \|", table, flags=re.M))
    assert listed == {path.name for path in folder.glob("*.yaml")}


def test_the_guide_shows_the_readme_test_command():
    """docs/contributing.md explains the README's test command: the same one, as CI runs it."""
    from tests.test_install import _quick_start_commands

    _, tests = _quick_start_commands()
    assert tests in (REPO / "docs" / "contributing.md").read_text(encoding="utf-8")


_SOURCE_PATH = re.compile(
    r"(?<![\w/.])((?:evaluation|selection|flows|tasks|deployments|tests|benchmarks)/[\w/.-]*?\.py)\b"
)
MOVED = {
    "tasks/host_slots.py": "tasks/adapters/host_slots.py",
    "tasks/adapters/prefect_concurrency.py": "tasks/adapters/host_slots.py",
    "evaluation/backends/_pool.py": "evaluation/backends/_wire.py",
}
"""Files gone that figures measured before they went still name: each such line must
also name where its code is now (the first module of a split)."""


def stale_source_paths(path: Path) -> list[str]:
    """The project's source files that ``path`` names and that are not there, less those
    of :data:`MOVED` on a line that names where they went."""
    lines = enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
    return [
        f"{_name(path)}:{number}: {named}"
        for number, line in lines
        for named in _SOURCE_PATH.findall(line)
        if not (REPO / named).exists() and MOVED.get(named, "\0") not in line
    ]


def test_every_source_file_named_is_there_or_said_where_it_went(tmp_path: Path):
    stale = [found for path in DOCS for found in stale_source_paths(path)]
    assert not stale, "\n".join(stale)
    page = tmp_path / "page.md"  # the reader finds what it is for
    page.write_text(
        "tasks/adapters/prefect_concurrency.py 480\n"
        "tasks/adapters/prefect_concurrency.py 480 (since split: tasks/adapters/host_slots.py)\n"
        "`evaluation/nowhere.py` and flows/evaluate.py\n",
        encoding="utf-8",
    )
    assert stale_source_paths(page) == [
        "page.md:1: tasks/adapters/prefect_concurrency.py",
        "page.md:3: evaluation/nowhere.py",
    ]
