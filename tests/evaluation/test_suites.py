"""The suite loader (every error names file, line and field) and the bundled suites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluation.errors import SuiteError
from evaluation.suites import Case, Message, load_suite, suite_paths

BUNDLED = Path(__file__).resolve().parents[2] / "benchmarks" / "suites"

QA_SIDECAR = "name: tiny\nversion: '1'\ntask_type: qa\ndefault_metrics: [exact_match]\n"
CLS_SIDECAR = (
    "name: tiny\nversion: '1'\ntask_type: classification\n"
    "default_metrics: [accuracy]\nlabels: ['yes', 'no']\n"
)


def qa_case(**changes: Any) -> dict[str, Any]:
    """A valid QA case with ``changes`` applied; a change to ``...`` removes the key."""
    case = {"id": "c1", "input": "What is 2 + 2?", "references": ["4", "four"]}
    case.update(changes)
    return {k: v for k, v in case.items() if v is not ...}


def write_suite(tmp_path: Path, lines: list[Any], sidecar: str | None = QA_SIDECAR) -> Path:
    """Write ``tiny.jsonl`` (dicts are JSON-encoded, strings written as they are) and,
    unless ``sidecar`` is None, ``tiny.suite.yaml``."""
    path = tmp_path / "tiny.jsonl"
    text = "".join((json.dumps(x) if isinstance(x, dict | list) else x) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    if sidecar is not None:
        (tmp_path / "tiny.suite.yaml").write_text(sidecar, encoding="utf-8")
    return path


def load_error(path: Path) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    return info.value


# --- bundled suites --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "task_type"),
    [
        ("qa-short", "qa"),
        ("summarize-short", "summarization"),
        ("classify-intent", "classification"),
    ],
)
def test_bundled_suite_loads(stem: str, task_type: str) -> None:
    suite = load_suite(BUNDLED / f"{stem}.jsonl")
    assert suite.name == stem
    assert suite.task_type == task_type
    assert 30 <= len(suite.cases) <= 40
    assert suite.default_metrics
    assert suite.path == BUNDLED / f"{stem}.jsonl"
    assert all(case.targets for case in suite.cases)


def test_qa_suite_has_groups_chat_inputs_and_answers_in_the_passage() -> None:
    suite = load_suite(BUNDLED / "qa-short.suite.yaml")
    groups: dict[str, int] = {}
    for case in suite.cases:
        assert case.group is not None
        groups[case.group] = groups.get(case.group, 0) + 1
    assert len(groups) >= 5
    assert min(groups.values()) >= 2
    assert suite.default_metrics == ("exact_match", "contains", "output_length")
    chats = [case for case in suite.cases if isinstance(case.input, tuple)]
    assert len(chats) >= 2
    assert any(case.system for case in suite.cases)
    for case in suite.cases:
        messages = case.input if isinstance(case.input, tuple) else ()
        text = " ".join(m.content for m in messages) or case.input_text
        assert any(ref.lower() in text.lower() for ref in case.references), case.id


def test_summarization_suite_has_one_or_two_one_sentence_references() -> None:
    suite = load_suite(BUNDLED / "summarize-short.jsonl")
    for case in suite.cases:
        assert 1 <= len(case.references) <= 2, case.id
        for reference in case.references:
            assert reference.count(". ") == 0 and reference.endswith("."), case.id
            assert len(reference) < len(case.input_text), case.id


def test_classification_suite_uses_every_label() -> None:
    suite = load_suite(BUNDLED / "classify-intent.jsonl")
    assert set(suite.labels) == {"billing", "technical", "account", "cancellation", "other"}
    used = [case.label for case in suite.cases]
    assert set(used) == set(suite.labels)
    assert min(used.count(label) for label in suite.labels) >= 5
    assert all(case.targets == (case.label,) for case in suite.cases)
    assert all(case.system for case in suite.cases)


# --- loading valid files ---------------------------------------------------------------


def test_valid_suite_round_trip(tmp_path: Path) -> None:
    chat = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "Capital of France?"},
    ]
    write_suite(
        tmp_path,
        [
            qa_case(system="Be brief.", group="g1", metadata={"k": 1}),
            "",
            qa_case(id="c2", input=chat, references="Paris", group=None),
        ],
    )
    suite = load_suite(tmp_path / "tiny.suite.yaml")
    assert (suite.name, suite.version, suite.task_type) == ("tiny", "1", "qa")
    assert suite.default_metrics == ("exact_match",)
    first, second = suite.cases
    assert first == Case(
        id="c1", input="What is 2 + 2?", references=("4", "four"), system="Be brief.", group="g1"
    )
    assert first.metadata == {"k": 1}
    assert first.input_text == "What is 2 + 2?"
    assert first.targets == ("4", "four")
    assert second.input == tuple(Message(**m) for m in chat)
    assert second.input_text == "Capital of France?"
    assert second.targets == ("Paris",)
    assert second.group is None
    assert suite.case("c2") is second
    with pytest.raises(KeyError):
        suite.case("missing")


def test_classification_case_targets_are_its_label(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [{"id": "a", "input": "Is it?", "label": "yes"}], CLS_SIDECAR)
    suite = load_suite(path)
    assert suite.labels == ("yes", "no")
    assert suite.cases[0].targets == ("yes",)


def test_integer_version_is_read_as_a_string(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case()], QA_SIDECAR.replace("'1'", "3"))
    assert load_suite(path).version == "3"


def test_suite_paths_from_either_file(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case()])
    pair = (path, tmp_path / "tiny.suite.yaml")
    assert suite_paths(path) == pair
    assert suite_paths(tmp_path / "tiny.suite.yaml") == pair


# --- file-level errors -----------------------------------------------------------------


def test_wrong_kind_of_path(tmp_path: Path) -> None:
    err = load_error(tmp_path / "tiny.csv")
    assert err.path == str(tmp_path / "tiny.csv")
    assert "expected a suite's .jsonl file" in str(err) and "tiny.csv" in str(err)


def test_missing_case_file(tmp_path: Path) -> None:
    (tmp_path / "tiny.suite.yaml").write_text(QA_SIDECAR)
    err = load_error(tmp_path / "tiny.suite.yaml")
    assert err.path == str(tmp_path / "tiny.jsonl")
    assert "does not exist" in str(err)


def test_missing_sidecar(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case()], sidecar=None)
    err = load_error(path)
    assert err.path == str(tmp_path / "tiny.suite.yaml")
    assert err.line is None
    assert "missing sidecar" in str(err) and "tiny.suite.yaml" in str(err)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_case_file(tmp_path: Path, content: str) -> None:
    write_suite(tmp_path, [])
    (tmp_path / "tiny.jsonl").write_text(content)
    err = load_error(tmp_path / "tiny.jsonl")
    assert err.path == str(tmp_path / "tiny.jsonl")
    assert "no cases" in str(err)


def test_case_file_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case()])
    path.write_bytes(path.read_bytes() + b'{"id": "\xff"}\n')
    err = load_error(path)
    assert (err.line, err.field) == (2, None)
    assert "not UTF-8" in str(err)


def test_invalid_json_names_line_and_json_error(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case(), '{"id": "c2", "input": "x",}'])
    err = load_error(path)
    assert (err.path, err.line, err.field) == (str(path), 2, None)
    assert "invalid JSON" in str(err) and "column" in str(err)
    assert str(err).startswith(f"{path}:2: ")


def test_line_that_is_not_an_object(tmp_path: Path) -> None:
    err = load_error(write_suite(tmp_path, [["c1", "x"]]))
    assert (err.line, err.field) == (1, None)
    assert "expected a JSON object" in str(err) and "got a list of 2" in str(err)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case(), qa_case(id="c2"), qa_case()])
    err = load_error(path)
    assert (err.line, err.field) == (3, "id")
    assert "duplicate id 'c1'" in str(err) and "line 1" in str(err)


def test_all_problems_are_collected_and_the_first_is_raised(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case(id=42), qa_case(id="ok"), "{", qa_case(id="x", oops=1)])
    err = load_error(path)
    assert (err.line, err.field) == (1, "id")
    assert "expected a non-empty string, got 42" in str(err)
    lines = str(err).splitlines()
    assert lines[1] == "2 more problems in this file:"
    assert (
        lines[2]
        == f"  {path}:3: invalid JSON: Expecting property name enclosed in double quotes (column 2)"
    )
    assert lines[3].startswith(f"  {path}:4: field 'oops': unknown key")


# --- case errors -----------------------------------------------------------------------

BAD_CASES = [
    # (the case line, the field named, words the message must hold)
    (qa_case(inptu="typo"), "inptu", "unknown key"),
    (qa_case(id=...), "id", "required key is missing"),
    (qa_case(id=42), "id", "expected a non-empty string, got 42"),
    (qa_case(id="  "), "id", "got a blank string"),
    (qa_case(input=...), "input", "required key is missing"),
    (qa_case(input=""), "input", "got an empty string"),
    (qa_case(input={"text": "x"}), "input", "got an object"),
    (qa_case(input=[]), "input", "got an empty list"),
    (qa_case(input=["hi"]), "input[0]", 'expected a message {role, content}, got "hi"'),
    (qa_case(input=[{"role": "bot", "content": "x"}]), "input[0].role", 'got "bot"'),
    (qa_case(input=[{"role": "user", "content": ""}]), "input[0].content", "got an empty string"),
    (
        qa_case(input=[{"role": "user", "content": "x", "name": "n"}]),
        "input[0].name",
        "unknown key",
    ),
    (
        qa_case(input=[{"role": "system", "content": "x"}]),
        "input",
        "at least one message with role 'user'",
    ),
    (
        qa_case(
            input=[{"role": "system", "content": "s"}, {"role": "user", "content": "q"}], system="t"
        ),
        "system",
        "given twice",
    ),
    (qa_case(system=7), "system", "expected a non-empty string, got 7"),
    (qa_case(group=True), "group", "got true"),
    (qa_case(metadata=[1]), "metadata", "expected an object, got a list of 1"),
    (qa_case(references=...), "references", "required for qa suites"),
    (qa_case(references=[]), "references", "expected a non-empty list of strings"),
    (qa_case(references=["4", 4]), "references[1]", "expected a non-empty string, got 4"),
    (qa_case(references=""), "references", "got an empty string"),
    (qa_case(label="x"), "label", "only to classification suites"),
]


@pytest.mark.parametrize(("record", "field", "words"), BAD_CASES)
def test_bad_case_names_line_field_and_problem(
    tmp_path: Path, record: dict[str, Any], field: str, words: str
) -> None:
    path = write_suite(tmp_path, [qa_case(id="fine"), "", record])
    err = load_error(path)
    assert (err.path, err.line, err.field) == (str(path), 3, field)
    assert words in str(err)
    assert str(err).startswith(f"{path}:3: field '{field}': ")


def test_null_means_not_given_for_optional_keys(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case(system=None, group=None, metadata=None, label=None)])
    case = load_suite(path).cases[0]
    assert (case.system, case.group, case.label, case.metadata) == (None, None, None, {})


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"id": "a", "input": "q"}, "label", "required for classification suites"),
        (
            {"id": "a", "input": "q", "label": "maybe"},
            "label",
            'expected one of the suite\'s labels (yes, no), got "maybe"',
        ),
        (
            {"id": "a", "input": "q", "label": "yes", "references": ["yes"]},
            "references",
            "take a label, not references",
        ),
    ],
)
def test_bad_classification_case(
    tmp_path: Path, record: dict[str, Any], field: str, words: str
) -> None:
    err = load_error(write_suite(tmp_path, [record], CLS_SIDECAR))
    assert (err.line, err.field) == (1, field)
    assert words in str(err)


# --- sidecar errors --------------------------------------------------------------------

BAD_SIDECARS = [
    # (sidecar text, the field named, words the message must hold)
    (QA_SIDECAR + "default_metric: [x]\n", "default_metric", "unknown key"),
    (QA_SIDECAR.replace("name: tiny\n", ""), "name", "required key is missing"),
    (QA_SIDECAR.replace("name: tiny", "name: 42"), "name", "expected a non-empty string, got 42"),
    (QA_SIDECAR.replace("'1'", "1.10"), "version", "got 1.1 (quote it"),
    (
        QA_SIDECAR.replace("task_type: qa", "task_type: translation"),
        "task_type",
        'expected one of qa, summarization, classification, generation, code, got "translation"',
    ),
    (
        QA_SIDECAR.replace("[exact_match]", "exact_match"),
        "default_metrics",
        'expected a non-empty list of strings, got "exact_match"',
    ),
    (
        QA_SIDECAR.replace("[exact_match]", "[exact_match, 3]"),
        "default_metrics[1]",
        "expected a non-empty string, got 3",
    ),
    (QA_SIDECAR + "description: [a]\n", "description", "expected a string, got a list of 1"),
    (QA_SIDECAR + "labels: [a, b]\n", "labels", "only to classification suites, not qa"),
    (
        CLS_SIDECAR.replace("labels: ['yes', 'no']\n", ""),
        "labels",
        "required for classification suites",
    ),
    (CLS_SIDECAR.replace("['yes', 'no']", "['yes', 'yes']"), "labels", "distinct"),
    (CLS_SIDECAR.replace("['yes', 'no']", "['yes']"), "labels", "at least two labels, got 1"),
    (CLS_SIDECAR.replace("['yes', 'no']", "[yes, no]"), "labels[0]", "got true (quote it)"),
]


@pytest.mark.parametrize(("sidecar", "field", "words"), BAD_SIDECARS)
def test_bad_sidecar_names_field_and_problem(
    tmp_path: Path, sidecar: str, field: str, words: str
) -> None:
    write_suite(tmp_path, [qa_case()], sidecar)
    err = load_error(tmp_path / "tiny.jsonl")
    assert (err.path, err.line, err.field) == (str(tmp_path / "tiny.suite.yaml"), None, field)
    assert words in str(err)


def test_sidecar_problems_are_collected(tmp_path: Path) -> None:
    sidecar = "name: ''\nversion: '1'\ntask_type: nope\nextra: 1\n"
    write_suite(tmp_path, [qa_case()], sidecar)
    err = load_error(tmp_path / "tiny.jsonl")
    assert err.field == "extra"
    where = tmp_path / "tiny.suite.yaml"
    assert str(err).splitlines()[1:] == [
        "3 more problems in this file:",
        f"  {where}: field 'default_metrics': required key is missing",
        f"  {where}: field 'name': expected a non-empty string, got an empty string",
        f"  {where}: field 'task_type': expected one of qa, summarization, classification, "
        'generation, code, got "nope"',
    ]


def test_sidecar_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    write_suite(tmp_path, [qa_case()], QA_SIDECAR + "default_metrics: [a\n")
    err = load_error(tmp_path / "tiny.jsonl")
    assert err.path == str(tmp_path / "tiny.suite.yaml")
    assert err.line is not None and err.line >= 5
    assert "invalid YAML" in str(err)


@pytest.mark.parametrize(("text", "found"), [("- a\n- b\n", "a list of 2"), ("", "null")])
def test_sidecar_that_is_not_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    write_suite(tmp_path, [qa_case()], text)
    err = load_error(tmp_path / "tiny.jsonl")
    assert "expected a mapping" in str(err) and f"got {found}" in str(err)


# --- issue 11: hints, every message, metrics that fit the task type --------------------


def test_near_miss_case_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    case = qa_case(reference=["4"], references=...)
    err = load_error(write_suite(tmp_path, [case]))
    assert (err.line, err.field) == (1, "reference")
    assert "unknown key; did you mean 'references'?" in str(err)


def test_near_miss_sidecar_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    write_suite(tmp_path, [qa_case()], QA_SIDECAR + "lables: [a, b]\n")
    err = load_error(tmp_path / "tiny.jsonl")
    assert err.field == "lables" and "did you mean 'labels'?" in str(err)


def test_many_problems_show_the_first_ten_messages_then_a_count(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [qa_case(id=f"c{i}", input=i) for i in range(14)])
    lines = str(load_error(path)).splitlines()
    assert lines[0].endswith(
        ":1: field 'input': expected a non-empty string or list of messages, got 0"
    )
    assert lines[1] == "13 more problems in this file:"
    assert [line.split(": field")[0] for line in lines[2:11]] == [
        f"  {path}:{n}" for n in range(2, 11)
    ]
    assert all("expected a non-empty string or list of messages" in line for line in lines[2:11])
    assert lines[11:] == ["  ... and 4 more problems"]


@pytest.mark.parametrize(
    ("metrics", "field", "words"),
    [
        (
            "[exact_match, accuracy]",
            "default_metrics[1]",
            "metric 'accuracy' cannot score a qa suite; it serves classification suites only",
        ),
        (
            "[rougeL, exact_mach]",
            "default_metrics[1]",
            "unknown metric 'exact_mach'; did you mean 'exact_match'?",
        ),
    ],
)
def test_sidecar_metrics_must_exist_and_fit_the_task_type(
    tmp_path: Path, metrics: str, field: str, words: str
) -> None:
    sidecar = QA_SIDECAR.replace("[exact_match]", metrics)
    write_suite(tmp_path, [qa_case()], sidecar)
    err = load_error(tmp_path / "tiny.jsonl")
    assert err.field == field and words in str(err)


def test_a_folder_is_not_a_suite(tmp_path: Path) -> None:
    folder = tmp_path / "cases.jsonl"
    folder.mkdir()
    err = load_error(folder)
    assert "is a folder" in str(err) and "does not exist" not in str(err)
