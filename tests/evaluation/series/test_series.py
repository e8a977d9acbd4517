"""Series: which runs form one, their points, what each ran with, and where two points
stop being comparable."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlmodel import Session

from evaluation.backends.ollama import OllamaBackend
from evaluation.backends.simulated import SimulatedBackend
from evaluation.series import (
    ModelRan,
    SeriesKept,
    SeriesNotFound,
    SpecKept,
    list_series,
    record_run,
    refuse_another_series,
    refuse_another_spec,
    series_events,
    series_points,
    suite_digest,
    what_ran,
)
from evaluation.spec import HostSpec
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment
from evaluation.storage.repository import suite_fingerprint
from tests.support.results_db import add_experiment, make_config, make_suite
from tests.support.silent_socket import failing_server
from tests.support.standin_ollama import StandInConfig, running_standin

SUITE = make_suite(6)
A, B = make_config("m:1b", 0.0), make_config("m:1b", 0.7)


@pytest.fixture
def engine(database_url):
    return make_engine(database_url)


def add(session: Session, name: str, spec_name: str, values=(1, 0, 1, 1, 0, 1)) -> Experiment:
    experiment = add_experiment(
        session, name, SUITE, {A: {"exact_match": list(values)}, B: {"exact_match": [1] * 6}}
    )
    experiment.spec = {"name": spec_name}
    experiment.status = "completed"
    session.add(experiment)
    session.flush()
    return experiment


def ran(digest: str = "d1", version: str = "0.6.8", ctx: int | None = 4096) -> list[ModelRan]:
    return [ModelRan("gpu1", "m:1b", "ollama", digest, "Q4_K_M", version, ctx)]


def join(session, experiment, series, *, explicit=False, digest="d1", version="0.6.8", ctx=4096):
    record_run(
        session,
        experiment,
        series=series,
        explicit=explicit,
        suite="toy",
        suite_digest="s1",
        models=ran(digest, version, ctx),
    )


def test_series_are_spec_names_unless_a_run_joined_another(engine):
    with session_scope(engine) as session:
        add(session, "qa", "qa")
        add(session, "qa-nightly-2026-01-02", "qa")
        add(session, "adhoc", "adhoc")
        join(session, "adhoc", "qa", explicit=True)
        add(session, "other", "other")
    with session_scope(engine) as session:
        listed = {s.name: s for s in list_series(session)}
        points = series_points(session, "qa")
    assert set(listed) == {"qa", "other"}
    assert listed["qa"].experiments == ("qa", "qa-nightly-2026-01-02", "adhoc")
    assert listed["qa"].last_experiment == "adhoc"
    assert [p.experiment for p in points] == ["qa", "qa-nightly-2026-01-02", "adhoc"]
    last = points[-1]
    assert last.explicit and last.models == tuple(ran())
    assert last.headline == "exact_match"
    a_mean = last.values[A.hash]["exact_match"]
    assert a_mean.mean == pytest.approx(4 / 6)
    assert a_mean.low < a_mean.mean < a_mean.high
    assert last.configs[A.hash] == A.label


def test_a_resumed_run_keeps_the_series_it_joined(engine):
    with session_scope(engine) as session:
        add(session, "run1", "qa")
        join(session, "run1", "mine", explicit=True)
        join(session, "run1", "qa", explicit=False)  # the resume, without --series
    with session_scope(engine) as session:
        assert [p.experiment for p in series_points(session, "mine")] == ["run1"]


def test_a_rerun_naming_another_series_is_refused_and_its_run_stays(engine):
    """Newcomer F4: `run --series other` on a completed night moved it out of its series
    (trends judged without it), unsaid. Refused, by its joined series or its spec's."""
    with session_scope(engine) as session:
        for name in ("n1", "n2"):
            add(session, name, "demo")
            join(session, name, "nd", explicit=True)
        add(session, "solo", "demo")  # joined its spec's series by default
        join(session, "solo", "demo")
        add(session, "older", "demo")  # stored before series_runs: its spec's name
    with session_scope(engine) as session:
        refuse_another_series(session, "n1", "nd")  # its own series, named: a resume
        refuse_another_series(session, "n9", "other")  # a new experiment joins any
        refuse_another_series(session, "n1", None)
        for name, belongs in (("n1", "nd"), ("solo", "demo"), ("older", "demo")):
            with pytest.raises(SeriesKept) as refused:
                refuse_another_series(session, name, "other")
            assert str(refused.value) == (
                f"--series other: experiment {name!r} belongs to series {belongs!r}, and a "
                "rerun keeps it; run it again without --series, or give a new --experiment "
                "to join 'other'"
            )
        with pytest.raises(SeriesKept):
            join(session, "n1", "other", explicit=True)  # the flow's own write refuses too
    with session_scope(engine) as session:
        assert [p.experiment for p in series_points(session, "nd")] == ["n1", "n2"]
        assert {s.name for s in list_series(session)} == {"nd", "demo"}


