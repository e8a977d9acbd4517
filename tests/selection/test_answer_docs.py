"""docs/selector.md documents the answer object a Python caller gets: every field of
``Recommendation``, ``Option``, ``Evidence`` and ``Driver``, and every status, is named
there (a field added without its line fails here)."""

from __future__ import annotations

import re
import typing
from dataclasses import fields

from selection.recommendation import Driver, Evidence, Option, Recommendation, Status
from tests.conftest import REPO


def test_every_field_and_status_of_the_answer_is_documented():
    text = (REPO / "docs/selector.md").read_text()
    section = text.split("## The answer in Python", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_0-9]+)", section))
    for kind in (Recommendation, Option, Evidence, Driver):
        missing = {f.name for f in fields(kind)} - named
        assert not missing, (kind.__name__, sorted(missing))
    assert {f'"{s}"' for s in typing.get_args(Status)} <= set(re.findall(r'`("[a-z_]+")`', section))
