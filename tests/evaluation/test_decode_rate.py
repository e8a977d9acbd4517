"""A stored generation's decode speed (``GenerationResult.tokens_per_s``) is judged by
``possible_decode_rate``'s rule (against the request's decode window) in plain Python:
the record writer asks it of every generation it stores, and numpy's scalar calls cost
~25 us a record there (and numpy's import in the writer process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evaluation.backends.base import GenerationResult, possible_decode_rate


@pytest.mark.parametrize("ttft", [None, 0.0, 1e-4, 0.1, 5.4, 5.6, 6.0, float("nan")])
@pytest.mark.parametrize("latency", [None, -1.0, 0.0, 1e-4, 0.12, 5.6, float("nan")])
@pytest.mark.parametrize("duration_ns", [120_000, 21_573_861, 5_000_000_000])
def test_the_speed_kept_is_the_one_possible_decode_rate_keeps(latency, ttft, duration_ns) -> None:
    result = GenerationResult("x", "stop", latency, ttft, 7, 6, 0, 0, duration_ns, 0)
    rate = 6 / duration_ns * 1e9
    kept = latency is None or bool(possible_decode_rate(rate, 6, latency, ttft))
    assert result.tokens_per_s == (rate if kept else None)
    if not kept:  # the window is never longer than the request: the latency's rule too
        assert not possible_decode_rate(rate, 6, latency, None)


def _streamed(latency_s: float, ttft_s: float | None, tokens: int, eval_ns: int) -> float | None:
    return GenerationResult(
        "x", "length", latency_s, ttft_s, 7, tokens, 0, 0, eval_ns, 0
    ).tokens_per_s


def test_a_fast_decode_after_a_long_wait_for_the_first_token_keeps_its_speed() -> None:
    """CI, llama-cpp-python on a tiny model on a loaded machine: 12 tokens decoded in
    0.25 ms, the stream's end ~1 ms after its first token, which came after 0.27 s
    (queueing, the prompt). Judged against the whole request the speed (47,500/s) was
    dropped as impossible; the time to the first token is no decoding (a 64-slot vLLM's
    queue, a long prompt), and against the ~1 ms left it is possible."""
    speed = _streamed(0.2755556, 0.2745883, 12, 252_627)
    assert speed == pytest.approx(47_500.9, abs=0.1)
    # a busy server's queue: 5 s waited, 100 tokens at 2,000/s in the last 0.05 s
    assert _streamed(5.05, 5.0, 100, 50_000_000) == pytest.approx(2_000.0)


def test_a_servers_impossible_decode_time_is_still_dropped() -> None:
    """Newcomer F1: a llama.cpp server said 6 tokens took 0.119 ms of a 5.6 s request
    (50,262/s) where its nights ran at ~17/s: streamed, its 6 tokens spread over some
    300 ms after the first (5 gaps at ~17/s), of which 0.119 ms is under a thousandth.
    Not streamed (no first token before the end), the whole request is the window."""
    assert _streamed(5.589, 5.3, 6, 119_375) is None
    assert _streamed(5.589, 5.589, 6, 119_375) is None
    assert _streamed(5.589, None, 6, 119_375) is None
    assert _streamed(5.589, 5.3, 6, 338_162_591) == pytest.approx(17.74, abs=0.01)


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
