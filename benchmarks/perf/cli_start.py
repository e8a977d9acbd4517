"""How fast the CLI's quick verbs answer (issue 17: `show`, `experiments`, `export` and
`compare` in <= 1.5 s; issue 46: `show` and `view`'s first page <= 1 s at any experiment
size): runs the real `evalflow` executable several times per verb against prepared
results databases and prints the median wall time and CPU time (user + sys of the child)
per verb, with the load average. On a busy machine wall time is mostly waiting for a
CPU; CPU time is what the command costs, and about its wall time on an idle machine.

The database (in a temporary EVALFLOW_HOME) holds one finished experiment written as a
sweep writes it, without Prefect: the qa-short suite (36 cases), 12 configs (3 models x 4
temperatures) with seeded outputs, their scores and aggregates, and the comparison its
last stage stores. `compare` reads that stored comparison; `compare (computed)` is the
same command after the stored one was deleted, i.e. what a comparison costs the first
time (scipy.stats and statsmodels imported).

    .venv/bin/python benchmarks/perf/cli_start.py [--runs 7] [--evalflow PATH]

``--evalflow`` times another installation's executable (e.g. an older checkout's
``.venv/bin/evalflow``) against the same database, for before/after figures. With
``--sizes``, ``--code DIR [DIR ...]`` times checkouts instead (``python -m flows.cli`` with
DIR first on PYTHONPATH, each compiled to bytecode), each run of a verb taken by every
checkout in turn (before and after interleaved, as the load moves), figures per checkout.

``--sizes 72,5040,100000`` then times the start-up verbs (`--help`, `experiments`,
`show`, `view`'s first page: from the command's start to the summary page served,
`monitor`'s home page: `view` without an experiment serves it too, and `view --export`,
which writes a page per generation, up to ``--export-max`` generations) on experiments
of those sizes, filled as a run leaves them (every generation with its scores, case run
and stage rows; every tenth config a two-call pipeline; aggregates and the view's stored
pages), and says where `show`'s time goes: its imports by top-level package (``-X
importtime``). ``--keep DIR`` keeps the filled databases there for the next run (100,000
generations take a minute or two to fill).

The checkout's modules are compiled to bytecode first (``compileall``), as an installed
evalflow's are: where ``PYTHONDONTWRITEBYTECODE`` is set, a command would otherwise
compile every evalflow module it imports on every start (~0.2-0.4 s of `show`).
"""

from __future__ import annotations

import argparse
import collections
import compileall
import functools
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import text

from evaluation.backends.base import GenerationResult
from evaluation.compare import aggregate_rows, compare_experiment, save_comparison
from evaluation.metrics import get_metrics
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import (
    generations_frame,
    record_suite,
    register_experiment,
    replace_aggregates,
    replace_scores,
    save_generations,
    scores_frame,
    set_experiment_status,
)
from evaluation.suites import load_suite

REPO = Path(__file__).resolve().parents[2]
EVALFLOW = Path(sys.executable).with_name("evalflow")
EXPERIMENT = "cli-start"


def prepare(url: str) -> None:
    """One finished experiment and its stored comparison, as the `evaluate` flow leaves
    them: generations, scores, aggregates, comparison rows and record."""
    rng = np.random.default_rng(17)
    suite = load_suite(REPO / "benchmarks/suites/qa-short.jsonl")
    configs = [
        Config(model, GenerationParams(temperature=t, seed=42), PromptTemplate("plain"))
        for model in ("sim-small:1b", "sim-medium:3b", "sim-large:8b")
        for t in (0.0, 0.3, 0.7, 1.0)
    ]
    engine = make_engine(url)
    with session_scope(engine) as session:
        record_suite(session, suite)
        experiment = register_experiment(
            session,
            name=EXPERIMENT,
            suite=suite,
            configs=configs,
            spec={"name": EXPERIMENT},
            spec_path="",
            samples_per_case=1,
            metrics=suite.default_metrics,
            simulated=True,
        )
        records = []
        for k, config in enumerate(configs):
            accuracy = 0.45 + 0.04 * k
            for case in suite.cases:
                right = rng.random() < accuracy
                output = case.references[0] if right else "I am not sure."
                result = GenerationResult(
                    output, "stop", 0.3 + 0.05 * k + 0.1 * rng.random(), 0.05, simulated=True
                )
                records.append(
                    GenerationRecord(WorkItem(config, case, suite.name, 0), "h", 1, result)
                )
        save_generations(session, experiment.id, records)
        generations = generations_frame(session, experiment.id)
        by_case = {c.id: c for c in suite.cases}
        cases = [by_case[c] for c in generations["case_id"]]
        metrics = get_metrics(suite.default_metrics)
        for metric in metrics:
            values = metric.score(generations["output"].tolist(), cases)
            replace_scores(session, generations["id"].tolist(), metric.name, values.tolist())
        rows = aggregate_rows(generations, scores_frame(session, experiment.id), metrics, suite)
        replace_aggregates(session, experiment.id, rows)
        save_comparison(session, compare_experiment(session, experiment.id))
        set_experiment_status(session, experiment.id, "completed")


