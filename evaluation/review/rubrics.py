"""Judge rubrics from YAML files: a mapping of criterion name to what its grades mean,
e.g. benchmarks/suites/write-constrained.rubric.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from evaluation import safe_yaml
from evaluation.errors import SpecError
from evaluation.input_files import MAX_WRITTEN_BYTES, read_text
from evaluation.review.judge import Rubric


def load_rubric(path: str | Path) -> Rubric:
    """The rubric in ``path``; SpecError naming the file and the criterion otherwise."""
    where = str(path)
    try:
        raw = safe_yaml.load(read_text(path, "utf-8-sig", most=MAX_WRITTEN_BYTES))
    except OSError as exc:
        message = f"cannot read the rubric: {exc.strerror}"
        raise SpecError(message, field="<document>", path=where) from exc
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise SpecError(message, field="<document>", path=where) from exc
    except yaml.YAMLError as exc:
        line, column = safe_yaml.position(exc)
        message = f"not valid YAML: {safe_yaml.problem(exc)}"
        raise SpecError(message, field="<document>", path=where, line=line, column=column) from exc
    if not isinstance(raw, dict) or not raw:
        raise SpecError(
            "expected a mapping of criterion name to what its grades 1-5 mean",
            field="<document>",
            path=where,
        )
    for name, text in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(
                "a criterion name is a word like 'clarity'", field=str(name), path=where
            )
        if not isinstance(text, str) or not text.strip():
            raise SpecError("expected the criterion's description", field=name, path=where)
    return Rubric({name: " ".join(text.split()) for name, text in raw.items()})
