"""Tango's score interval for the difference of two paired proportions.

Source: T. Tango, "Equivalence test and confidence interval for the difference in
proportions for the paired-sample design", Statistics in Medicine 17:891–908 (1998);
recommended by M. W. Fagerland, S. Lydersen and P. Laake, "Recommended tests and
confidence intervals for paired binomial proportions", Statistics in Medicine
33:2850–2875 (2014). With b cases where only A scored 1, c where only B did, and n
cases, the difference is Δ̂ = (b − c)/n and the interval is every Δ the score test
does not reject:

    T(Δ) = (b − c − nΔ) / sqrt(n · (2·q̃ + Δ(1 − Δ))),   |T(Δ)| ≤ z,

q̃ the maximum-likelihood probability of B-only cases under Δ (the root of
2n·q² + (−b − c + (2n − b + c)Δ)·q − c·Δ(1 − Δ) = 0). At Δ = 0, T is McNemar's
statistic (b − c)/√(b + c): the interval leaves out 0 only where McNemar's asymptotic
test rejects. It stays within [−1, 1] and never collapses to a point: 8 cases that A
alone got right give [0.35, 1], 2 such cases [−0.32, 1].
"""

from __future__ import annotations

import functools
import math

from scipy import special

_TOLERANCE = 1e-12  # limits found to this (bisection: T(Δ) falls as Δ rises)


@functools.lru_cache(maxsize=4096)
def tango_interval(b: int, c: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Tango's ``confidence`` interval for p_A − p_B from ``b`` cases only A scored 1 on,
    ``c`` only B did, ``n`` cases (n ≥ 1; b + c ≤ n). A limit at ±1 is the estimate's
    own where it is ±1 (every case A-only, or B-only)."""
    if min(b, c) < 0 or b + c > n or n < 1:
        raise ValueError(f"need 0 ≤ b, c and b + c ≤ n ≥ 1; got b={b}, c={c}, n={n}")
    z = float(special.ndtri(0.5 + confidence / 2))
    estimate = (b - c) / n
    low = -1.0 if b - c == -n else _root(lambda d: _score(b, c, n, d) - z, -1.0, estimate)
    high = 1.0 if b - c == n else _root(lambda d: _score(b, c, n, d) + z, estimate, 1.0)
    return low, high


def _score(b: int, c: int, n: int, delta: float) -> float:
    """Tango's T(Δ); ±inf (or 0 for 0/0) where its variance vanishes."""
    qb = -b - c + (2 * n - b + c) * delta
    qc = -c * delta * (1 - delta)
    root = math.sqrt(max(qb * qb - 8 * n * qc, 0.0))
    # q̃ = (√D − B)/(2A) = −2C/(B + √D): the second form where B > 0 does not cancel
    q21 = (root - qb) / (4 * n) if qb <= 0 else -2 * qc / (qb + root)
    variance = n * (2 * q21 + delta * (1 - delta))
    numerator = b - c - n * delta
    if variance <= 0:
        return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def _root(f, low: float, high: float) -> float:
    """The Δ in [low, high] where the decreasing ``f`` crosses 0 (f(low) > 0 > f(high))."""
    while high - low > _TOLERANCE:
        middle = (low + high) / 2
        if f(middle) > 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2
