"""The demo's spec (benchmarks/sweeps/demo-simulated.yaml): where it is, and the command
that runs it from the current folder."""

from __future__ import annotations

import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_SPEC = REPO / "benchmarks/sweeps/demo-simulated.yaml"


def demo_command() -> str:
    """`evalflow run` of the demo's spec by a path that resolves from the current folder
    (relative inside the checkout, else absolute); an install without the checkout (a
    wheel) is told where the spec is."""
    if not DEMO_SPEC.is_file():
        return (
            "evalflow run SPEC (the demo's spec is benchmarks/sweeps/demo-simulated.yaml "
            "in evalflow's repository)"
        )
    try:
        path = DEMO_SPEC.relative_to(Path.cwd())
    except ValueError:
        path = DEMO_SPEC
    return shlex.join(["evalflow", "run", str(path)])