def forget_comparison(url: str) -> None:
    """Delete the stored comparison record: the next `compare` computes it again."""
    with session_scope(make_engine(url)) as session:
        session.execute(text("DELETE FROM comparison_runs"))


#: What is timed: a label, the command line that starts evalflow, what its environment adds.
Target = tuple[str, list[str], dict[str, str]]


def targets(options: argparse.Namespace) -> list[Target]:
    """The executable of ``--evalflow``, or each checkout of ``--code`` (compiled first, as
    an installed evalflow is) run by this interpreter with it first on PYTHONPATH."""
    if not options.code:
        return [(str(options.evalflow), [str(options.evalflow)], {})]
    found = []
    for folder in options.code:
        root = folder.resolve()
        for package in ("evaluation", "flows", "tasks", "selection"):
            compileall.compile_dir(root / package, quiet=1)
        path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        found.append((root.name, [sys.executable, "-m", "flows.cli"], {"PYTHONPATH": path}))
    return found


def timed(evalflow: Path | list[str], args: list[str], env: dict[str, str]) -> tuple[float, float]:
    command = evalflow if isinstance(evalflow, list) else [str(evalflow)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"evalflow {' '.join(args)} failed: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def shape(size: int) -> tuple[int, int, int]:
    """Configs, cases and samples of an experiment of about ``size`` generations: 2 to
    20 configs of 360 cases; 5 samples a case from 50,000 generations."""
    samples = 5 if size >= 50_000 else 1
    configs = min(20, max(2, size // 360))
    return configs, max(1, size // (configs * samples)), samples


def fill_like_a_run(url: str, size: int) -> int:
    """An experiment (``view_paging.NAME``) of about ``size`` generations as a finished
    run leaves it (``view_paging.fill``, whose every tenth config is a two-call pipeline
    with stage rows; here also each generation's case run, and its stage row for the
    single-call configs, as every run stores them); the count of generations."""
    from view_paging import fill
    from view_paging import finish as store_view_pages

    n_configs, n_cases, n_samples = shape(size)
    engine = make_engine(url)
    hashes = fill(engine, n_configs, n_cases, n_samples)
    pipelines = ", ".join(f"'{h}'" for h in hashes[::10])
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO case_runs (experiment_id, config_hash, case_uid, sample_index, "
            "pipeline, wall_s, calls, context_truncated_calls, meta, created_at) "
            f"SELECT experiment_id, config_hash, case_uid, sample_index, CASE WHEN config_hash "
            f"IN ({pipelines}) THEN 'rag' ELSE 'single' END, latency_s, CASE WHEN config_hash "
            f"IN ({pipelines}) THEN 2 ELSE 1 END, 0, '{{}}', created_at FROM generations"
        )
        connection.exec_driver_sql(
            "INSERT INTO stages (experiment_id, config_hash, case_uid, sample_index, position, "
            "stage, kind, model, host, started_at, start_s, duration_s, prompt_tokens, "
            "output_tokens, estimated_prompt_tokens, attempts, context_truncated, wait_s, "
            "shared) SELECT experiment_id, config_hash, case_uid, sample_index, 0, 'generate', "
            "'generate', 'model', host, created_at, 0.0, latency_s, prompt_eval_count, "
            "eval_count, 30, 1, 0, 0.0, 0 FROM generations "
            f"WHERE config_hash NOT IN ({pipelines})"
        )
    store_view_pages(engine)
    engine.dispose()
    return n_configs * n_cases * n_samples


def first_page(
    command: list[str], env: dict[str, str], database: str, monitor: bool = False
) -> tuple[float, float]:
    """Wall and CPU time of `evalflow view` from its start to the summary page served
    (the socket is bound before the app is built: the request waits in its backlog);
    ``monitor``: of `evalflow monitor` to its home page."""
    from view_paging import NAME

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verb = ["monitor"] if monitor else ["view", NAME]
    args = ["--database", database, *verb, "--port", str(port)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                url = f"http://127.0.0.1:{port}" + ("/" if monitor else f"/e/{NAME}/summary")
                with urllib.request.urlopen(url, timeout=120) as response:
                    response.read()
                break
            except OSError:  # not listening yet
                if process.poll() is not None:
                    raise SystemExit(f"evalflow view exited {process.returncode}") from None
                time.sleep(0.01)
        wall = time.perf_counter() - started
    finally:
        # SIGTERM, not SIGINT: run from a script's background job (as issue46_figures.sh
        # can be) the command inherits SIGINT ignored, as every program does, and would not stop.
        process.send_signal(signal.SIGTERM)
        process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_costs(command: list[str], args: list[str], env: dict[str, str], top: int = 8) -> str:
    """Where a command's imports go: ``-X importtime``'s own time summed per top-level
    package, the largest ``top`` of them, and the total (instrumented: ~10-20% high)."""
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env | {"PYTHONPROFILEIMPORTTIME": "1"},
    )
    spent: collections.Counter[str] = collections.Counter()
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*([\w.]+)", line)
        if found:
            spent[found[2].split(".")[0]] += int(found[1])
    parts = ", ".join(f"{name} {us / 1000:.0f}" for name, us in spent.most_common(top))
    return f"imports {sum(spent.values()) / 1000:.0f} ms: {parts}"


def sized(options: argparse.Namespace, root: Path) -> None:
    """The start-up verbs at each of ``options.sizes``."""
    runs, timed_ones = options.runs, targets(options)
    for size in options.sizes:
        path = (options.keep or root) / f"cli-start-{size}.db"
        database = f"sqlite:///{path}"
        if not path.exists():
            started = time.perf_counter()
            total = fill_like_a_run(database, size)
            print(f"filled {total:,} generations in {time.perf_counter() - started:.0f} s")
        from view_paging import NAME

        env = os.environ | {
            "EVALFLOW_HOME": str(root / "home"),
            "PREFECT_HOME": str(root / "prefect"),
        }
        env.pop("EVALFLOW_DATABASE_URL", None)
        verbs = {
            "--help": ["--help"],
            "experiments": ["--database", database, "experiments"],
            "show": ["--database", database, "show", NAME],
        }
        print(f"\n{size:,} generations ({path.name}); load average before: {_load()}")
        width = 20 if len(timed_ones) == 1 else 24 + max(len(name) for name, *_ in timed_ones)
        print(f"{'verb':<{width}} {'wall median':>12} {'CPU median':>11}   (of {runs} runs)")
        measures: dict[str, Callable[[list[str], dict[str, str]], tuple[float, float]]] = {
            label: functools.partial(_timed_verb, args) for label, args in verbs.items()
        }
        measures["view, first page"] = functools.partial(_first_page, database)
        measures["monitor, home page"] = functools.partial(_first_page, database, monitor=True)
        if size <= options.export_max:
            out = str(root / f"export-{size}")
            args = ["--database", database, "view", NAME, "--export", out]
            measures["view --export"] = functools.partial(_timed_verb, args)
        for label, measure in measures.items():
            taken: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in timed_ones}
            for _ in range(runs):  # every target in turn
                for name, command, extra in timed_ones:
                    taken[name].append(measure(command, env | extra))
            for name, results in taken.items():
                _report(label if len(timed_ones) == 1 else f"{label} [{name}]", results, width)
        for name, command, extra in timed_ones:
            print(f"show [{name}]: {import_costs(command, verbs['show'], env | extra)}")
        print(f"load average after: {_load()} on {os.cpu_count()} CPUs")


def _timed_verb(args: list[str], command: list[str], env: dict[str, str]) -> tuple[float, float]:
    return timed(command, args, env)


def _first_page(
    database: str, command: list[str], env: dict[str, str], monitor: bool = False
) -> tuple[float, float]:
    return first_page(command, env, database, monitor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per verb (median taken)")
    parser.add_argument("--evalflow", type=Path, default=EVALFLOW, help="the executable timed")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        help="also the start-up verbs on experiments of these sizes, e.g. 72,5040,100000",
    )
    parser.add_argument("--only-sizes", action="store_true", help="skip the qa-short verbs")
    parser.add_argument(
        "--code", type=Path, nargs="+", help="with --sizes: checkouts timed, interleaved"
    )
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the filled databases here")
    parser.add_argument(
        "--export-max", type=int, default=72, help="view --export only up to this size"
    )
    options = parser.parse_args()
    for package in ("evaluation", "flows", "tasks", "selection"):  # as installed
        compileall.compile_dir(REPO / package, quiet=1)
    runs, evalflow = options.runs, options.evalflow
    if options.sizes:
        sys.path.insert(0, str(Path(__file__).parent))  # view_paging's fill
    if options.only_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            sized(options, Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'results.db'}"
        env = os.environ | {
            "EVALFLOW_HOME": str(root / "home"),
            "EVALFLOW_DATABASE_URL": url,
            "PREFECT_HOME": str(root / "prefect"),
        }
        prepare(url)
        out = root / "export"
        verbs = {
            "--version": ["--version"],
            "experiments": ["experiments"],
            "show": ["show", EXPERIMENT],
            "export": ["export", EXPERIMENT, "--level", "scores", "--out", str(out)],
            "compare": ["compare", EXPERIMENT],
            "compare --markdown": ["compare", EXPERIMENT, "--markdown"],
        }
        print(f"{evalflow}; load average before: {_load()}")
        print(f"{'verb':<20} {'wall median':>12} {'CPU median':>11}   (of {runs} runs)")
        for label, args in verbs.items():
            _report(label, [timed(evalflow, args, env) for _ in range(runs)])
        computed = []
        for _ in range(runs):
            forget_comparison(url)
            computed.append(timed(evalflow, verbs["compare"], env))
        _report("compare (computed)", computed)
        print(f"load average after: {_load()} on {os.cpu_count()} CPUs")
        if options.sizes:
            sized(options, root)


def _report(label: str, results: list[tuple[float, float]], width: int = 20) -> None:
    wall = statistics.median(r[0] for r in results)
    cpu = statistics.median(r[1] for r in results)
    print(f"{label:<{width}} {wall:>10.2f} s {cpu:>9.2f} s")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
