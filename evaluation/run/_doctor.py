"""Health checks for the things a run needs: the results database, each model host and
(checked by the caller, which may import Prefect) the Prefect API.

Each check gives a ``Check`` with a status: ``ok``, ``warn`` (works, but worth knowing),
``busy`` (a host that took the connection but did not answer in time while a run of
ours is using it: up, serving that run; or one that answered 503, overloaded: there,
refusing work for now, as `run` says it; or the Prefect API giving no healthy answer
in time, which `run` takes for busy: try later) or ``fail`` (a host that does so with no run of
ours on it is not answering: hung, or serving someone else for longer than the
deadline). ``DoctorReport.healthy`` is true when nothing failed. Host checks never raise:
an unreachable host, a missing model or a timeout is a failed check.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evaluation.backends._preflight import exact_name_key, match_models, ollama_name_key
from evaluation.backends.base import Backend
from evaluation.backends.retry import list_models_with_retries
from evaluation.errors import (
    BackendError,
    BackendOverloaded,
    BackendUnavailable,
    EvalError,
    ModelNotFound,
    StorageError,
)
from evaluation.printable import printable
from evaluation.run._llama_cpp_python import (
    LLAMA_CPP_PYTHON,
    is_llama_cpp_python,
    one_at_a_time_warning,
    seedless_warning,
)
from evaluation.run._preflight import (
    accepts_connections,
    listening_hint,
    start_hint,
)
from evaluation.spec import Config, HostSpec
from evaluation.wording import TERMINAL_COLUMNS, counted

if TYPE_CHECKING:
    from evaluation.run._sweep import Sweep
    from evaluation.storage.throughput import Measured

Status = Literal["ok", "warn", "busy", "fail"]
#: The room a host's model names get on its line; the rest are counted ("+3 more").
MODEL_NAMES_ROOM = 60
EXPECTED_TABLES = ("experiments", "generations", "scores", "configs", "cases")
GiB = 1024**3
#: The Prefect API's check (made by the caller, which may import Prefect).
PREFECT_API = "prefect api"


@dataclass(frozen=True)
class Check:
    """One component's health. ``facts`` holds machine-readable details."""

    component: str
    status: Status
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "fail"


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def unchecked(self) -> tuple[Check, ...]:
        """Hosts not contacted because a run is using them (see ``check_hosts``), or
        too busy to answer; the Prefect API too busy to answer in time."""
        return tuple(c for c in self.checks if "busy_with" in c.facts or c.status == "busy")

    def _except_unchecked(self) -> str:
        hosts = [c for c in self.unchecked if c.component != PREFECT_API]
        n = len(hosts)
        named = [f"{n} host{'s' * (n > 1)}"] if n else []
        if len(hosts) < len(self.unchecked):  # `run` would wait for it: try later (75)
            named.insert(0, "the Prefect API")
        return f", except {' and '.join(named)} not checked (busy)" if named else ""

    def render_text(self, columns: int = TERMINAL_COLUMNS) -> str:
        """A line per check, its detail wrapped between words to ``columns`` under itself
        (a terminal wrapped it mid-word)."""
        width = max((len(c.component) for c in self.checks), default=0)
        lines = []
        for c in self.checks:
            head = f"{c.status.upper():<4}  {c.component:<{width}}  "
            lines += textwrap.wrap(
                printable(c.detail),  # a server's words: its models' names (S5)
                max(columns, len(head) + 20),
                initial_indent=head,
                subsequent_indent=" " * len(head),
                break_long_words=False,
                break_on_hyphens=False,
            ) or [head.rstrip()]
        verdict = (
            "healthy" + self._except_unchecked()
            if self.healthy
            else f"UNHEALTHY: {len(self.failed)} check(s) failed"
        )
        return "\n".join([*lines, "", verdict])

    def one_line(self) -> str:
        """For `evalflow health`: the verdict and what failed."""
        if self.healthy:
            checked = [c.component for c in self.checks if c not in self.unchecked]
            return f"healthy: {', '.join(checked)}{self._except_unchecked()}"
        failed = "; ".join(f"{c.component}: {c.detail}" for c in self.failed)
        return "unhealthy: " + printable(failed)


