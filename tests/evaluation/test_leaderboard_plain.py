"""The terminal leaderboard is made without pandas (`evalflow show` does not import it):
byte for byte what the DataFrame renderer it replaced printed, on boards with missing
numbers, failed generations, empty outputs, pipelines with stage tables, long names and
echo flags."""

from __future__ import annotations

import math
import random
import textwrap

import pandas as pd
import pytest

from evaluation.compare._leaderboard import (
    PIPELINE_FACTS,
    RUN_FACTS,
    SIMULATED_BANNER,
    Leaderboard,
    _fmt,
    _int,
    _latency,
    empty_flags,
    metric_direction,
    ranking_words,
    render_text,
)
from evaluation.compare._stage_table import _seconds
from evaluation.labels import num_predict_spelled
from evaluation.pipelines.summary import SHARED, PipelineSummary
from evaluation.statistics.precision import column_decimals
from evaluation.statistics.ranking import rank_order


def _reference(board: Leaderboard, *, wide: bool = False, columns: int = 100) -> str:
    """The renderer before (evalflow 147b586): DataFrames and ``to_string``."""
    table = board.table
    frame = table
    if board.metrics:
        metric = board.metrics[0]
        indexed = table.set_index("config", drop=False)
        means = {c: (None if pd.isna(m) else float(m)) for c, m in indexed[metric].items()}
        n = len(table)
        echo = pd.to_numeric(table.get("echoes_prompt", pd.Series([None] * n)), errors="coerce")
        lat = pd.to_numeric(table.get("latency_p50_s", pd.Series([None] * n)), errors="coerce")
        ties = {
            str(c): (bool(e >= 0.25), float(t))
            for c, e, t in zip(table["config"], echo, lat.fillna(math.inf), strict=True)
        }
        labels = dict(indexed["label"].items())
        order = rank_order(means, metric_direction(metric), labels, ties)
        frame = indexed.loc[order].reset_index(drop=True)
    ranks = [f"#{i}" for i in range(1, len(frame) + 1)]
    if wide:
        out = pd.DataFrame(
            {
                "#": ranks,
                "config": frame["config"],
                "label": frame["label"].map(num_predict_spelled),
            }
        )
    else:
        short = board.labels
        out = pd.DataFrame(
            {"#": ranks, "config": [short[c] for c in frame["config"]]}, index=frame.index
        )
    for m in board.metrics:
        lo, hi = frame[f"{m}_ci_low"], frame[f"{m}_ci_high"]
        digits = column_decimals(lo, hi)
        out[m] = [
            f"{_fmt(v, digits)} [{_fmt(a, digits)}, {_fmt(b, digits)}]"
            for v, a, b in zip(frame[m], lo, hi, strict=True)
        ]
    if wide:
        out["p50 s"] = frame["latency_p50_s"].map(_latency)
    out["p95 s"] = frame["latency_p95_s"].map(_latency)
    if wide:
        out["ok"] = frame["generations_ok"].map(lambda v: _fmt(_int(v)))
    out["failed"] = frame["generations_failed"].map(lambda v: _fmt(_int(v)))
    if (frame["empty_outputs"].fillna(0) > 0).any():  # since d09b0f4
        out["empty"] = frame["empty_outputs"].map(lambda v: _fmt(_int(v)))
    if board.shows_pipelines:
        out["calls"] = frame["calls_per_case"].map(lambda v: _fmt(v, 1))
        out["cut"] = frame["context_truncated"].map(lambda v: _fmt(_int(v)))
    header = board.title
    if board.simulated:
        banner = f"*** {SIMULATED_BANNER} ***"
        header = f"{header}\n{banner if wide else textwrap.fill(banner, columns)}"
    left_out: list[str] = []
    text = out.to_string(index=False)
    width = lambda t: max((len(line) for line in t.splitlines()), default=0)  # noqa: E731
    while not wide and width(text) > columns and len(left_out) < len(board.metrics) - 1:
        left_out.insert(0, board.metrics[len(board.metrics) - 1 - len(left_out)])
        text = out.drop(columns=left_out).to_string(index=False)
    if left_out:
        text += f"\n(not shown: {', '.join(left_out)}; --wide shows every column)"
    if board.metrics:
        words = ranking_words(board)
        text += "\n" + (words if wide else textwrap.fill(words, columns))
    if not wide and board.shared:
        text += f"\nEvery config: {board.shared}"
    flags = [n for n in board.notes if n.startswith(("ECHOES THE PROMPT", "EMPTY OUTPUTS"))]
    if flags:
        text += "\n" + "\n".join(flags)
    if board.shows_pipelines and board.pipelines is not None and len(board.pipelines.stages):
        full = dict(zip(table["config"], table["label"], strict=True))
        names = full if wide else board.labels
        stages = board.pipelines.stages
        stage_names = list(dict.fromkeys(stages["stage"]))
        by_config = {c: rows for c, rows in stages.groupby("config", sort=False)}
        rows = []
        for config in [*frame["config"], SHARED]:
            if config in by_config:
                row = {"config": names.get(config, config)}
                row |= {r["stage"]: _seconds(r) for r in by_config[config].to_dict("records")}
                rows.append(row)
        pivot = pd.DataFrame(rows, columns=["config", *stage_names]).fillna("")
        text += (
            "\n\nTime per stage (s per case in service, summed over the stage's calls, which "
            "may run at once: not the case's wall time; +s waiting for a host slot):\n"
            + pivot.to_string(index=False)
        )
    return f"{header}\n{text}"


