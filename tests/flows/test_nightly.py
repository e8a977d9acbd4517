"""The nightly regression flow end to end: a baseline accepted, a clean night, a night
that regressed (Failed run, alert artifact, Prefect event), baseline acceptance by CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from sqlmodel import Session, select

from evaluation.compare._regression import RegressionDetected, load_run, p95_latency
from evaluation.errors import EvalError
from evaluation.storage.db import make_engine
from evaluation.storage.models import Experiment
from evaluation.storage.verdicts import latest_verdicts
from evaluation.suites import load_suite
from flows.cli import main
from flows.nightly import nightly, nightly_name
from flows.run_names import experiment_name
from tests.conftest import REPO
from tests.flows.test_evaluate import artifact_data
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/qa-short.jsonl"
SERIES = "nightly-test"
# A third of the suite's 36 cases at once: the slow night (>= 1.2 s a generation) takes
# three rounds of its sleep, not nine.
SLOTS = 12


def answers():
    """A stand-in reply that knows every reference answer of the suite."""
    known = {case.input_text: case.references[0] for case in load_suite(SUITE).cases}

    def reply(model, messages):
        users = [m["content"] for m in messages if m.get("role") == "user"]
        return known.get(users[-1], "") if users else ""

    return reply


def wrong(model, messages):
    return "no idea"


def write_spec(tmp_path: Path, url: str) -> Path:
    spec = {
        "name": SERIES,
        "suite": str(SUITE),
        "models": ["llama3.2:3b"],
        "grid": {"temperature": [0.0], "num_predict": [32]},
        "metrics": ["exact_match", "latency_s"],
        "hosts": [{"name": "gpu-a", "url": url, "slots": SLOTS, "kind": "ollama"}],
        "limits": {"max_attempts": 1},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


async def events(name: str, experiment: str) -> list:
    """Events are delivered asynchronously: poll for a few seconds."""
    wanted = EventFilter(
        event=EventNameFilter(name=[name]),
        resource=EventResourceFilter(id=[f"evalflow.experiment.{experiment}"]),
    )
    async with get_client() as client:
        for _ in range(40):
            page = await client.read_events(filter=wanted, limit=10)
            if page.events:
                return page.events
            await asyncio.sleep(0.25)
    return []


def baseline_p95(database_url: str, experiment: str) -> float:
    """The largest per-config p95 latency (s) the regression rule reads for ``experiment``."""
    with Session(make_engine(database_url)) as session:
        return max(p95_latency(load_run(session, experiment).generations).values())


def test_nightly_accepts_passes_then_detects_a_regression(tmp_path, database_url, capsys):
    # 150 ms, not less: a loaded machine adds up to ~0.1 s to a p95 (seen: 0.045 s measured
    # as 0.141 s), which would read as a latency regression (limit 2x) of the clean night.
    config = StandInConfig(models=("llama3.2:3b",), slots=SLOTS, latency_ms=150.0, reply=answers())
    with running_standin(config) as server:
        spec = str(write_spec(tmp_path, server.url))
        first = asyncio.run(nightly(spec_path=spec, accept_baseline=True, database=database_url))
        base = first["experiment"]
        assert base.startswith(f"{SERIES}-nightly-20")  # the default name carries the date
        assert first["accepted_baseline"] and first["baseline"] is None
        # Wall-clock latency grows with the machine's load, so the clean night's latency
        # rule is loosened here (its quietness on equal latencies is a unit test's job) ...
        clean = asyncio.run(
            nightly(spec_path=spec, experiment="night-1", database=database_url, max_p95_ratio=50)
        )

        # ... and the slow night sleeps 3x the baseline's measured p95 (at least 1.2 s): a
        # measured latency is never below the server's sleep, so the 2x rule fires at any load.
        slow_ms = max(1200.0, 3000.0 * baseline_p95(database_url, base))
        server.reconfigure(reply=wrong, latency_ms=slow_ms)
        server.set_fault("bad_request", times=6)  # 30/36 = 83% < 90%
        state = asyncio.run(
            nightly(spec_path=spec, experiment="night-2", database=database_url, return_state=True)
        )

    assert clean["baseline"] == base and not clean["regressed"]
    assert state.is_failed()
    assert f"Regression in night-2 vs baseline {base}" in state.message
    with pytest.raises(RegressionDetected):
        state.result()
    for fired in ("exact_match fell from 1.000 to 0.000", "success rate 83% < 90%", "p95 latency"):
        assert fired in state.message

    markdown = asyncio.run(artifact_data(f"evalflow-{SERIES}-regression"))
    assert "REGRESSION" in markdown and "night-2" in markdown
    assert "exact_match fell from 1.000 to 0.000" in markdown
    # the trend watch's table rides along; three runs are still its learning nights
    assert f"## Trend watch: series {SERIES}" in markdown and "learning" in markdown

    (detected,) = asyncio.run(events("evalflow.regression.detected", "night-2"))
    payload = detected.payload
    assert payload["baseline"] == base and payload["regressed"] is True
    assert set(payload["rules"]) == {"quality_drop", "success_rate", "latency_p95"}
    assert payload["artifact_key"] == f"evalflow-{SERIES}-regression"
    assert payload["trends"]["series"] == SERIES and payload["trends"]["alarms"] == []
    assert detected.resource["evalflow.series"] == SERIES
    assert any(
        r.role == "baseline" and r.id == f"evalflow.experiment.{base}" for r in detected.related
    )
    assert asyncio.run(events("evalflow.regression.passed", "night-1"))
    assert asyncio.run(events("evalflow.baseline.accepted", base))

    # accepting the failed night as the new baseline is one command
    assert main(["--database", database_url, "baseline", "accept", "night-2"]) == 0
    assert (
        f"night-2 is now the accepted baseline of nightly-test (was {base}; every accept stays "
        "in effect, applied in the series' order)"
    ) in capsys.readouterr().out
    with Session(make_engine(database_url)) as session:  # the earlier accept stays (R5)
        accepted = session.exec(select(Experiment.name).where(Experiment.accepted_baseline)).all()
    assert sorted(accepted) == sorted([base, "night-2"])
    with Session(make_engine(database_url)) as session:  # what /metrics reads back
        (latest,) = latest_verdicts(session)
    assert (latest.series, latest.experiment, latest.regressed) == (SERIES, "night-2", True)


def test_nightly_name_carries_the_date():
    from datetime import date

    assert nightly_name("qa", date(2025, 3, 9)) == "qa-nightly-2025-03-09"


def test_an_experiment_template_names_each_run_of_a_day_apart():
    from datetime import UTC, datetime, timedelta, timezone

    when = datetime(2025, 3, 9, 23, 30, 5, tzinfo=timezone(timedelta(hours=-2)))
    assert experiment_name("qa-{date}-{time}", when) == "qa-2025-03-10-013005"  # UTC
    assert experiment_name("night-1", datetime.now(UTC)) == "night-1"  # a plain name stays
    with pytest.raises(EvalError, match=r"may hold only \{date\} and \{time\}"):
        experiment_name("qa-{day}", when)
    with pytest.raises(EvalError, match="gives 'QA-2025-03-10'"):
        experiment_name("QA-{date}", when)


def test_accepting_an_unknown_experiment_is_a_user_error(database_url, capsys):
    make_engine(database_url).dispose()  # an empty results database (none there is refused)
    assert main(["--database", database_url, "baseline", "accept", "nope"]) == 2
    assert "no experiment named 'nope'" in capsys.readouterr().err


def test_a_nightly_that_resumes_the_accepted_baseline_compares_nothing_and_keeps_the_verdict(
    tmp_path, database_url
):
    """A sub-daily schedule resumes the day's experiment, which may be the accepted
    baseline itself: that check compares nothing, says so, and leaves the series' last
    verdict (an earlier regression) standing rather than clearing its alert."""
    from evaluation.storage.verdicts import record_verdict

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "resumed",
                "suite": str(SUITE),
                "models": ["sim-small:1b"],
                "grid": {"temperature": [0.0]},
                "hosts": [{"name": "sim", "url": "simulated://local", "kind": "simulated"}],
            }
        )
    )
    asyncio.run(
        nightly(spec_path=str(spec), experiment="base", accept_baseline=True, database=database_url)
    )
    engine = make_engine(database_url)
    with Session(engine) as session:
        record_verdict(
            session, "bad-night", "resumed", baseline="base", regressed=True, rules=["quality_drop"]
        )
        session.commit()

    again = asyncio.run(nightly(spec_path=str(spec), experiment="base", database=database_url))

    assert again["baseline"] is None and not again["regressed"]
    assert again["summary"].startswith(
        "Nothing compared for base (base is itself the accepted baseline of resumed)"
    )
    with Session(engine) as session:
        (latest,) = latest_verdicts(session)
    assert (latest.experiment, latest.regressed) == ("bad-night", True)