def check_database(url: str, *, timeout_s: float = 10.0, shown: str | None = None) -> Check:
    """Connect (giving up after ``timeout_s`` where the driver allows), run ``SELECT 1``
    and look for evalflow's tables (without creating them). A SQLite file not there yet
    is not opened: SQLite would create it, empty (a fresh home is no problem: the first
    run creates it). ``shown``: the URL the check names, where ``url`` is not the one the
    user gave (a read-only share's snapshot: ``storage.snapshot.asked_url``)."""
    # Imported here: SQLAlchemy takes a second to import, and the CLI imports this module.
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from evaluation.redact import one_line, redact_url
    from evaluation.settings import sqlite_file
    from evaluation.storage.db import holds_evalflows

    where = redact_url(shown or url)
    if (path := sqlite_file(url)) is not None and not path.exists():
        return _no_file_yet(where, path)
    try:
        engine = create_engine(url, connect_args=_connect_timeout(url, timeout_s))
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                inspector = inspect(connection)
                tables = set(inspector.get_table_names())
                ours = holds_evalflows(inspector, tables)  # not by a name alone (R3, R7)
        finally:
            engine.dispose()
    except (SQLAlchemyError, ArgumentError, StorageError, ImportError, ValueError) as exc:
        # ImportError: the URL's driver is not installed; ValueError: e.g. a port not a number
        return Check("database", "fail", f"{where}: {one_line(_first_line(exc), known=[url])}")
    return _tables_check(where, engine.dialect.name, tables, ours=ours)


def _no_file_yet(where: str, path: Path) -> Check:
    """A SQLite file not created yet: fine where the first run can create it (SQLite
    creates the file, not a missing folder: only the home folder is made for it)."""
    from evaluation.settings import evalflow_home

    folder = path.absolute().parent
    facts = {"url": where, "dialect": "sqlite"}
    if folder == evalflow_home().absolute() and not folder.exists():  # a fresh home:
        # the first run makes it, where the nearest folder that exists is writable
        parent = next(p for p in folder.parents if p.exists())
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            detail = (
                f"{where}: no database yet: no runs so far (the first run creates it, in {folder})"
            )
            return Check("database", "ok", detail, facts)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        detail = (
            f"{where}: no database yet, and {folder} is not a writable folder: a run "
            "cannot create it"
        )
        return Check("database", "fail", detail, facts)
    return Check(
        "database",
        "ok",
        f"{where}: no database yet: no runs so far (the first run creates it)",
        facts,
    )


def _tables_check(where: str, dialect: str, tables: set[str], *, ours: bool = True) -> Check:
    """A reachable database by its tables: an empty one is a new home, not a problem
    (the first run creates evalflow's tables); one whose tables are none of evalflow's
    fails, as every command refuses it (another application's database: ``storage.db.
    refuse_another_applications``), a WARN where ``$EVALFLOW_SHARE_DATABASE`` lets the
    first run add evalflow's beside them; one with only some of evalflow's is a WARN.
    ``ours``: one of them is evalflow's by its key columns too, not by its name alone
    (``storage.db.holds_evalflows``: MLflow's has an ``experiments`` table)."""
    from evaluation.settings import SHARE_DATABASE_ENV, share_database

    missing = [t for t in EXPECTED_TABLES if t not in tables]
    facts = {"url": where, "dialect": dialect}
    if not tables:
        detail = f"{where}: reachable ({dialect}), empty: no runs yet (the first run adds tables)"
        return Check("database", "ok", detail, facts)
    if len(missing) == len(EXPECTED_TABLES) or not ours:
        found = f"{where}: reachable ({dialect}), {counted(len(tables), 'table')}, none of them"
        if share_database():
            detail = f"{found} evalflow's: the first run adds evalflow's beside them"
            detail += f" ({SHARE_DATABASE_ENV}=1)"
            return Check("database", "warn", detail, facts)
        shown = sorted(tables)
        named = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
        detail = (
            f"{found} evalflow's ({named}): another application's database? every command "
            "refuses to add evalflow's tables to it: name the results database with "
            f"--database or EVALFLOW_DATABASE_URL, or set {SHARE_DATABASE_ENV}=1"
        )
        return Check("database", "fail", detail, facts)
    if missing:
        detail = (
            f"{where}: reachable ({dialect}), evalflow's tables {', '.join(missing)} missing "
            "(the next run creates them)"
        )
        return Check("database", "warn", detail, facts)
    facts["evalflow_tables"] = True  # what the runs recorded can be read (hosts_in_use)
    return Check("database", "ok", f"{where}: reachable ({dialect})", facts)


