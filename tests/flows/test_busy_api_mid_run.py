"""`evalflow run` whose own Prefect API answers busy for the whole budget (120 s) part-way
through the run. A lane's slot take that stayed busy failed its case, and every case
after it, each stored as the model's failure ("PipelineFailed: ... SlotUnavailable: the
Prefect API stayed busy for 120 s"), the run completed, exit 1; the API busy at a write
of Prefect's own (a flow run's state, a concurrency limit's size) ended it failed, exit
1 or 2. Now the run stops interrupted with what it finished stored and none of its cases
failed, one line, exit 75 (try later), and the same command resumes exactly the rest.

The busy spell is a stand-in in front of the test's Prefect server, on a clock that the
client's waits move on (no time passes): it answers 503 from the first write it sees
once armed, for 121 s of that clock, then passes every request on again."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from flows.cli import main
from tasks.adapters import prefect_client as clients
from tests.conftest import REPO
from tests.flows.test_run_lifecycle import query
from tests.support.standin_ollama import StandInConfig, running_standin

pytestmark = pytest.mark.usefixtures("prefect_harness")

SUITE = REPO / "benchmarks/suites/qa-short.jsonl"
CASES = sum(1 for line in SUITE.read_text().splitlines() if line.strip())
MODELS = ("llama3.2:3b", "qwen2.5:0.5b")
SPELL_S = 121.0  # past the client's budget (BUSY_BUDGET_S): the write that met it gives up


class _BusySpell:
    """503 to the requests ``busy`` picks, once ``armed()``, for ``SPELL_S`` of a clock
    that only the clients' waits move on."""

    def __init__(self, busy: Callable[[httpx.Request], bool], armed: Callable[[], bool]):
        self.now = 0.0
        self.began: float | None = None
        self.answered_busy: list[str] = []
        self._busy, self._armed = busy, armed

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def hooks(self, inner: httpx.AsyncBaseTransport) -> dict:
        """The test hooks of a ``prefect_client`` sent through this spell."""
        return {"inner": _Spelled(self, inner), "sleep": self.sleep, "clock": self.clock}

    def answers_busy(self, request: httpx.Request) -> bool:
        if not self._busy(request) or not self._armed():
            return False
        if self.began is None:
            self.began = self.now
        if self.now - self.began > SPELL_S:
            return False
        self.answered_busy.append(f"{request.method} {request.url.path}")
        return True


class _Spelled(httpx.AsyncBaseTransport):
    def __init__(self, spell: _BusySpell, inner: httpx.AsyncBaseTransport) -> None:
        self.spell, self.inner = spell, inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.spell.answers_busy(request):
            return httpx.Response(503, json={"exception_message": "database is locked"})
        return await self.inner.handle_async_request(request)


def _the_line(err: str, what: str, command: str) -> None:
    """``err`` ends with the one line of a run stopped for later by a busy ``what``
    (a pattern), that says the ``command`` that resumes it."""
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"interrupted: the Prefect API stayed busy for 120 s: {what}: 503 \(at "
        rf"http://127\.0\.0\.1:\d+\); run the same command again when it answers: "
        + re.escape(command),
        last,
    ), err
    assert "Traceback" not in err


def test_a_slot_take_busy_for_the_whole_budget_stops_the_run_for_later_nothing_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second model's first request fails once (the host's 503), so its lane gives
    its slot back and takes one again for the retry: that take meets the busy spell."""
    import tasks.host_pool as host_pool

    db = tmp_path / "results.db"
    database = f"sqlite:///{db}"
    spec = tmp_path / "spec.yaml"
    with running_standin(StandInConfig(models=MODELS, slots=1)) as server:
        spell = _BusySpell(
            lambda request: "/concurrency_limits/increment" in request.url.path,
            armed=lambda: server.stats.faults.total() > 0,
        )

        def through_the_spell(**options):
            return clients.prefect_client(
                **options, **spell.hooks(httpx.AsyncHTTPTransport()), jitter=lambda: 1.0
            )

        monkeypatch.setattr(host_pool, "prefect_client", through_the_spell)
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "api-busy",
                    "suite": str(SUITE),
                    "models": list(MODELS),
                    "grid": {"temperature": [0.0]},
                    "hosts": [{"name": "gpu", "url": server.url, "slots": 1}],
                }
            )
        )
        server.set_fault("busy", times=1, model=MODELS[1])
        code = main(["--database", database, "run", str(spec), "-q"])
        err = capsys.readouterr().err
        assert code == 75, err
        command = f"evalflow --database {database} run {spec} -q"
        _the_line(err, "POST /api/v2/concurrency_limits/increment-with-lease", command)
        assert spell.answered_busy  # the spell was met
        # the first model's cases stored; none failed (they were the model's failures)
        assert query(db, "SELECT status, count(*) FROM generations GROUP BY 1") == [("ok", CASES)]
        assert query(db, "SELECT status FROM experiments") == [("interrupted",)]
        assert query(db, "SELECT status FROM experiment_runs") == [("interrupted",)]

        assert main(["--database", database, "run", str(spec), "-q"]) == 0  # resumed
        out = capsys.readouterr().out
        assert f"{CASES} generated, 0 failed, {CASES} already done (resumed)." in out, out
    assert query(db, "SELECT status, count(*) FROM generations GROUP BY 1") == [("ok", 2 * CASES)]


def test_the_flow_runs_own_state_write_busy_for_the_whole_budget_is_try_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect's engine writes the flow run's states through evalflow's client
    (``engine_client``): the first (running) is answered, the next (the run's end) meets
    the spell. It ended the run failed, exit 1 ("error: the run failed: ...")."""
    spec = REPO / "benchmarks/sweeps/demo-simulated.yaml"
    db = tmp_path / "results.db"
    database = f"sqlite:///{db}"
    states: list[str] = []

    def state_write(request: httpx.Request) -> bool:
        if not request.url.path.endswith("/set_state"):
            return False
        states.append(request.url.path)
        return True

    spell = _BusySpell(state_write, armed=lambda: len(states) > 1)
    engine_client = clients.engine_client

    def through_the_spell(**options):
        return engine_client(**options, **spell.hooks(httpx.AsyncHTTPTransport()))

    monkeypatch.setattr(clients, "engine_client", through_the_spell)
    code = main(["--database", database, "run", str(spec), "--limit", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 75, err
    command = f"evalflow --database {database} run {spec} --limit 1 -q"
    _the_line(err, r"POST /api/flow_runs/[\w-]+/set_state", command)
    assert query(db, "SELECT status FROM experiment_runs") != [("failed",)]
    monkeypatch.undo()
    assert main(["--database", database, "run", str(spec), "--limit", "1", "-q"]) == 0
    assert query(db, "SELECT status, count(*) FROM generations GROUP BY 1") == [("ok", 12)]