def _maybe(rng: random.Random, value: float) -> float | None:
    return None if rng.random() < 0.15 else value


def _board(seed: int) -> Leaderboard:
    rng = random.Random(seed)
    metrics = rng.sample(
        ["exact_match", "contains", "rougeL", "latency_s", "echoes_prompt", "a_long_metric_name"],
        rng.randint(1, 5),
    )
    models = ["sim-small:1b", "a-very-long-model-name-from-a-registry/with-a-path:70b-q4_K_M"]
    rows, by_config, stages = [], {}, []
    for i in range(rng.randint(1, 9)):
        config = f"{rng.getrandbits(64):016x}"
        label = f"{rng.choice(models)} t={rng.choice([0.0, 0.7, 1.3])} seed=42 #{i}"
        row = {"config": config, "label": label, "model": label.split()[0]}
        for m in metrics:
            mean = rng.choice([rng.random(), 0.5, 1.0, 0.0])  # ties too
            half = rng.choice([0.0, 0.004, 0.05, 0.3])
            row[m] = _maybe(rng, mean)
            row[f"{m}_ci_low"] = _maybe(rng, mean - half)
            row[f"{m}_ci_high"] = _maybe(rng, mean + half)
        failed = float(rng.choice([0, 0, 3, 120]))
        row |= {
            "generations_ok": 36.0 - failed,
            "generations_failed": failed,
            "truncated": 0.0,
            "empty_outputs": rng.choice([None, 0.0, 0.0, 0.0, 5.0]),
            "latency_p50_s": _maybe(rng, rng.random()),
            "latency_p95_s": _maybe(rng, 1 + rng.random()),
            "ttft_p50_s": _maybe(rng, rng.random() / 10),
            "tokens_per_s": _maybe(rng, 50 * rng.random()),
        }
        piped = rng.random() < 0.4
        facts = {
            "pipeline": "rag" if piped else "single",
            "calls_per_case": 2.0 if piped else 1.0,
            "wall_p50_s": rng.random(),
            "context_truncated": rng.choice([0, 0, 4]),
        }
        if rng.random() < 0.9:
            by_config[config] = facts
            row |= {f: float(facts[f]) for f in PIPELINE_FACTS}
            for stage in ("retrieve", "answer") if piped else ("generate",):
                wait = rng.choice([None, 0.0, 0.001, 0.25])
                stages.append(
                    {"config": config, "stage": stage, "seconds_per_case": rng.random()}
                    | {"wait_s_per_case": wait, "calls_per_case": 1.0}
                    | {"prompt_tokens": None, "output_tokens": 3.0}
                )
        else:
            row |= dict.fromkeys(PIPELINE_FACTS)
        rows.append(row)
    if stages and rng.random() < 0.5:
        stages.append(
            {"config": SHARED, "stage": "embed corpus", "seconds_per_case": 12.0}
            | {"wait_s_per_case": 0.0, "calls_per_case": 32.0}
            | {"prompt_tokens": 900.0, "output_tokens": 0.0}
        )
    echoes = tuple(
        f"ECHOES THE PROMPT: {r['config']} {r['label']} repeats its prompt"
        for r in rows
        if (r.get("echoes_prompt") or 0) >= 0.25
    ) + empty_flags(rows)
    pipelines = PipelineSummary(by_config, tuple(stages))
    return Leaderboard("sweep", tuple(metrics), tuple(rows), rng.random() < 0.5, echoes, pipelines)


@pytest.mark.parametrize("seed", range(30))
def test_the_plain_table_is_the_dataframes_byte_for_byte(seed):
    board = _board(seed)
    assert set(RUN_FACTS) <= set(board.rows[0])
    for wide, columns in ((False, 100), (False, 60), (False, 200), (True, 100)):
        shown, before = (
            render_text(board, wide=wide, columns=columns),
            _reference(board, wide=wide, columns=columns),
        )
        if wide or _widest(before) <= columns:
            assert shown == before, (seed, wide, columns)
        else:  # since labels and the lines under the table wrap: narrower, same characters
            assert _widest(shown) < _widest(before), (seed, columns)
            assert sorted("".join(shown.split())) == sorted("".join(before.split()))


def _widest(text: str) -> int:
    """The widest line but for the time per stage's table (its heading counts)."""
    above, _, stages = text.partition("\n\nTime per stage")
    heading = f"Time per stage{stages.split('slot):')[0]}slot):" if stages else ""
    return max(len(line) for line in [*above.splitlines(), *heading.splitlines()])
