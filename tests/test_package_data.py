"""Every template, stylesheet and script a page needs is named in pyproject.toml's
package data, so a non-editable install (a wheel) carries it; a new file kind that no
pattern covers would be missing there and nowhere else."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_page_asset_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = config["tool"]["setuptools"]["package-data"]
    assert {"evaluation.view", "evaluation.review", "evaluation.report"} <= set(package_data)
    checked = 0
    for package, patterns in package_data.items():
        folder = ROOT / package.replace(".", "/")
        for sub in ("templates", "static"):
            for path in (folder / sub).rglob("*"):
                if path.is_file():
                    relative = path.relative_to(folder).as_posix()
                    assert any(fnmatch(relative, p) for p in patterns), relative
                    checked += 1
    assert checked >= 12