def _connect_timeout(url: str, timeout_s: float) -> dict[str, Any]:
    from sqlalchemy import make_url

    driver = make_url(url).get_driver_name()
    if driver == "psycopg2":
        return {"connect_timeout": max(1, round(timeout_s))}
    if driver == "pysqlite":
        return {"timeout": timeout_s}
    return {}


async def check_host(
    backend: Backend,
    models: Iterable[str],
    *,
    timeout_s: float = 10.0,
    in_use_by: str | None = None,
) -> Check:
    """Reachable, server version, the models it should serve present, and what is loaded
    now with its VRAM (Ollama's ``/api/ps``). ``in_use_by``: the experiment of ours
    running on the host now, if any: only then is a host that takes the connection and
    stays silent busy; with none it is not answering (a guess of "busy" told a probe
    that a hung server was healthy)."""
    host = backend.host
    component = f"host {host.name}"
    try:
        return await asyncio.wait_for(_host(backend, list(models)), timeout_s)
    except TimeoutError:
        if await accepts_connections(host.url, timeout_s):
            if in_use_by is not None:  # up, serving our run
                facts = {"url": host.shown_url, "kind": host.kind, "busy_with": in_use_by}
                detail = (
                    f"connected but no answer within {timeout_s:g} s: busy with experiment "
                    f"{in_use_by!r}, which runs on it"
                )
                return Check(component, "busy", f"{host.shown_url}: {detail}", facts)
            return Check(component, "fail", f"{host.shown_url}: {not_answering(timeout_s)}")
        detail = f"{host.shown_url}: no answer within {timeout_s:g} s; {start_hint(host.kind)}"
        return Check(component, "fail", detail)
    except BackendUnavailable as exc:
        hint = listening_hint(host.kind) if exc.connected else start_hint(host.kind)
        detail = f"{host.shown_url}: {_words(exc, host)}; {hint}"  # no class names
        return Check(component, "fail", detail)
    except BackendOverloaded as exc:  # there, refusing work for now: as `run` says it
        detail = (
            f"{host.shown_url}: answered: overloaded ({_words(exc, host)}); its models are "
            "not checked: check again when the server is free"
        )
        return Check(component, "busy", detail, {"url": host.shown_url, "kind": host.kind})
    except BackendError as exc:
        return Check(component, "fail", f"{host.shown_url}: {_words(exc, host)}")


def not_answering(timeout_s: float) -> str:
    """Why a host that took the connection, kept silent and runs nothing of ours fails."""
    return (
        f"not answering: connected but no answer within {timeout_s:g} s, and no evalflow "
        "run is using it (a hung server? restart it)"
    )


def model_names(names: Sequence[str], room: int = MODEL_NAMES_ROOM) -> str:
    """ ": a, b, +3 more": the names that fit in ``room`` characters, the rest counted."""
    shown: list[str] = []
    for i, name in enumerate(names):
        rest = len(names) - i - 1
        more = f", +{rest} more" if rest else ""
        if shown and len(", ".join([*shown, name]) + more) > room:
            return f": {', '.join(shown)}, +{len(names) - len(shown)} more"
        shown.append(name)
    return f": {', '.join(shown)}" if shown else ""


