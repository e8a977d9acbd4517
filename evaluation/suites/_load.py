"""Suites and cases: the benchmark data a sweep runs over.

A suite is a JSONL file of cases plus a YAML sidecar (``<name>.suite.yaml``) that names
it and says what kind of task it is. ``load_suite`` validates everything and reports
errors with file, line and field.
"""

from __future__ import annotations

import difflib
import json
import warnings
from pathlib import Path
from typing import Any

import yaml

from evaluation import bounded_json, safe_yaml
from evaluation.errors import InputWarning, SuiteError
from evaluation.input_files import (
    MAX_DATA_BYTES,
    MAX_WRITTEN_BYTES,
    read_bytes,
    read_text,
    special_file,
)
from evaluation.storable_text import unstorable
from evaluation.suites import _code_tests as code_tests
from evaluation.suites._model import (
    ROLES,
    SIDECAR_SUFFIX,
    TASK_TYPES,
    Case,
    Message,
    Suite,
    suite_file_problem,
)


class ForgeableTestWarning(InputWarning):
    """A code suite's hidden test whose verdict a program written to game it can forge."""


MAX_SHOWN = 10  # problems listed in full when a file has many
MAX_SUITE_BYTES = MAX_DATA_BYTES
"""The largest cases file read (512 MiB): it is read whole, as it is stored, ~4 times its
size in memory (a 300 MB case: 1.2 GB); refused before it is read (newcomer S8)."""
MAX_CASES = 1_000_000
"""The most cases a suite holds: `plan` reads ~24,000 a second of CPU in ~0.9 KB each
(400,000: 16.8 s, 359 MB); 3,000,000 kept it busy past 400 s under load at 1.9 GB."""
SIDECAR_KEYS = (
    "name",
    "version",
    "task_type",
    "default_metrics",
    "labels",
    "description",
    "documents",  # a corpus file or a generator: evaluation/documents/loading.py
)
CASE_KEYS = ("id", "input", "system", "references", "label", "group", "metadata")


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite: ``path`` is its ``.jsonl`` file or its ``.suite.yaml``.

    The whole file is checked before anything is raised: the SuiteError carries the first
    problem's file, line and field, and its message says where the others are.
    """
    jsonl_path, sidecar_path = suite_paths(path)
    header = _load_sidecar(sidecar_path)
    cases = _load_cases(jsonl_path, header)
    if header.get("documents") is not None:
        from evaluation.documents import attach_documents, suite_documents  # imports Case

        documents = suite_documents(header["documents"], sidecar_path)
        cases = attach_documents(cases, documents, jsonl_path)
    return Suite(
        name=header["name"],
        version=header["version"],
        task_type=header["task_type"],
        default_metrics=header["default_metrics"],
        cases=cases,
        labels=header["labels"],
        description=header["description"],
        path=jsonl_path,
    )


def suite_paths(path: str | Path) -> tuple[Path, Path]:
    """The (cases ``.jsonl``, ``.suite.yaml`` sidecar) pair, given either file."""
    path = Path(path)
    if path.is_dir():
        raise SuiteError(
            f"is a folder; expected a suite's .jsonl file or its {SIDECAR_SUFFIX} sidecar",
            path=str(path),
        )
    if path.name.endswith(SIDECAR_SUFFIX):
        jsonl, sidecar = path.with_name(path.name.removesuffix(SIDECAR_SUFFIX) + ".jsonl"), path
    elif path.suffix == ".jsonl":
        jsonl, sidecar = path, path.with_name(path.stem + SIDECAR_SUFFIX)
    else:
        raise SuiteError(str(suite_file_problem(path)), path=str(path))
    for file, what in ((jsonl, "case file"), (sidecar, "sidecar")):
        if (kind := special_file(file)) is not None:  # a named pipe was "not found"
            raise SuiteError(f"the suite's {what} is {kind}, not a file", path=str(file))
    if not jsonl.is_file():
        raise SuiteError("the suite's case file does not exist", path=str(jsonl))
    if not sidecar.is_file():
        raise SuiteError(
            f"missing sidecar: expected {sidecar.name} beside {jsonl.name} "
            "(keys: name, version, task_type, default_metrics)",
            path=str(sidecar),
        )
    return jsonl, sidecar


def _describe(value: Any) -> str:
    """A found value, as the user would recognise it in their file."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if not value.strip():
            return "a blank string" if value else "an empty string"
        return json.dumps(value if len(value) <= 40 else value[:37] + "...", ensure_ascii=False)
    if isinstance(value, list):
        return f"a list of {len(value)}" if value else "an empty list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _did_you_mean(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class _Problems:
    """Collects the problems of one file so that they can all be fixed in one pass."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.found: list[tuple[str, int | None, str | None]] = []

    def add(self, message: str, line: int | None = None, field: str | None = None) -> None:
        self.found.append((message, line, field))

    def text(self, value: Any, line: int | None, field: str) -> bool:
        """Check that ``value`` is a non-empty string."""
        if _is_text(value):
            return True
        # Only sidecar problems have no line; YAML reads yes/no/on/off as booleans.
        hint = " (quote it)" if line is None and isinstance(value, bool | int | float) else ""
        self.add(f"expected a non-empty string, got {_describe(value)}{hint}", line, field)
        return False

    def texts(self, value: Any, line: int | None, field: str) -> tuple[str, ...] | None:
        """A non-empty list of non-empty strings, or None once the problem is recorded."""
        if not isinstance(value, list) or not value:
            self.add(f"expected a non-empty list of strings, got {_describe(value)}", line, field)
            return None
        checks = [self.text(item, line, f"{field}[{i}]") for i, item in enumerate(value)]
        return tuple(value) if all(checks) else None

    def raise_if_any(self) -> None:
        """Raise the first problem; its message goes on to list each other one (file,
        line, field and message; the first MAX_SHOWN in all, then how many more)."""
        if not self.found:
            return
        (message, line, field), *rest = self.found
        if rest:
            shown = [
                str(SuiteError(m, path=self.path, line=ln, field=fd))
                for m, ln, fd in rest[: MAX_SHOWN - 1]
            ]
            hidden = len(rest) - len(shown)
            more = [f"... and {hidden} more problem{'s' * (hidden != 1)}"] if hidden else []
            total = len(self.found)
            message += f"\n{total - 1} more problem{'s' * (total != 2)} in this file:"
            message += "".join(f"\n  {text}" for text in [*shown, *more])
        raise SuiteError(message, path=self.path, line=line, field=field)


# --- sidecar ---------------------------------------------------------------------------


def _load_sidecar(path: Path) -> dict[str, Any]:
    try:
        raw = safe_yaml.load(read_text(path, encoding="utf-8-sig", most=MAX_WRITTEN_BYTES))
    except OSError as exc:
        raise SuiteError(f"cannot read the file: {exc.strerror}", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise SuiteError(f"not UTF-8 text: {exc.reason}", path=str(path)) from exc
    except yaml.YAMLError as exc:
        line, _ = safe_yaml.position(exc)
        message = f"invalid YAML: {safe_yaml.problem(exc)}"
        raise SuiteError(message, path=str(path), line=line) from exc
    if not isinstance(raw, dict):
        raise SuiteError(
            f"expected a mapping with keys {', '.join(SIDECAR_KEYS[:4])}; got {_describe(raw)}",
            path=str(path),
        )

    problems = _Problems(path)
    for key in raw:
        if key not in SIDECAR_KEYS:
            hint = _did_you_mean(str(key), SIDECAR_KEYS)
            problems.add(
                f"unknown key{hint} (expected one of {', '.join(SIDECAR_KEYS)})", field=str(key)
            )
    for key in SIDECAR_KEYS[:4]:
        if key not in raw:
            problems.add("required key is missing", field=key)

    header: dict[str, Any] = {"labels": (), "description": ""}
    if "name" in raw and problems.text(raw["name"], None, "name"):
        header["name"] = raw["name"]
    version = raw.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        header["version"] = str(version)
    elif "version" in raw and _is_text(version):
        header["version"] = version
    elif "version" in raw:
        hint = " (quote it: YAML reads 1.10 as 1.1)" if isinstance(version, float) else ""
        problems.add(f"expected a string, got {_describe(version)}{hint}", field="version")
    if raw.get("task_type") in TASK_TYPES:
        header["task_type"] = raw["task_type"]
    elif "task_type" in raw:
        found = _describe(raw["task_type"])
        problems.add(f"expected one of {', '.join(TASK_TYPES)}, got {found}", field="task_type")
    if "default_metrics" in raw:
        metrics = problems.texts(raw["default_metrics"], None, "default_metrics")
        header["default_metrics"] = tuple(dict.fromkeys(metrics or ()))
        _check_metrics(metrics or (), header.get("task_type"), problems)
    description = raw.get("description")
    if isinstance(description, str):
        header["description"] = description.strip()
    elif description is not None:
        problems.add(f"expected a string, got {_describe(description)}", field="description")
    header["labels"] = _sidecar_labels(raw.get("labels"), header.get("task_type"), problems)
    header["documents"] = raw.get("documents")
    problems.raise_if_any()
    return header


def _check_metrics(names: tuple[str, ...], task_type: str | None, problems: _Problems) -> None:
    """Known metrics that can score this task type (accuracy needs labels)."""
    from evaluation.metrics import metric_names, unsuited_metric  # metrics import Case

    known = metric_names()
    for i, name in enumerate(names):
        field = f"default_metrics[{i}]"
        if name not in known:
            problems.add(f"unknown metric '{name}'{_did_you_mean(name, known)}", None, field)
        elif task_type is not None and (reason := unsuited_metric(name, task_type)):
            problems.add(reason, None, field)


def _sidecar_labels(labels: Any, task_type: str | None, problems: _Problems) -> tuple[str, ...]:
    """Classification suites must list their (distinct) labels; other suites have none."""
    if task_type != "classification":
        if labels is not None and task_type is not None:
            problems.add(
                f"labels apply only to classification suites, not {task_type}", None, "labels"
            )
        return ()
    if labels is None:
        problems.add("required for classification suites: the list of labels", None, "labels")
        return ()
    found = problems.texts(labels, None, "labels") or ()
    repeated = sorted({label for label in found if found.count(label) > 1})
    if repeated:
        problems.add(f"expected distinct labels, got {', '.join(repeated)} twice", None, "labels")
    elif found and len(found) < 2:
        problems.add(f"expected at least two labels, got {len(found)}", None, "labels")
    return found


# --- cases -----------------------------------------------------------------------------


def _load_cases(path: Path, header: dict[str, Any]) -> tuple[Case, ...]:
    try:
        data = _bounded_bytes(path)
    except OSError as exc:
        raise SuiteError(f"cannot read the file: {exc.strerror}", path=str(path)) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SuiteError(f"not UTF-8 text: {exc.reason}", path=str(path), line=line) from exc

    problems = _Problems(path)
    cases: list[Case] = []
    line_of: dict[str, int] = {}
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends.
    lines = text.split("\n")
    if len(lines) > MAX_CASES and (count := sum(1 for x in lines if x.strip())) > MAX_CASES:
        raise SuiteError(
            f"the suite has {count:,} cases; at most {MAX_CASES:,} (split it into suites "
            "that are each a sweep of their own)",
            path=str(path),
        )
    for line, raw_line in enumerate(lines, start=1):
        if not raw_line.strip():
            continue
        try:
            record = bounded_json.loads(raw_line, object_pairs_hook=_without_repeated_keys)
        except json.JSONDecodeError as exc:
            problems.add(f"invalid JSON: {exc.msg} (column {exc.colno})", line)
            continue
        except _RepeatedKey as repeated:
            problems.add(f"duplicate key '{repeated.key}' (JSON would keep the last)", line)
            continue
        case = _parse_case(record, line, header, problems)
        if case is None:
            continue
        if case.id in line_of:
            message = f"duplicate id '{case.id}': already used on line {line_of[case.id]}"
            problems.add(message, line, "id")
            continue
        line_of[case.id] = line
        cases.append(case)

    if not cases and not problems.found:
        raise SuiteError(
            "the suite has no cases (expected one JSON object per line)", path=str(path)
        )
    problems.raise_if_any()
    return tuple(cases)


def _bounded_bytes(path: Path) -> bytes:
    """The cases file's bytes; a ``SuiteError`` past ``MAX_SUITE_BYTES``, before it is
    read (and never more than one byte past it, should it grow meanwhile)."""
    size = path.stat().st_size
    data = read_bytes(path, MAX_SUITE_BYTES + 1) if size <= MAX_SUITE_BYTES else None
    if data is None or len(data) > MAX_SUITE_BYTES:
        raise SuiteError(
            f"the suite's cases file is {max(size, len(data or b'')):,} bytes; at most "
            f"{MAX_SUITE_BYTES:,} (512 MiB: it is read whole, as it is stored)",
            path=str(path),
        )
    return data


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused where a key repeats: ``json`` would silently keep the
    last value (a case whose id is not the one its author sees first)."""
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _RepeatedKey(key)
        record[key] = value
    return record


