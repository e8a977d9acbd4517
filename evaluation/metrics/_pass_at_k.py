"""The unbiased pass@k estimator of Chen et al. (2021), "Evaluating Large Language
Models Trained on Code", arXiv 2107.03374, section 2.1:

    pass@k = 1 − C(n − c, k) / C(n, k)

for a problem with n samples of which c pass all tests (1 when n − c < k). It is
computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i), the paper's numerically stable form.
Averaged over problems it estimates the chance that at least one of k samples passes.
"""

from __future__ import annotations

import re

import numpy as np

PASS_AT_K = re.compile(r"pass@([1-9][0-9]*)")
MAX_K = 1000  # samples_per_case is at most 1000 (evaluation/spec/_fields.py BOUNDS)


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k of one problem with ``n`` samples, ``c`` of them correct; needs n ≥ k."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def parse_k(name: str) -> int | None:
    """k of a metric name "pass@k", else None; ValueError past ``MAX_K`` (read without
    converting thousands of digits)."""
    match = PASS_AT_K.fullmatch(name)
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) > len(str(MAX_K)) or int(digits) > MAX_K:
        shown = digits if len(digits) <= 12 else f"{digits[:12]}... ({len(digits)} digits)"
        raise ValueError(
            f"pass@k takes k from 1 to {MAX_K} (samples_per_case is at most {MAX_K}), got {shown}"
        )
    return int(digits)