async def _host(backend: Backend, wanted: list[str]) -> Check:
    host = backend.host
    component = f"host {host.name}"
    have = await list_models_with_retries(backend)
    facts: dict[str, Any] = {"url": host.shown_url, "kind": host.kind, "slots": host.slots}
    facts["models"] = sorted(m.name for m in have)
    version = getattr(backend, "version", None)
    if version is not None:
        facts["version"] = await version()
    loaded_models = getattr(backend, "loaded_models", None)
    if loaded_models is not None:
        facts["loaded"] = {m.name: m.size_vram for m in await loaded_models()}
    if is_llama_cpp_python(have):
        facts["engine"] = LLAMA_CPP_PYTHON
    parts = [host.shown_url]
    if host.api_key_env is not None:  # the variable's name: the key is never shown
        facts["api_key_env"] = host.api_key_env
        parts.append(f"key from ${host.api_key_env}: sent")
    if "version" in facts:
        parts.append(f"version {facts['version']}")
    parts.append(f"{counted(len(have), 'model')}{model_names(facts['models'])}")
    if "loaded" in facts:
        loaded = ", ".join(f"{n} ({v / GiB:.1f} GiB VRAM)" for n, v in facts["loaded"].items())
        parts.append(f"loaded: {loaded or 'none'}")
    key = ollama_name_key if host.kind == "ollama" else exact_name_key
    serves = [m for m in wanted if host.serves(m)]
    try:
        match_models(host, serves, have, key=key)
    except ModelNotFound as exc:  # the line names the host's URL and models already
        return Check(component, "fail", f"{'; '.join(parts)}; {exc.detail}", facts)
    return Check(component, "ok", "; ".join(parts), facts)


def llama_cpp_python_hosts(hosts: Sequence[HostSpec], checked: Sequence[Check]) -> list[HostSpec]:
    """The ``hosts`` whose check found llama-cpp-python's server."""
    engines = {c.component: c.facts.get("engine") for c in checked}
    return [h for h in hosts if engines.get(f"host {h.name}") == LLAMA_CPP_PYTHON]


def llama_cpp_python_checks(
    configs: Sequence[Config], hosts: Sequence[HostSpec], measured: Sequence[Measured] = ()
) -> list[Check]:
    """The warnings per llama-cpp-python host (``llama_cpp_python_hosts``): configs at
    temperature > 0 without a seed, and more than one slot, with the fewer slots its
    earlier runs (``measured``) had (:mod:`evaluation.run._llama_cpp_python`; `run`
    logs the same, without them)."""
    out = []
    for host in hosts:
        for component, warning in (
            (f"slots {host.name}", one_at_a_time_warning(host, fewer_slots_before(host, measured))),
            (f"seeds {host.name}", seedless_warning(configs, host)),
        ):
            if warning:
                out.append(Check(component, "warn", warning))
    return out


async def check_hosts(
    backends: Mapping[str, Backend],
    models: Sequence[str],
    *,
    timeout_s: float = 10.0,
    busy: Mapping[str, str] | None = None,
) -> list[Check]:
    """Every host concurrently, in the order given. An OpenAI-compatible host that a run
    is using now (``busy``: URL → experiment) is not contacted: llama-cpp-python's
    server cuts the stream it is generating when any other request arrives, ``/v1/models``
    included (its ``interrupt_requests``, on by default), and the run checks its hosts
    itself. Ollama's listing endpoints disturb nothing, so Ollama hosts are asked."""
    busy = busy or {}

    async def one(backend: Backend) -> Check:
        host = backend.host
        experiment = busy.get(host.shown_url.rstrip("/"))  # stored URLs are shown ones
        if host.kind == "openai" and experiment is not None:
            return Check(
                f"host {host.name}",
                "warn",
                f"{host.shown_url}: not contacted while experiment {experiment!r} runs on it (a "
                "request would cut the generation it is streaming: llama-cpp-python's "
                "interrupt_requests)",
                {"url": host.shown_url, "kind": host.kind, "busy_with": experiment},
            )
        return await check_host(backend, models, timeout_s=timeout_s, in_use_by=experiment)

    return list(await asyncio.gather(*(one(b) for b in backends.values())))


