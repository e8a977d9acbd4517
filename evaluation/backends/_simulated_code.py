"""Simulated answers to code cases, and the pass@k they truly have.

A correct draw (probability ``true_quality`` for task type "code", through the same
difficulty copula as every task) answers with the case's reference solution, which
passes every hidden test; a wrong draw answers with the case's ``plausible_wrong``
program when it has one (half of the time), else with the prefix and a body that raises
NotImplementedError. Both fail at least one test (a test of the bundled suite checks
this), so a program passes all tests exactly when the draw was correct. The answer is a
```python fenced block, wrapped like any answer (reasoning first, or a chatty phrase).

Truth: a sample passes with probability p(d) = Φ((Φ⁻¹(q) − √ρ·d)/√(1 − ρ)) given the
problem's difficulty d ~ N(0, 1) (ρ = DIFFICULTY_CORRELATION), samples independent given
d, so the expected pass@k over problems is E_d[1 − (1 − p(d))^k] (pass@1 = q).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from evaluation.backends._simulated_truth import DIFFICULTY_CORRELATION
from evaluation.suites import Case

_QUADRATURE_POINTS = 80


def code_answer(case: Case, correct: bool, rng: np.random.Generator) -> str:
    """The simulated model's answer to a code case, as a fenced block."""
    meta = case.metadata
    if correct and case.references:
        program = case.references[0]
    elif meta.get("plausible_wrong") and rng.random() < 0.5:
        program = meta["plausible_wrong"]
    else:
        program = meta.get("prefix", "") + "    raise NotImplementedError\n"
    return f"```python\n{program.rstrip()}\n```"


def true_pass_at_k(quality: float, k: int, correlation: float = DIFFICULTY_CORRELATION) -> float:
    """E_d[1 − (1 − p(d))^k] by Gauss–Hermite quadrature (see the module docstring)."""
    if quality <= 0.0 or quality >= 1.0:
        return float(quality >= 1.0)
    nodes, weights = np.polynomial.hermite_e.hermegauss(_QUADRATURE_POINTS)
    threshold = NormalDist().inv_cdf(quality)
    normal = NormalDist()
    p = np.array(
        [
            normal.cdf((threshold - math.sqrt(correlation) * d) / math.sqrt(1 - correlation))
            for d in nodes
        ]
    )
    return float(np.sum(weights * (1 - (1 - p) ** k)) / np.sum(weights))
