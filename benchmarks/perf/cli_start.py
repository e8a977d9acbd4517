"""How fast the CLI's quick verbs answer (issue 17: `show`, `experiments`, `export` and
`compare` in <= 1.5 s): runs the real `evalflow` executable several times per verb
against a small prepared results database and prints the median wall time and CPU time
(user + sys of the child) per verb, with the load average. On a busy machine wall time is
mostly waiting for a CPU; CPU time is what the command costs.

The database (in a temporary EVALFLOW_HOME) holds one finished experiment written as a
sweep writes it, without Prefect: the qa-short suite (36 cases), 12 configs (3 models x 4
temperatures) with seeded outputs, their scores and aggregates, and the comparison its
last stage stores. `compare` reads that stored comparison; `compare (computed)` is the
same command after the stored one was deleted, i.e. what a comparison costs the first
time (scipy.stats and statsmodels imported).

    .venv/bin/python benchmarks/perf/cli_start.py [--runs 7] [--evalflow PATH]

``--evalflow`` times another installation's executable (e.g. an older checkout's
``.venv/bin/evalflow``) against the same database, for before/after figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
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


def timed(evalflow: Path, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(evalflow), *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"evalflow {' '.join(args)} failed: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per verb (median taken)")
    parser.add_argument("--evalflow", type=Path, default=EVALFLOW, help="the executable timed")
    options = parser.parse_args()
    runs, evalflow = options.runs, options.evalflow
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


def _report(label: str, results: list[tuple[float, float]]) -> None:
    wall = statistics.median(r[0] for r in results)
    cpu = statistics.median(r[1] for r in results)
    print(f"{label:<20} {wall:>10.2f} s {cpu:>9.2f} s")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
