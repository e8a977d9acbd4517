"""What a newcomer reads in the first hour: help in a user's words with examples that
work on the demo, a first line at once, plural counts, no GPU talk on a simulated run,
and closing lines that say where to look next."""

from __future__ import annotations

import logging
import shlex

import pytest
import yaml
from sqlalchemy import create_engine

from evaluation.wording import counted
from flows.cli._run_words import next_steps, starting_line
from flows.cli.app import EXAMPLES, build_parser
from tasks import telemetry
from tests.conftest import REPO

BUNDLED = {
    yaml.safe_load(path.read_text(encoding="utf-8"))["name"]
    for path in (REPO / "benchmarks" / "sweeps").glob("*.yaml")
}


def test_every_help_example_names_an_experiment_a_bundled_sweep_makes():
    """The examples used an experiment called `demo`, which nothing creates."""
    parser = build_parser()
    named = 0
    for verb, example in EXAMPLES.items():
        # the deploy example's folder is the user's checkout: this one, here
        example = example.replace("/srv/evalflow", str(REPO))
        args = parser.parse_args(shlex.split(example)[1:])
        experiments = getattr(args, "experiments", None) or [getattr(args, "experiment", None)]
        for name in filter(None, experiments):
            if verb != "baseline":  # accepts a nightly run's name, which nightly makes
                named += 1
                assert name in BUNDLED, f"{verb}: {example}"
    assert named >= 8


def test_the_top_level_help_describes_evalflow_for_users():
    text = build_parser().format_help()
    assert "the edge where" not in text
    assert "Find the best local model and settings" in text
    assert "evalflow run benchmarks/sweeps/demo-simulated.yaml" in text


def test_run_says_what_is_starting_once_the_spec_is_checked():
    """The first line comes before Prefect's ~10 s of start-up (it was a blank terminal),
    and after the checks, so bad input stays one line."""
    from evaluation.run._sweep import prepare_sweep

    sweep = prepare_sweep(REPO / "benchmarks" / "sweeps" / "demo-simulated.yaml")
    line = starting_line(sweep, "demo-simulated", local_server=True)
    assert line == (
        "demo-simulated: 432 generations to run (12 configs × 36 cases × 1 sample)"
        "; starting Prefect…"
    )
    assert len(line) <= 120  # it was cut in two in a 120-column terminal
    assert "Prefect" not in starting_line(sweep, "demo-simulated", local_server=False)


def test_the_first_line_counts_only_the_cases_the_level_and_limit_run():
    """`run … --limit 4` said 432 generations (every case) while 48 ran."""
    from evaluation.run._sweep import prepare_sweep

    sweep = prepare_sweep(REPO / "benchmarks" / "sweeps" / "demo-simulated.yaml")
    limited = starting_line(sweep, "demo-simulated", local_server=False, limit=4)
    assert limited == (
        "demo-simulated: 48 generations to run (12 configs × 4 cases of 36 × 1 sample)…"
    )
    smoke = starting_line(sweep, "demo-simulated", local_server=True, level="smoke")
    assert smoke.startswith("demo-simulated: 36 generations to run (")
    assert len(smoke) <= 120  # "3 cases of 36" made it 121


def test_counts_are_singular_for_one():
    assert counted(1, "sample") == "1 sample"
    assert counted(0, "sample") == "0 samples"
    assert counted(12, "config") == "12 configs"


def test_the_closing_lines_say_where_to_look_next():
    text = next_steps("demo-simulated", "/home/u/.evalflow/reports/r.html")
    assert "evalflow view demo-simulated" in text
    assert "http://127.0.0.1:8766/e/demo-simulated/summary" in text
    assert "/home/u/.evalflow/reports/r.html" in text
    assert "evalflow compare demo-simulated" in text
    assert max(map(len, text.splitlines())) <= 120  # the browser's line was cut at 120
    # at 80 columns the URL's line was 89 and the report's 96: each under its words
    narrow = next_steps("demo-simulated", "/home/u/.evalflow/reports/r.html", width=80)
    assert max(map(len, narrow.splitlines())) <= 80
    assert narrow.splitlines()[2:5] == [
        "  every output, in the browser:",
        "    evalflow view demo-simulated",
        "    then open http://127.0.0.1:8766/e/demo-simulated/summary",
    ]
    assert next_steps("x", "r.html", width=80) == next_steps("x", "r.html")  # it fits


def _telemetry_lines(monkeypatch, *, simulated_only: bool) -> list[str]:
    lines: list[str] = []
    logger = logging.getLogger("test-telemetry")
    monkeypatch.setattr(logger, "info", lambda fmt, *a: lines.append(fmt % a))
    monkeypatch.setattr(telemetry, "get_run_logger", lambda: logger)
    monkeypatch.setattr(telemetry, "save_config_telemetry", lambda *a: None)
    engine = create_engine("sqlite://")
    telemetry.record_telemetry.fn(engine, 1, {}, simulated_only=simulated_only)
    return lines


def test_a_simulated_run_says_nothing_about_gpu_telemetry(monkeypatch):
    assert _telemetry_lines(monkeypatch, simulated_only=True) == []
    assert _telemetry_lines(monkeypatch, simulated_only=False) == [
        "GPU telemetry: 0 of 0 configs measured by NVML, 0 with VRAM from /api/ps"
    ]


@pytest.mark.parametrize(
    "path", sorted((REPO / "benchmarks" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_bundled_sweep_plans_without_a_context_warning(path):
    """thorough-analysis.yaml warned on each of its 9 configs (prompts of ~4338 tokens
    beyond num_ctx 4096) at every `plan` and `run`: a flagship example that trains its
    readers to skip warnings."""
    from evaluation.run._context_check import context_warnings
    from evaluation.run._sweep import prepare_sweep

    sweep = prepare_sweep(path)
    assert context_warnings(sweep.work_items(), sweep.spec.hosts) == []
