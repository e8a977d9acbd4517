"""Test-wide setup: a private Prefect home and evalflow home, and one Prefect harness."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from unittest import mock

_TEST_HOME = Path(tempfile.mkdtemp(prefix="evalflow-tests-"))
# Before Prefect is imported anywhere: never touch the user's profile or the network.
os.environ["PREFECT_HOME"] = str(_TEST_HOME / "prefect")
os.environ["EVALFLOW_HOME"] = str(_TEST_HOME / "evalflow")
# Host slots are locked machine-wide (evaluation/backends/_machine_slots.py): each test
# session (each xdist worker) gets its own lock folder, so tests on another worker, or
# another test run on the machine, never hold a slot of a host URL a test here uses.
os.environ["EVALFLOW_SLOT_LOCK_DIR"] = str(_TEST_HOME / "host-slots")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("EVALFLOW_DATABASE_URL", None)
os.environ.pop("OLLAMA_HOST", None)  # specs without hosts: the default Ollama URL
os.environ.pop("COLUMNS", None)  # the tables as wide as in a file, not as a terminal says
# Every Prefect client (one or more per task run) builds a verified SSL context from this
# file, else from certifi's whole bundle: ~15 ms of CPU each, ~7% of an in-process sweep's
# CPU here. The APIs the tests talk to are plain http:// on loopback (the harness, embedded
# servers), as for `evalflow run`'s embedded server, which sets the same one-certificate
# file (flows.embedded_server.use_api).
if "PREFECT_API_SSL_CERT_FILE" not in os.environ:
    from flows.embedded_server import plain_http_ca_file

    os.environ["PREFECT_API_SSL_CERT_FILE"] = str(plain_http_ca_file())

import pytest  # noqa: E402
from _pytest.nodeid import NodeId  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests check what is true, not how fast: on a shared 2-core machine an example can
# take seconds (a hypothesis deadline failed test_spec's range property under load).
settings.register_profile("evalflow", deadline=None)
settings.load_profile("evalflow")

REPO = Path(__file__).resolve().parent.parent


WORKERS = 2  # CI's machine has 2 cores; half the tests wait on servers and subprocesses


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """pytest-xdist with WORKERS workers unless the command line says how many (``-n 0``:
    all in this process), asks for ``--pdb``, or leaves xdist out (``-p no:xdist``);
    ``--dist loadgroup`` whatever the number, unless ``--dist`` is given."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    if hasattr(config, "workerinput"):
        # A worker parses the command line again, without the default set here: it must
        # still name each test by its xdist_group (only --dist loadgroup reads the names).
        config.option.loadgroup = True
        return
    if config.option.numprocesses is None and not config.option.usepdb:
        config.option.numprocesses = WORKERS
    if config.option.numprocesses and config.option.dist == "no":
        # ``-n 4`` alone means xdist's plain ``--dist load``, which ignores the groups:
        # tests sharing a server or a machine-wide resource would run on several workers.
        config.option.dist = "loadgroup"
    # xdist hands out the work units (a group, or one test) in the order of
    # pytest_collection_modifyitems below, the longest first, not re-sorted by how many
    # tests each holds (its default): that put the many quick bad-input cases first and a
    # minutes-long integration module last, run alone on one worker at the end.
    config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # before xdist names each test by its group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``) a test runs on whichever worker is free,
    and each worker sets up the fixtures it needs itself. So tests that share a costly
    fixture are grouped onto one worker: the real-model tests (one session-scoped
    llama.cpp server, ~1 GB and slow to start), and the tests of a module that share a
    module- or class-scoped fixture (a Prefect server, a database, a browser page)."""
    real_models = REPO / "tests" / "real_models"
    for item in items:
        if real_models in item.path.parents:
            group = "real_models"
        elif _shares_a_fixture(item):
            group = item.path.relative_to(REPO).as_posix()
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
    if getattr(config.option, "loadgroup", False):
        for item in items:
            _name_by_group(item)
    # Workers take the groups in this order as they come free: the longest first (the
    # real-model group runs ~10 minutes, the integration tests minutes each), then the
    # tests that start real `evalflow run` process trees (`started`, tests/flows/conftest.py:
    # up to a minute each on a slow machine; in file order they ran last but for
    # selection/, one worker finishing them while the other had nothing left), so that
    # none of them is left to run alone at the end.
    first = (real_models, REPO / "tests" / "integration")
    items.sort(key=_order(first))


def _order(first: tuple[Path, ...]) -> Callable[[pytest.Item], int]:
    def order(item: pytest.Item) -> int:
        folder = next((i for i, f in enumerate(first) if f in item.path.parents), None)
        if folder is not None:
            return folder
        return len(first) + ("started" not in getattr(item, "fixturenames", ()))

    return order


def _name_by_group(item: pytest.Item) -> None:
    """What pytest-xdist's worker does for ``--dist loadgroup``: ``<node id>@<group>``, the
    controller's unit of work. xdist 3.8 writes it to ``item._nodeid``, which pytest 9.2
    no longer reads (the id is ``item._id``): the groups were silently ignored."""
    groups = {str(m.args[0] if m.args else m.kwargs.get("name", "default"))
              for m in item.iter_markers("xdist_group")}  # fmt: skip
    if groups and isinstance(getattr(item, "_id", None), NodeId):
        item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(groups))}")


def _shares_a_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definitions[-1].scope in ("class", "module", "package")
        for definitions in info.name2fixturedefs.values()
        if definitions
    )


# CI time: a report's figures are built from its data as in a run, but encoded as one fixed
# 1x1 PNG each (same <img> elements and alt texts), except in the tests marked
# report_figures (the report's own), which encode them. The encoding (matplotlib's text
# layout and drawing: ~0.6 of a 10-figure report's ~0.8 s of CPU, more with more configs)
# was paid in 100+ tests that run `evaluate` or `rescore` in-process and never look at a
# figure. The figures are still built, so a bad value (a negative error bar) still fails.
# The same in the Python processes a test starts (`evalflow run` as a process: ~1.2 of its
# ~9.5 s of CPU): tests/support/child_site's sitecustomize, on their PYTHONPATH, reads
# _FIGURES_VARIABLE, set around each test as the patch is.
_ONE_PIXEL_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAsTj2FAAAAABJRU5ErkJggg=="
)


_FIGURES_VARIABLE = "TESTS_ONE_PIXEL_FIGURES"
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, (str(REPO / "tests" / "support" / "child_site"), os.environ.get("PYTHONPATH")))
)


def _one_pixel_png(fig: object, *, dpi: int = 110) -> str:
    return _ONE_PIXEL_PNG


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Around the whole test, its setup included: a module-scoped fixture that writes a
    report is set up in its module's first test (so mark such a module as a whole)."""
    _absl_off_pytest_streams()
    if item.get_closest_marker("report_figures"):
        return (yield)
    # Only this variable is set and taken back (mock.patch.dict would also take back what
    # a session-scoped fixture set up in this test put in the environment).
    os.environ[_FIGURES_VARIABLE] = _ONE_PIXEL_PNG
    try:
        with mock.patch("evaluation.report.plots.png_data_uri", _one_pixel_png):
            return (yield)
    finally:
        os.environ.pop(_FIGURES_VARIABLE, None)