def _unstorable_field(value: Any, field: str = "") -> tuple[str, str] | None:
    """The field of the first text (key or value) in ``value`` the results database
    cannot store (``storable_text.unstorable``) and why, or None: a case holding one
    would fail mid-run."""
    if isinstance(value, str):
        why = unstorable(value)
        return None if why is None else (field or "<case>", why)
    if not isinstance(value, dict | list):
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        name = f"{field}[{key}]" if isinstance(value, list) else f"{field}.{key}".lstrip(".")
        if isinstance(key, str) and (why := unstorable(key)) is not None:
            return field or "<case>", f"the key {key!r} {why}"
        found = _unstorable_field(inner, name)
        if found is not None:
            return found
    return None


def _parse_case(record: Any, line: int, header: dict[str, Any], problems: _Problems) -> Case | None:
    """One validated case, or None once what is wrong with the line is recorded."""
    if not isinstance(record, dict):
        problems.add(f"expected a JSON object (one case), got {_describe(record)}", line)
        return None
    before = len(problems.found)
    for key in record:
        if key not in CASE_KEYS:
            hint = _did_you_mean(key, CASE_KEYS)
            problems.add(f"unknown key{hint} (expected one of {', '.join(CASE_KEYS)})", line, key)
    unfit = _unstorable_field(record)
    if unfit is not None:
        problems.add(f"{unfit[1]}; remove it", line, unfit[0])
        return None
    # null means "not given" for every optional key: exporters often write it.
    given = {key: value for key, value in record.items() if value is not None}

    for key in ("id", "input"):
        if key not in given:
            problems.add("required key is missing", line, key)
    if "id" in given:
        problems.text(given["id"], line, "id")
    case_input = _parse_input(given["input"], line, problems) if "input" in given else ""
    has_system_message = isinstance(case_input, tuple) and any(
        m.role == "system" for m in case_input
    )
    if "system" in given and problems.text(given["system"], line, "system") and has_system_message:
        problems.add("given twice: as 'system' and as a system message in 'input'", line, "system")
    if "group" in given:
        problems.text(given["group"], line, "group")
    if not isinstance(given.get("metadata", {}), dict):
        problems.add(f"expected an object, got {_describe(given['metadata'])}", line, "metadata")
    references = given.get("references", ())
    if isinstance(references, str):
        references = (references,) if problems.text(references, line, "references") else ()
    elif "references" in given:
        references = problems.texts(references, line, "references") or ()
    if "label" in given:
        problems.text(given["label"], line, "label")
    _check_targets(given, header, line, problems)

    if len(problems.found) > before:
        return None
    return Case(
        id=given["id"],
        input=case_input,
        references=tuple(references),
        label=given.get("label"),
        system=given.get("system"),
        group=given.get("group"),
        metadata=given.get("metadata", {}),
    )


