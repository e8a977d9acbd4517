"""A stored generation's decode speed (``GenerationResult.tokens_per_s``) is judged by
``possible_decode_rate``'s rule in plain Python: the record writer asks it of every
generation it stores, and numpy's scalar calls cost ~25 us a record there (and numpy's
import in the writer process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evaluation.backends.base import GenerationResult, possible_decode_rate


@pytest.mark.parametrize("latency", [None, -1.0, 0.0, 1e-4, 0.12, 5.6, float("nan")])
@pytest.mark.parametrize("duration_ns", [120_000, 21_573_861, 5_000_000_000])
def test_the_speed_kept_is_the_one_possible_decode_rate_keeps(latency, duration_ns) -> None:
    result = GenerationResult("x", "stop", latency, None, 7, 6, 0, 0, duration_ns, 0)
    rate = 6 / duration_ns * 1e9
    kept = latency is None or bool(possible_decode_rate(rate, 6, latency))
    assert result.tokens_per_s == (rate if kept else None)


def test_a_decode_speed_loads_no_numpy() -> None:
    code = (
        "import sys\n"
        "from evaluation.backends.base import GenerationResult\n"
        "r = GenerationResult('x', 'stop', 0.12, None, 7, 6, 0, 0, 21_573_861, 0)\n"
        "assert r.tokens_per_s\n"
        "print('numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