def _absl_off_pytest_streams() -> None:
    """absl's handler (rouge_score imports absl.logging) takes the sys.stderr of its import,
    here one of pytest's captures, and closes it when closed unless it is the sys.stderr of
    that moment. Prefect's first logging setup (prefect.main) closes every handler
    (logging.config.dictConfig): where that came in a test with capsys, after absl was
    imported (tests/evaluation/test_metrics.py collected), it closed the session's capture
    and the session died ("ValueError: I/O operation on closed file ... lost sys.stderr").
    The handler is on no logger (absl.logging.use_absl_handler is never called) and writes
    to the sys.stderr of the moment while absl's flags are unparsed; sys.__stderr__ is one
    it never closes."""
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is not None:
        absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API (SQLite) for every test that runs flows. Its database
    starts from evalflow's schema snapshot, as the embedded server's does, instead of
    Prefect's ~150 migrations (tens of seconds on a loaded machine); where the snapshot
    is of another Prefect version, Prefect migrates a fresh database as before."""
    import prefect
    from prefect.testing import utilities

    from flows.prefect_schema import seed_fresh_database, snapshot_version

    def seeded_folder() -> str:
        folder = tempfile.mkdtemp(prefix="prefect-harness-")
        # The file name prefect_test_harness gives its database in the folder it makes.
        database = Path(folder) / "prefect-test.db"
        seed_fresh_database(prefect.__version__, f"sqlite+aiosqlite:///{database}")
        return folder

    # The harness's server, as the embedded server starts (flows/embedded_server.py):
    # without registering Prefect's block types (~1-3 s; no flow uses a block) and, the
    # database being at the snapshot's revision, without alembic's check of it.
    server = {"PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "0"}
    if snapshot_version() == prefect.__version__:
        server["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "0"
    with contextlib.ExitStack() as harness, mock.patch.object(utilities, "mkdtemp", seeded_folder):
        with mock.patch.dict(os.environ, server):  # the server's start only, not the tests'
            harness.enter_context(utilities.prefect_test_harness(server_startup_timeout=180))
        yield


_API_VARIABLES = ("PREFECT_API_URL", "EVALFLOW_EMBEDDED_PREFECT_API_URL")


@pytest.fixture(autouse=True)
def _prefect_api_unchanged_between_tests() -> Iterator[None]:
    """`evalflow run` in-process points this process at the embedded server it starts and
    leaves it so (Prefect's exit hooks need it); the next test must not inherit that."""
    before = {name: os.environ.get(name) for name in _API_VARIABLES}
    yield
    if all(os.environ.get(name) == value for name, value in before.items()):
        return
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """The folders passed to it may not be written, as os.access says (root's
    permissions do not stop it: tests/evaluation/test_snapshot.py)."""
    folders: set[Path] = set()
    access = os.access

    def checked(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve() in folders:
            return False
        return access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", checked)
    return lambda folder: folders.add(folder.resolve())
