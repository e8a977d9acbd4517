"""A host that wants a key (issue F3 of the newcomer's report), through real commands:
the stand-in started with a key, a spec whose host names the variable holding it
(``api_key_env``). ``doctor`` says the key is sent, a sweep runs with lane worker
processes, the judge sends the key too, the same sweep after the key is rotated resumes
the same experiment (same config hashes), and a wrong key is refused in one line. The
key is then searched for in every output, every file written under the test's folder,
every row of the results database and the Prefect database of the runs (parameters,
flow-run names, artifacts, logs): it is nowhere."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from tests.conftest import REPO
from tests.flows.test_secrets_end_to_end import files_text, flush_prefect_logs, prefect_database
from tests.support.standin_ollama import StandInConfig, running_standin

KEY = "sk-live-Tg5wQ2"
ROTATED = "sk-live-Yb8eM3"
VARIABLE = "EVALFLOW_TEST_VLLM_KEY"
SUITE = REPO / "benchmarks/suites/qa-short.jsonl"


def write_spec(path: Path, url: str) -> Path:
    host = {"name": "vllm", "url": url, "slots": 2, "kind": "openai", "api_key_env": VARIABLE}
    spec = {
        "name": "keyed",
        "suite": str(SUITE),
        "models": ["llama3.2:3b"],
        "grid": {"temperature": [0.0, 0.5], "num_predict": [8]},
        "hosts": [host],
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def all_rows(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        names = [name for (name,) in tables]
        return [repr(row) for t in names for row in connection.execute(f'SELECT * FROM "{t}"')]


def config_hashes(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return sorted(h for (h,) in connection.execute("SELECT hash FROM configs"))


@pytest.mark.usefixtures("prefect_harness")
def test_a_keyed_host_is_reached_and_its_key_is_shown_and_stored_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "results.db"
    monkeypatch.setenv("EVALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(VARIABLE, KEY)
    outputs: list[str] = []

    def evalflow(*argv: str) -> int:
        try:
            code = main(["--database", f"sqlite:///{database}", *argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
        return code

    config = StandInConfig(models=("llama3.2:3b",), slots=2, api_key=KEY, openai_only=True)
    with running_standin(config) as standin:
        spec = str(write_spec(tmp_path / "spec.yaml", standin.url))
        assert evalflow("doctor", spec, "--timeout", "5") == 0, outputs[-1]
        assert f"key from ${VARIABLE}: sent" in outputs[-1]
        assert evalflow("run", spec, "--workers", "2") == 0, outputs[-1]
        assert "72 generated, 0 failed" in outputs[-1] or "generated 72" in outputs[-1]
        hashes = config_hashes(database)
        judged = evalflow(
            "judge", "keyed", "--url", standin.url, "--model", "llama3.2:3b",
            "--api-key-env", VARIABLE, "--limit", "1", "--no-pairwise",
        )  # fmt: skip
        assert "HTTP 401" not in outputs[-1] and judged in (0, 1), outputs[-1]  # echoes: unscored
        assert standin.stats.refused == 0

        standin.reconfigure(api_key=ROTATED)  # the key rotated: the same experiment resumes
        monkeypatch.setenv(VARIABLE, ROTATED)
        assert evalflow("run", spec) == 0, outputs[-1]
        assert "72 already done (resumed)" in outputs[-1], outputs[-1]
        assert config_hashes(database) == hashes

        monkeypatch.setenv(VARIABLE, KEY)  # the old key, refused now
        assert evalflow("run", spec, "--experiment", "other") == 2
        refusal = [line for line in outputs[-1].splitlines() if line.startswith("error:")]
        assert refusal == [
            f"error: {spec}:16:16: field 'hosts[0].api_key_env': vllm: HTTP 401 (Unauthorized): "
            f"the host refused the key from ${VARIABLE}; check that it is the key the server "
            "was started with"
        ], outputs[-1]
        assert standin.stats.refused >= 1
    flush_prefect_logs()

    for key in (KEY, ROTATED):
        assert not [text for text in outputs if key in text]
        written = files_text(tmp_path)
        assert not [path for path, text in written.items() if key in text]
        rows = all_rows(database)
        assert len(rows) > 100 and not [row for row in rows if key in row]
        for path in prefect_database().parent.glob(prefect_database().name + "*"):
            assert key not in path.read_bytes().decode("utf-8", "replace"), path
