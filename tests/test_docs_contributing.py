"""docs/contributing.md tells a contributor what CI really does: every optional tool
`.ci/run` installs, and the same llama.cpp compile time as the README and `.ci/run`."""

from __future__ import annotations

import re

from tests.conftest import REPO


def test_contributing_names_every_tool_ci_installs_and_one_compile_time():
    ci = (REPO / ".ci/run").read_text()
    page = (REPO / "docs/contributing.md").read_text()
    tools = re.findall(r"apt-get install -y -qq (\S+)", ci)
    assert tools and all(f"`{tool}`" in page for tool in tools), tools
    figures = {
        where: set(re.findall(r"up to ~(\d+) min", text))
        for where, text in (("ci", ci), ("contributing", page),
                            ("readme", (REPO / "README.md").read_text()))
    }  # fmt: skip
    assert all(len(found) == 1 for found in figures.values()), figures
    assert len(set.union(*figures.values())) == 1, figures
