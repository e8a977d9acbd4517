"""A nightly set to watch on the calibrated level, refused when it is set up (`evalflow
serve` / `deploy`) in one line, exit 2, nothing written: no item bank to watch on, no
results database, more cases than the suite, cases without the calibrated level."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from evaluation.series.schema import CalibratedNight
from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.bad_input.test_itembank import _spec
from tests.support.itembank_db import build


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("verb", ["serve", "deploy"])
def test_a_calibrated_nightly_without_a_bank(tmp_path, capsys, verb):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=2, n_cases=12, sub_cases=())
    spec = _spec(tmp_path)
    argv = ["--database", url, verb, "--nightly-spec", str(spec), "--nightly-level", "calibrated"]
    assert main(argv) == 2
    err = _err(capsys)
    assert "--nightly-level calibrated needs an item bank for suite 'toy'" in err
    assert "run 6 more on it (--level full), then `evalflow bank toy --metric exact_match`" in err
    engine = make_engine(url)
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(CalibratedNight)).scalar() == 0
    engine.dispose()


def test_a_calibrated_nightly_without_a_database_writes_none(tmp_path, capsys):
    spec = _spec(tmp_path)
    path = tmp_path / "none.db"
    argv = ["--database", f"sqlite:///{path}", "serve", "--nightly-spec", str(spec)]
    assert main([*argv, "--nightly-level", "calibrated"]) == 2
    assert "needs an item bank for suite 'toy' and there is no results database yet" in _err(capsys)
    assert not path.exists()


def test_more_nightly_cases_than_the_suite(tmp_path, capsys):
    spec = _spec(tmp_path)
    argv = ["--database", f"sqlite:///{tmp_path / 'r.db'}", "serve", "--nightly-spec", str(spec)]
    assert main([*argv, "--nightly-level", "calibrated", "--nightly-cases", "13"]) == 2
    assert "--nightly-cases 13 is more than the suite's 12 cases" in _err(capsys)
    assert main([*argv, "--nightly-cases", "5"]) == 2
    assert "--nightly-cases applies only to --nightly-level calibrated" in _err(capsys)
    assert not (tmp_path / "r.db").exists()