def test_a_run_of_another_spec_under_an_experiments_name_is_refused(engine):
    """Newcomer F11: `run few.yaml --experiment nd-n04` (another spec's `name:`) replaced
    the accepted baseline's configs with few.yaml's; every later `gate` of the series then
    failed. Refused, saying whose it is; the same spec (edited) resumes."""
    from evaluation.storage.baselines import accept_baseline

    with session_scope(engine) as session:
        for name in ("nd-n03", "nd-n04"):
            add(session, name, "demo-simulated")
            join(session, name, "nd", explicit=True)
        add(session, "older", "demo-simulated").spec = {}  # stored before specs were
        accept_baseline(session, "nd-n04")
    with session_scope(engine) as session:
        refuse_another_spec(session, "nd-n04", "demo-simulated")  # the spec, edited
        refuse_another_spec(session, "nd-n09", "nc-few")  # a new experiment
        refuse_another_spec(session, "older", "nc-few")  # nothing to tell by
        with pytest.raises(SpecKept) as refused:
            refuse_another_spec(session, "nd-n04", "nc-few")
        assert str(refused.value) == (
            "--experiment nd-n04: experiment 'nd-n04' was run from spec 'demo-simulated', and "
            "this spec is 'nc-few': a run would replace its configs with this spec's; it is the "
            "accepted baseline of series 'nd', which `gate` compares every run with; give this "
            "run another --experiment, or run spec 'demo-simulated' (edited, it keeps its name)"
        )
        with pytest.raises(SpecKept) as refused:  # its name is this spec's own
            refuse_another_spec(session, "nd-n03", "nd-n03", named=False)
        assert str(refused.value).startswith("experiment 'nd-n03' was run from spec 'demo-")
        assert "baseline" not in str(refused.value)
        assert "give this run an --experiment of its own" in str(refused.value)
        refuse_another_spec(session, "nd-n04", "demo-simulated", SUITE.name)
        with pytest.raises(SpecKept) as refused:  # the same spec, edited to another suite
            refuse_another_spec(session, "nd-n04", "demo-simulated", "qa-long")
        assert str(refused.value) == (
            f"--experiment nd-n04: experiment 'nd-n04' already exists for suite {SUITE.name!r}, "
            "and this spec's is 'qa-long': a rerun would mix their cases; give this run "
            "another --experiment"
        )


def test_a_series_that_does_not_exist_names_those_that_do(engine):
    with session_scope(engine) as session:
        add(session, "qa", "qa")
    with session_scope(engine) as session, pytest.raises(SeriesNotFound, match=r"'nope'.*qa"):
        series_points(session, "nope")


def test_a_new_digest_or_server_version_is_an_event_and_unknown_is_not(engine):
    with session_scope(engine) as session:
        for name in ("n1", "n2", "n3", "n4", "n5"):
            add(session, name, "qa")
        join(session, "n1", "qa")
        join(session, "n2", "qa")
        join(session, "n3", "qa", digest="d2")  # ollama pulled a new build of the tag
        join(session, "n4", "qa", digest="d2", version="0.7.0", ctx=32768)
        # n5 predates the record: nothing known, nothing claimed
    with session_scope(engine) as session:
        events = series_events(series_points(session, "qa"))
    assert [(e.experiment, e.kind) for e in events] == [
        ("n3", "model_digest_changed"),
        ("n4", "server_version_changed"),
        ("n4", "context_length_changed"),
    ]
    assert events[0].message.startswith("model digest of m:1b on gpu1 changed from d1 to d2")
    assert "4096 to 32768" in events[2].message