def _parse_input(value: Any, line: int, problems: _Problems) -> str | tuple[Message, ...]:
    """A prompt string, or chat messages with at least one from the user."""
    if isinstance(value, str):
        problems.text(value, line, "input")
        return value
    if not isinstance(value, list) or not value:
        found = _describe(value)
        problems.add(f"expected a non-empty string or list of messages, got {found}", line, "input")
        return ""
    messages: list[Message] = []
    for i, item in enumerate(value):
        field = f"input[{i}]"
        if not isinstance(item, dict):
            found = _describe(item)
            problems.add(f"expected a message {{role, content}}, got {found}", line, field)
            continue
        for key in item:
            if key not in ("role", "content"):
                problems.add(
                    "unknown key; a message has only role and content", line, f"{field}.{key}"
                )
        role = item.get("role")
        if role not in ROLES:
            found = _describe(role)
            problems.add(f"expected one of {', '.join(ROLES)}, got {found}", line, f"{field}.role")
        if problems.text(item.get("content"), line, f"{field}.content") and role in ROLES:
            messages.append(Message(role=role, content=item["content"]))
    if len(messages) == len(value) and not any(m.role == "user" for m in messages):
        problems.add("expected at least one message with role 'user', found none", line, "input")
    return tuple(messages)


def _check_targets(
    given: dict[str, Any], header: dict[str, Any], line: int, problems: _Problems
) -> None:
    """What the task type needs: references for qa and summarization, a label from the
    suite's label set for classification."""
    task_type = header.get("task_type")
    if task_type in ("qa", "summarization"):
        if "references" not in given:
            problems.add(
                f"required for {task_type} suites: one or more reference answers",
                line,
                "references",
            )
        if "label" in given:
            problems.add(
                f"labels apply only to classification suites, not {task_type}", line, "label"
            )
    elif task_type == "classification":
        labels = header["labels"]
        label = given.get("label")
        if label is None:
            problems.add("required for classification suites", line, "label")
        elif _is_text(label) and labels and label not in labels:
            found = _describe(label)
            problems.add(
                f"expected one of the suite's labels ({', '.join(labels)}), got {found}",
                line,
                "label",
            )
        if "references" in given:
            problems.add("classification cases take a label, not references", line, "references")
    elif task_type == "code":
        before = len(problems.found)
        _check_code_metadata(given.get("metadata"), line, problems)
        references = given.get("references", [])
        references = [references] if isinstance(references, str) else references
        if isinstance(references, list):
            for i, reference in enumerate(references):
                if _is_text(reference):
                    _check_python(reference, line, f"references[{i}]", problems)
            if len(problems.found) == before:  # all of it is valid Python
                _check_code_tests(given["metadata"], references, line, problems)
    elif task_type == "generation" and isinstance(given.get("metadata"), dict):
        _check_constraints(given["metadata"].get("constraints"), line, problems)


