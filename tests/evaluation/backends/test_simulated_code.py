"""The simulated backend on code cases: whole programs whose pass rate is the ground
truth, and the documented pass@k truth."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest

from evaluation.backends._simulated_code import true_pass_at_k
from evaluation.backends._simulated_truth import true_quality
from evaluation.backends.base import GenerationRequest
from evaluation.backends.simulated import SimulatedBackend
from evaluation.metrics import extract_code, pass_at_k
from evaluation.spec import GenerationParams, HostSpec
from evaluation.suites import Case, Message, Suite

HOST = HostSpec("sim", "sim://local", kind="simulated")
DOCS = Path(__file__).parents[3] / "docs" / "simulated-backend.md"
PREFIX = 'def f(x):\n    """Return x plus the case number."""\n'


def _suite(n: int) -> Suite:
    cases = tuple(
        Case(
            f"k{i}",
            f"Write f.\n```python\n{PREFIX}```",
            (f"{PREFIX}    return x + {i}\n",),
            metadata={
                "entry_point": "f",
                "prefix": PREFIX,
                "tests": [f"assert f(0) == {i}"],
                "plausible_wrong": f"{PREFIX}    return x\n",
            },
        )
        for i in range(n)
    )
    return Suite("code", "1", "code", ("pass@1",), cases)


def _answers(suite: Suite, model: str, params: GenerationParams, samples: int) -> list[list[str]]:
    sim = SimulatedBackend(HOST, suites={"code": suite})

    async def go() -> list[list[str]]:
        return [
            [
                (
                    await sim.generate(
                        GenerationRequest(
                            model, (Message("user", c.input),), params, f"code/{c.id}", s
                        )
                    )
                ).text
                for s in range(samples)
            ]
            for c in suite.cases
        ]

    return asyncio.run(go())


def test_pass_at_k_truth_matches_closed_forms() -> None:
    assert true_pass_at_k(0.37, 1) == pytest.approx(0.37, abs=1e-9)
    # Two samples at quality 0.5 with latent correlation 0.5: 1 − P(both fail) =
    # 1 − (1/4 + arcsin(0.5)/(2π)) = 2/3.
    assert true_pass_at_k(0.5, 2) == pytest.approx(2 / 3, abs=1e-9)
    assert true_pass_at_k(0.5, 2, correlation=0.0) == pytest.approx(0.75, abs=1e-9)


def test_simulated_programs_pass_at_the_true_rate() -> None:
    suite = _suite(300)
    params = GenerationParams(temperature=0.2, num_predict=1024)
    answers = _answers(suite, "sim-large:8b", params, samples=5)
    passed = [
        [extract_code(a, "f", PREFIX).endswith(f"return x + {i}\n") for a in per_case]
        for i, per_case in enumerate(answers)
    ]
    assert all(a.count("```") == 2 for per_case in answers for a in per_case)
    quality = true_quality("sim-large:8b", params, "default", "code")
    measured_1 = np.mean([np.mean(p) for p in passed])
    measured_5 = np.mean([pass_at_k(5, sum(p), 5) for p in passed])
    assert measured_1 == pytest.approx(quality, abs=0.04)
    assert measured_5 == pytest.approx(true_pass_at_k(quality, 5), abs=0.04)
    wrong = [
        a
        for per_case, p in zip(answers, passed, strict=True)
        for a, ok in zip(per_case, p, strict=True)
        if not ok
    ]
    assert any("NotImplementedError" in a for a in wrong)
    assert any(a.rstrip("`\n").endswith("return x") for a in wrong)


def test_docs_table_gives_the_demo_truth() -> None:
    rows = re.findall(
        r"^\| `(sim-[^`]+)` t=([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", DOCS.read_text(), re.M
    )
    assert len(rows) == 6
    for model, temperature, pass1, pass5 in rows:
        params = GenerationParams(temperature=float(temperature), num_predict=1024, seed=42)
        quality = true_quality(model, params, "default", "code")
        assert float(pass1) == pytest.approx(quality, abs=5e-4)
        assert float(pass5) == pytest.approx(true_pass_at_k(quality, 5), abs=5e-4)
