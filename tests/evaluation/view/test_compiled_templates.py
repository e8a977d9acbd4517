"""The view's templates are compiled once and read back at the next start (compiling the
summary page's was ~0.03 s of `evalflow view`'s first page); a cache that cannot be
written is no cache."""

from __future__ import annotations

import tempfile

import pytest
from jinja2 import Environment, FileSystemBytecodeCache

from evaluation.view import app
from evaluation.view.compiled_templates import compiled_templates


@pytest.fixture
def own_temp_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_template_compiled_at_one_start_is_read_back_at_the_next(own_temp_folder, monkeypatch):
    first = app._environment().get_template("summary.html")
    kept = list(own_temp_folder.glob("_jinja2-cache-*/__evalflow_view_*.cache"))
    assert kept  # the summary page and the layout it extends

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(Environment, "compile", no_compiling)
    again = app._environment().get_template("summary.html")
    assert again.blocks.keys() == first.blocks.keys()


def test_other_options_keep_their_compiled_templates_apart(own_temp_folder):
    options = {"autoescape": ("html",), "trim_blocks": True}
    one = compiled_templates("view", options)
    other = compiled_templates("view", options | {"trim_blocks": False})
    assert one is not None and other is not None
    assert one.pattern != other.pattern
    assert compiled_templates("view", dict(options)).pattern == one.pattern


def test_a_cache_that_cannot_be_written_is_no_cache(own_temp_folder, monkeypatch):
    def disk_full(self, bucket):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemBytecodeCache, "dump_bytecode", disk_full)
    template = app._environment().get_template("error.html")
    assert "404" in template.render(status=404, title="not found", detail="", experiment=None)
    assert not list(own_temp_folder.glob("_jinja2-cache-*/*.cache"))