def _check_code_metadata(meta: Any, line: int, problems: _Problems) -> None:
    """A code case names the function to write and its hidden tests."""
    meta = meta if isinstance(meta, dict) else {}
    entry = meta.get("entry_point")
    if not (isinstance(entry, str) and entry.isidentifier()):
        found = _describe(entry)
        problems.add(
            f"required for code suites: a function name, got {found}", line, "metadata.entry_point"
        )
    tests = meta.get("tests")
    if not (isinstance(tests, list) and tests):
        found = _describe(tests)
        problems.add(
            f"required for code suites: a non-empty list of test statements, got {found}",
            line,
            "metadata.tests",
        )
        return
    for i, test in enumerate(tests):
        if _is_text(test):
            _check_python(test, line, f"metadata.tests[{i}]", problems)
        else:
            found = _describe(test)
            problems.add(
                f"expected a test statement (a non-empty string), got {found}",
                line,
                f"metadata.tests[{i}]",
            )
    if "prefix" in meta and not isinstance(meta["prefix"], str):
        problems.add(f"expected a string, got {_describe(meta['prefix'])}", line, "metadata.prefix")


def _check_code_tests(
    meta: dict[str, Any], references: list[str], line: int, problems: _Problems
) -> None:
    """Refuse what would fail every model or pass every one, or fail the reference; flag
    tests whose verdict a program can forge (``_code_tests``)."""
    entry = meta["entry_point"]
    solution = {entry}
    for i, reference in enumerate(references):
        names = code_tests.defined_names(reference)
        if entry not in names:
            problems.add(
                f"does not define the entry point '{entry}' (metadata.entry_point)",
                line,
                f"references[{i}]",
            )
        solution |= names
    for i, test in enumerate(meta["tests"]):
        field = f"metadata.tests[{i}]"
        if code_tests.checks_nothing(test, solution):
            problems.add(
                f"checks nothing: it never uses '{entry}' or a name the reference defines,"
                " so every program would pass it",
                line,
                field,
            )
            continue
        unknown = sorted(code_tests.free_names(test) - solution) if references else []
        if unknown:
            problems.add(
                f"uses {', '.join(unknown)}, which the test does not import and the reference"
                " does not define: every program would fail it with NameError",
                line,
                field,
            )
        elif code_tests.checked_in_process(test):
            warnings.warn(
                f"{problems.path}:{line}: {field}: checked inside the program's process (only"
                " `assert f(...) == <literal>` and its `!=`, `is True/False/None`, `not` and"
                " `bool()` forms, and `try: ...; raise AssertionError / except E: pass`, are"
                " decided outside it; docs/sandbox.md): a program written to game this test"
                " can pass it",
                ForgeableTestWarning,
                stacklevel=2,
            )


def _check_python(source: str, line: int, field: str, problems: _Problems) -> None:
    """Hidden tests and reference solutions must compile: one that does not would count
    as every model's failure."""
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for `assert (x, "why")`
            warnings.simplefilter("ignore")
            compile(source, field, "exec", dont_inherit=True)
    # ValueError: a NUL byte in the source; RecursionError: nested too deep to compile
    except (SyntaxError, ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno} of the code)" if getattr(exc, "lineno", None) else ""
        what = getattr(exc, "msg", None) or str(exc)
        problems.add(f"not valid Python: {what}{where}", line, field)


def _check_constraints(constraints: Any, line: int, problems: _Problems) -> None:
    from evaluation.metrics._constraints import CONSTRAINT_NAMES  # metrics import this module

    if constraints is None:
        return
    if not isinstance(constraints, dict):
        found = _describe(constraints)
        problems.add(
            f"expected an object of constraints, got {found}", line, "metadata.constraints"
        )
        return
    for key in constraints:
        if key not in CONSTRAINT_NAMES:
            problems.add(
                f"unknown constraint; expected one of {', '.join(CONSTRAINT_NAMES)}",
                line,
                f"metadata.constraints.{key}",
            )
