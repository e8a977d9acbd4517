"""The three deployments: names, schedules, UI-editable parameters, worker pull steps,
and deployments/prefect.yaml describing the same thing."""

from __future__ import annotations

import yaml

from deployments.serve import ENTRYPOINTS, NIGHTLY_CRON, RETRAIN_CRON, build_deployments
from flows.cli import main
from tests.conftest import REPO

DEMO = REPO / "benchmarks/sweeps/demo-simulated.yaml"


def by_name(deployments):
    return {f"{d.flow_name}/{d.name}": d for d in deployments}


def test_served_deployments_and_their_schedules():
    found = by_name(build_deployments(nightly_spec=DEMO, timezone="Europe/Paris"))
    assert set(found) == {
        "evaluate/on-demand",
        "nightly-regression/nightly",
        "retrain-selector/weekly",
    }
    on_demand, nightly, weekly = (found[k] for k in sorted(found))
    assert on_demand.schedules in (None, [])
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [
        (NIGHTLY_CRON, "Europe/Paris")
    ]
    assert [s.schedule.cron for s in weekly.schedules] == [RETRAIN_CRON]
    assert nightly.parameters == {"spec_path": str(DEMO.resolve())}
    # the parameters a user edits in the UI are in the deployment's schema
    schema = nightly._parameter_openapi_schema.model_dump()["properties"]
    assert {"spec_path", "baseline", "accept_baseline", "min_success_rate"} <= set(schema)
    assert "spec_path" in on_demand._parameter_openapi_schema.model_dump()["required"]


def test_worker_deployments_start_in_the_checkout():
    found = by_name(
        build_deployments(
            nightly_spec=DEMO, work_pool_name="gpu-pool", source=REPO, database="sqlite:///x.db"
        )
    )
    for name, deployment in found.items():
        assert deployment.work_pool_name == "gpu-pool"
        assert deployment.entrypoint == ENTRYPOINTS[name.split("/")[0]]
        step = deployment.storage.to_pull_step()
        assert step["prefect.deployments.steps.set_working_directory"]["directory"] == str(REPO)
        assert deployment.parameters["database"] == "sqlite:///x.db"


def test_prefect_yaml_matches_the_python_definitions():
    config = yaml.safe_load((REPO / "deployments/prefect.yaml").read_text())
    (pull,) = config["pull"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == (
        "{{ $EVALFLOW_REPO }}"
    )
    entrypoints = {d["name"]: d["entrypoint"] for d in config["deployments"]}
    assert entrypoints == {
        "on-demand": ENTRYPOINTS["evaluate"],
        "nightly": ENTRYPOINTS["nightly-regression"],
        "weekly": ENTRYPOINTS["retrain-selector"],
    }
    crons = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in config["deployments"]}
    assert crons == {"on-demand": [], "nightly": [NIGHTLY_CRON], "weekly": [RETRAIN_CRON]}
    nightly = next(d for d in config["deployments"] if d["name"] == "nightly")
    assert (REPO / nightly["parameters"]["spec_path"]).is_file()
    for path in {e.split(":")[0] for e in entrypoints.values()}:
        assert (REPO / path).is_file()


def test_serve_refuses_a_missing_nightly_spec(tmp_path, capsys):
    assert main(["serve", "--nightly-spec", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