def test_a_run_that_said_no_digest_hides_no_change_across_it(engine):
    """Recheck's R4: digest d1, a run whose server said no digest (or no model facts at
    all, or did not run the model), then d2 read as no event: the new weights were
    never said, nor their first run judged across them. Each run is now compared with
    what the runs before it last said, the event named from the last run that said it."""
    with session_scope(engine) as session:
        for name in ("g1", "g2", "g3", "g4", "g5", "g6"):
            add(session, name, "gap")
        join(session, "g1", "gap")
        join(session, "g2", "gap", digest="", version="", ctx=None)  # the server said nothing
        join(session, "g3", "gap", digest="d2")
        record_run(
            session, "g4", series="gap", explicit=False, suite="toy", suite_digest="", models=[]
        )  # nothing recorded: neither the suite's digest nor a model
        join(session, "g5", "gap", digest="d3", version="0.7.0")
        record_run(
            session, "g6", series="gap", explicit=False, suite="toy", suite_digest="s2",
            models=ran("d3", "0.7.0"),
        )  # fmt: skip
    with session_scope(engine) as session:
        events = series_events(series_points(session, "gap"))
    assert [(e.previous, e.experiment, e.kind, e.before, e.after) for e in events] == [
        ("g1", "g3", "model_digest_changed", "d1", "d2"),
        ("g3", "g5", "model_digest_changed", "d2", "d3"),
        ("g3", "g5", "server_version_changed", "0.6.8", "0.7.0"),
        ("g5", "g6", "suite_changed", "s1", "s2"),
    ]
    assert events[0].message.startswith("model digest of m:1b on gpu1 changed from d1 to d2 ")
    assert "between g1 and g3" in events[0].message


def test_what_ran_asks_ollama_for_digest_version_and_context():
    config = StandInConfig(models=("llama3:latest",), version="0.15.5")
    with running_standin(config) as standin:

        async def ask():
            backend = OllamaBackend(standin.host("gpu1"))
            try:
                found = {"gpu1": {"llama3": (await backend.list_models())[0]}}
                # a generation loads the model; /api/ps then tells its context length
                before = await what_ran({"gpu1": backend}, found)
                from evaluation.backends.base import GenerationRequest
                from evaluation.spec import GenerationParams
                from evaluation.suites import Message

                await backend.generate(
                    GenerationRequest(
                        "llama3", (Message("user", "hi"),), GenerationParams(num_predict=4)
                    )
                )
                return before, await what_ran({"gpu1": backend}, found)
            finally:
                await backend.aclose()

        before, after = asyncio.run(ask())
    assert before[0].server_version == "0.15.5" and before[0].context_length is None
    assert before[0].digest and before[0].quantization
    assert after[0].context_length == 4096
    assert (after[0].host, after[0].model, after[0].kind) == ("gpu1", "llama3", "ollama")
    # the stand-in serves on this machine (loopback): its load is the run's (N6)
    assert after[0].machine_load is not None and after[0].machine_cpus


def test_a_host_that_never_answers_leaves_what_ran_empty_without_holding_the_run(monkeypatch):
    """A host that hung while the others did its work is asked once, briefly: its silence
    must not hold a finished run for the backend's read timeout per question."""
    monkeypatch.setattr("evaluation.series._what_ran.QUESTION_TIMEOUT_S", 0.3)
    with failing_server("silent", models=("m:1b",)) as server:

        async def ask():
            backend = OllamaBackend(HostSpec("hung", server.url))
            try:
                found = {"hung": {"m:1b": (await backend.list_models())[0]}}
                # far beyond the bound, far below the backend's own read timeout
                return await asyncio.wait_for(what_ran({"hung": backend}, found), 30)
            finally:
                await backend.aclose()

        (entry,) = asyncio.run(ask())
    assert (entry.host, entry.model, entry.server_version) == ("hung", "m:1b", "")
    assert entry.context_length is None


def test_what_ran_on_the_simulated_backend_says_what_its_docs_say():
    backend = SimulatedBackend(HostSpec("sim", "simulated://local", kind="simulated"))

    async def ask():
        models = {m.name: m for m in await backend.list_models()}
        return await what_ran({"sim": backend}, {"sim": {"sim-small:1b": models["sim-small:1b"]}})

    (entry,) = asyncio.run(ask())
    assert entry.quantization == "Q4_K_M" and len(entry.digest) == 64
    assert entry.server_version == "" and entry.context_length is None


def test_a_sidecar_change_is_a_suite_change_and_an_upgrade_alone_is_not(engine):
    retyped = replace(SUITE, task_type="generation")
    assert suite_digest(retyped) != suite_digest(SUITE)
    assert suite_digest(replace(SUITE, labels=("yes", "no"))) != suite_digest(SUITE)
    stored = {  # n1 was recorded before the digest covered the sidecar
        "n1": suite_fingerprint(SUITE),
        "n2": suite_digest(SUITE),
        "n3": suite_digest(retyped),
        "n4": suite_digest(retyped),
    }
    with session_scope(engine) as session:
        for name, digest in stored.items():
            add(session, name, "qa")
            record_run(
                session, name, series="qa", explicit=False, suite="toy", suite_digest=digest,
                models=ran(),
            )  # fmt: skip
    with session_scope(engine) as session:
        events = series_events(series_points(session, "qa"))
    assert [(e.experiment, e.kind) for e in events] == [("n3", "suite_changed")]
