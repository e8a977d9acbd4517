"""`evalflow run --level/--limit` and a race spec's bad fields: one line, exit 2."""

import pytest
import yaml

from flows.cli import main


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--limit", "0"], "argument --limit: expected a whole number >= 1, got '0'"),
        (["--limit", "x"], "argument --limit: expected a whole number >= 1, got 'x'"),
        (["--level", "half"], "argument --level: invalid choice: 'half'"),
    ],
)
def test_bad_level_or_limit_is_one_line_exit_2(tmp_path, capsys, args, fragment):
    with pytest.raises(SystemExit) as info:
        main(["run", str(tmp_path / "spec.yaml"), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_bad_race_field_is_refused_before_anything_runs(tmp_path, capsys):
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "a", "input": "2+2?", "references": ["4"]}\n')
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"name": "t", "suite": str(suite), "models": ["m"], "strategy": "race", "delta": -1}
        )
    )
    assert main(["run", str(spec), "--level", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "field 'delta'" in err and "must be in [0, 1)" in err and err.count("\n") == 1
