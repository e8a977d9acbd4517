"""The options `plan` and `run` both take: the experiment, the level, the time scale."""

from __future__ import annotations

import argparse

from evaluation.spec import NAME_PATTERN
from flows.cli import options


def level_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--level",
        choices=["smoke", "subset", "calibrated", "full"],
        default="full",
        help="smoke: 3 cases per config, fails on any error; subset: a stratified 20%%; "
        "calibrated: 10%% of the cases (or --cases) in the seeded stratified order, every "
        "score a full-suite estimate from the suite's item bank; full (default). Each reuses what "
        "earlier levels generated",
    )
    p.add_argument(
        "--cases",
        type=options.count,
        metavar="K",
        help="--level calibrated: run K cases per config (default 10%% of the suite)",
    )
    p.add_argument("--limit", type=options.count, help="only the first N cases (of the level)")


def experiment_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--experiment",
        type=options.experiment_name,
        help=f"experiment name, {NAME_PATTERN} (default: the spec's name)",
    )


def time_scale_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--time-scale",
        type=options.number(at_least=0, at_most=100),
        default=0.0,
        help=f"simulated backend only: {what} (0: no sleep; 1: real time; up to 100)",
    )
