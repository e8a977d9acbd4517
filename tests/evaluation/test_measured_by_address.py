"""`plan` finds a server's measurements by its address: a spec calling it `llama-cpp`
(what demo-real.yaml and every example say) had no estimate after runs that called it
`local` measured it, where slots are keyed by the address (newcomer F5)."""

from __future__ import annotations

import yaml
from sqlalchemy import update

from evaluation.run._history import measured_by_address
from evaluation.spec import HostSpec
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment
from flows.cli import main
from tests.conftest import REPO
from tests.support.results_db import add_experiment, make_config, make_suite

SUITE = make_suite(4)
SERVER = "http://127.0.0.1:18600"


def _measured(session, name: str, config, host_url: str) -> None:
    """An experiment whose generations of ``config`` ran on host "h" at ``host_url``."""
    experiment = add_experiment(session, name, SUITE, {config: {"exact_match": [1.0] * 4}})
    spec = {"name": name, "hosts": [{"name": "h", "url": host_url, "slots": 1}]}
    session.exec(update(Experiment).where(Experiment.id == experiment.id).values(spec=spec))


def test_a_server_measured_under_another_name_is_found_by_its_address(database_url):
    config = make_config("m:1b", 0.0)
    with session_scope(make_engine(database_url)) as session:
        _measured(session, "my-first", config, SERVER)
        llama = HostSpec("llama-cpp", "http://127.0.0.1:18600/", kind="openai")
        (found,) = measured_by_address(session, [llama])
        assert (found.host, found.config_hash, found.generations) == ("llama-cpp", config.hash, 4)
        # another server: none of these measurements
        assert measured_by_address(session, [HostSpec("llama-cpp", "http://10.0.0.2:18600")]) == []
        # the spec's own name for the server wins over the other name's
        assert [m.host for m in measured_by_address(session, [HostSpec("h", SERVER)])] == ["h"]


def test_a_name_two_servers_had_is_not_taken_for_either(database_url):
    config = make_config("m:1b", 0.0)
    with session_scope(make_engine(database_url)) as session:
        _measured(session, "on-one", config, SERVER)
        _measured(session, "on-another", make_config("m:1b", 0.7), "http://10.0.0.2:18600")
        assert measured_by_address(session, [HostSpec("llama-cpp", SERVER)]) == []


def test_plan_estimates_a_spec_that_calls_the_server_by_another_name(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    with session_scope(make_engine(url)) as session:
        _measured(session, "my-first", make_config("m:1b", 0.0), SERVER)
    spec = tmp_path / "b.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "my-first-b",
                "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
                "models": ["m:1b"],
                "grid": {"temperature": [0.3]},
                "hosts": [{"name": "llama-cpp", "url": SERVER, "kind": "openai"}],
            }
        )
    )
    assert main(["--database", url, "plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "no measurements" not in out
    assert "m:1b on llama-cpp, other configs: 4 generations" in out