async def check_spec(
    spec: Path,
    *,
    timeout_s: float = 10.0,
    busy: Mapping[str, str] | None = None,
    database: str | None = None,
) -> list[Check]:
    """The spec itself, then every host it names (reached and serving its models): what
    `doctor SPEC` reports beside the API and database checks. ``busy``: hosts a run is
    using now (see ``check_hosts``); ``database``: where earlier runs' slots are read
    (``slots_checks``)."""
    from evaluation.backends._auth import check_api_keys
    from evaluation.run._sweep import open_backends, prepare_sweep  # the backends, on demand

    try:
        sweep = prepare_sweep(spec)
        check_api_keys(sweep.spec)  # a key's variable unset: no backend can be built
    except EvalError as exc:
        return [Check("spec", "fail", f"{spec}: {exc}")]
    checks = [
        Check(
            "spec",
            "ok",
            f"{spec}: {counted(len(sweep.configs), 'config')} × "
            f"{counted(len(sweep.cases), 'case')}{_of_every(sweep)} on "
            f"{counted(len(sweep.spec.hosts), 'host')}",
        )
    ]
    backends = open_backends(sweep)
    try:
        # embedding models too (semantic_similarity)
        hosts = await check_hosts(backends, sweep.required_models, timeout_s=timeout_s, busy=busy)
    finally:
        await asyncio.gather(*(b.aclose() for b in backends.values()))
    measured = [] if database is None else stored_measurements(database, sweep.spec.hosts)
    llama = llama_cpp_python_hosts(sweep.spec.hosts, hosts)
    checks += hosts + llama_cpp_python_checks(sweep.configs, llama, measured)
    # a llama-cpp-python host's slots line says its earlier runs' slots (one WARN, not two)
    return checks + slots_checks([h for h in sweep.spec.hosts if h not in llama], measured)


def _of_every(sweep: Sweep) -> str:
    """ " of 12500" where the spec's ``cases:`` runs part of its suite, as `run` says it
    (a newcomer's 3-case spec read "1 config × 12500 cases"); else ""."""
    every = len(sweep.suite.cases)
    return f" of {every}" if len(sweep.cases) < every else ""


def slots_checks(hosts: Sequence[HostSpec], measured: Sequence[Measured]) -> list[Check]:
    """A warning for each host the spec gives more slots than its earlier runs had: only
    a server that runs requests in parallel gains from them (a newcomer's `slots: 4` on
    llama-cpp-python's one-at-a-time server: doctor said healthy, plan 11 min for 42)."""
    out = []
    for host in hosts:
        then = fewer_slots_before(host, measured)
        if then is not None:
            out.append(
                Check(
                    f"host {host.name}",
                    "warn",
                    f"slots: {host.slots} in the spec; its earlier runs had {then}: more "
                    "slots help only a server that runs requests in parallel (Ollama's "
                    "OLLAMA_NUM_PARALLEL, llama-server's --parallel, vLLM); llama-cpp-python's "
                    "runs one at a time: give it slots: 1 (plan gives the duration both ways)",
                    {"slots": host.slots, "slots_measured": then},
                )
            )
    return out


def fewer_slots_before(host: HostSpec, measured: Sequence[Measured]) -> int | None:
    """The most slots ``host``'s earlier runs had where that is fewer than the spec gives
    it; None where none had fewer."""
    then = [
        m.slots
        for m in measured
        if m.host == host.name and m.slots is not None and m.slots < host.slots
    ]
    return max(then, default=None)


def stored_measurements(url: str, hosts: Sequence[HostSpec]) -> list[Measured]:
    """Earlier runs' real generations on ``hosts`` (``measured_by_address``); none where
    the database cannot say (the database check reports why)."""
    from sqlalchemy.exc import SQLAlchemyError

    from evaluation.run._history import measured_by_address
    from evaluation.storage.db import make_engine, session_scope

    real = [h for h in hosts if h.kind != "simulated" and h.slots > 1]
    if not real:
        return []
    try:
        with session_scope(make_engine(url)) as session:
            return measured_by_address(session, real)  # by address too (newcomer F5)
    except (SQLAlchemyError, StorageError):
        return []


def hosts_in_use(url: str) -> dict[str, str]:
    """The hosts runs recorded in the results database at ``url`` are using now (URL →
    experiment); empty when the database cannot say (the database check reports why)."""
    from sqlalchemy.exc import SQLAlchemyError

    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.runs import running_hosts

    try:
        with session_scope(make_engine(url)) as session:
            return running_hosts(session)
    except (SQLAlchemyError, StorageError):
        return {}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _words(exc: BackendError, host: HostSpec) -> str:
    """``exc``'s first line without the host's name it starts with: the check's line
    names the host already ("host gpu-a  http://...: gpu-a: HTTP 503" named it twice)."""
    return _first_line(exc).removeprefix(f"{exc.host or host.name}: ")
