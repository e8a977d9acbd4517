"""The leaderboard: per config, each metric's mean with its 95% interval, latency p50/p95,
TTFT, tokens/s and failures. Built from stored rows; stored back as aggregate rows so
`evalflow show` needs no recomputation."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlmodel import Session

from evaluation.compare._stage_table import stage_lines, stage_text
from evaluation.errors import ScorerFailed
from evaluation.labels import distinguishing_labels, settings_footer
from evaluation.pipelines.summary import PipelineSummary
from evaluation.spec import DEFAULT_NUM_PREDICT
from evaluation.statistics.precision import column_decimals, fixed, rounded
from evaluation.statistics.ranking import ECHO_FLAG_SHARE, rank_order, tie_keys
from evaluation.storage.coverage import Coverage, experiment_coverage
from evaluation.storage.repository import aggregates_frame, experiment_configs, get_experiment
from evaluation.storage.stages import pipeline_summary
from evaluation.suites import Suite
from evaluation.wording import NOT_MEASURED

if TYPE_CHECKING:  # the metrics import their backends; reading a leaderboard needs neither
    from evaluation.metrics import Metric

SIMULATED_BANNER = (
    "SIMULATED: these results come from evalflow's simulated backend, not from a real "
    "model. They show the pipeline working, nothing about any real model."
)

# Operational facts stored beside the metrics, as aggregate rows with these names.
RUN_FACTS = (
    "generations_ok",
    "generations_failed",
    "truncated",
    "latency_p50_s",
    "latency_p95_s",
    "ttft_p50_s",
    "tokens_per_s",
)
CORPUS_BOOTSTRAP_RESAMPLES = 1000
# Pipeline facts, read from the case_runs table (evaluation/pipelines/summary.py).
PIPELINE_FACTS = ("calls_per_case", "wall_p50_s", "context_truncated")
# Decimals of the run facts in tables: milliseconds, tenths of a token per second; the
# other facts are counts.
_FACT_DECIMALS = {
    "latency_p50_s": 3,
    "latency_p95_s": 3,
    "ttft_p50_s": 3,
    "tokens_per_s": 1,
    "calls_per_case": 1,
    "wall_p50_s": 3,
}


@dataclass(frozen=True)
class Leaderboard:
    experiment: str
    metrics: tuple[str, ...]
    table: pd.DataFrame  # one row per config, in sweep order
    simulated: bool
    notes: tuple[str, ...] = ()
    pipelines: PipelineSummary | None = None  # calls, stage times, cut prompts
    coverage: Coverage | None = None  # how much of the suite the means rest on

    @property
    def title(self) -> str:
        """ "Leaderboard: NAME", with "(subset: 8 of 36 cases)" where the experiment ran
        part of its suite: every mean below is over those cases only."""
        words = self.coverage.words() if self.coverage else ""
        return f"Leaderboard: {self.experiment}" + (f" ({words})" if words else "")

    @property
    def labels(self) -> dict[str, str]:
        """Config hash -> its label as every output shows it: what varies between this
        experiment's configs (``evaluation.labels``)."""
        full = list(self.table["label"])
        short = distinguishing_labels(full)
        return {c: short[x] for c, x in zip(self.table["config"], full, strict=True)}

    @property
    def shared(self) -> str:
        """The settings every config shares (left out of ``labels``), num_predict by its
        name, and what "n=" in a label means (``settings_footer``)."""
        return settings_footer(list(self.table["label"]), DEFAULT_NUM_PREDICT)

    @property
    def shows_pipelines(self) -> bool:
        """Pipeline columns are shown when a config made several calls per case or a
        prompt was cut to the context window."""
        return self.pipelines is not None and (
            self.pipelines.multi_call or self.pipelines.any_truncated
        )


def aggregate_rows(
    generations: pd.DataFrame,
    scores: pd.DataFrame,
    metrics: Sequence[Metric],
    suite: Suite,
) -> list[dict]:
    """Aggregate rows (config, metric, n, mean, se, ci, method, note) for every config:
    means with clustered / sample-averaged error bars from the statistics module, corpus
    metrics with a seeded case bootstrap, and the run facts."""
    # scipy.special: computing aggregates needs it, reading the leaderboard (`show`) not
    from evaluation.statistics.intervals import MeanEstimate, corpus_interval, summarize

    rows: list[dict] = []
    scored = set(scores["metric"])  # a sweep whose generations all failed has no scores
    per_case = [m.name for m in metrics if not m.corpus_level and m.name in scored]
    bounds = {m.name: m.bounds for m in metrics}
    for est in summarize(scores, metrics=per_case, bounds=bounds):
        rows.append(_estimate_row(est.config, est.metric, est))
    ok = generations[generations["status"] == "ok"]
    by_case = {case.id: case for case in suite.cases}
    for metric in (m for m in metrics if m.corpus_level):
        for config, part in ok.groupby("config_hash", sort=False):
            # by case, not by insertion (which follows concurrency): reproducible resamples
            part = part.sort_values(["case_id", "sample_index"], kind="stable")
            outputs = part["output"].fillna("").tolist()
            cases = [by_case[c] for c in part["case_id"]]
            try:
                est = corpus_interval(
                    metric.corpus_resampler(outputs, cases, labels=suite.labels or None),
                    len(outputs),
                    groups=part["case_id"].to_numpy(),
                    n_resamples=CORPUS_BOOTSTRAP_RESAMPLES,
                )
            except ScorerFailed as exc:  # a user's corpus function: NaN, and why
                est = MeanEstimate(len(outputs), None, None, None, 0.95, "none", note=str(exc))
            rows.append(_estimate_row(config, metric.name, est))
    for config, part in generations.groupby("config_hash", sort=False):
        rows.extend(_fact_rows(config, part))
    return rows


def _estimate_row(config: str, metric: str, est) -> dict:
    return {
        "config_hash": config,
        "metric": metric,
        "n": est.n,
        "mean": est.mean,
        "se": est.se,
        "ci_low": est.ci[0] if est.ci else None,
        "ci_high": est.ci[1] if est.ci else None,
        "method": est.method,
        "note": est.note,
    }


def _fact_rows(config: str, part: pd.DataFrame) -> list[dict]:
    ok = part[part["status"] == "ok"]
    latency = ok["latency_s"].dropna()
    ttft = ok["ttft_s"].dropna()
    tps = ok["tokens_per_s"].dropna()
    facts = {
        "generations_ok": (len(ok), float(len(ok))),
        "generations_failed": (len(part) - len(ok), float(len(part) - len(ok))),
        "truncated": (len(ok), float(ok["truncated"].astype(bool).sum())),
        "latency_p50_s": (len(latency), _quantile(latency, 0.5)),
        "latency_p95_s": (len(latency), _quantile(latency, 0.95)),
        "ttft_p50_s": (len(ttft), _quantile(ttft, 0.5)),
        "tokens_per_s": (len(tps), float(tps.mean()) if len(tps) else None),
    }
    return [
        {
            "config_hash": config,
            "metric": name,
            "n": n,
            "mean": value,
            "se": None,
            "ci_low": None,
            "ci_high": None,
            "method": "run fact",
            "note": "",
        }
        for name, (n, value) in facts.items()
    ]


def _quantile(values: pd.Series, q: float) -> float | None:
    return float(values.quantile(q)) if len(values) else None


def load_leaderboard(session: Session, experiment: str) -> Leaderboard:
    """The stored leaderboard of an experiment (as the last run or rescore left it)."""
    row = get_experiment(session, experiment)
    configs = experiment_configs(session, row.id)
    aggregates = aggregates_frame(session, row.id)
    metrics = tuple(m for m in row.metrics if m in set(aggregates["metric"]))
    table = configs[["hash", "label", "model"]].rename(columns={"hash": "config"})
    by_metric = {m: part.set_index("config_hash") for m, part in aggregates.groupby("metric")}
    for metric in metrics:
        part = by_metric[metric]
        table[metric] = table["config"].map(part["mean"])
        table[f"{metric}_ci_low"] = table["config"].map(part["ci_low"])
        table[f"{metric}_ci_high"] = table["config"].map(part["ci_high"])
    for fact in RUN_FACTS:
        part = by_metric.get(fact)
        table[fact] = table["config"].map(part["mean"]) if part is not None else np.nan
    notes = tuple(
        f"{r.metric} / {r.config_hash}: {r.note}"
        for r in aggregates.itertuples()
        if isinstance(r.note, str) and r.note
    )
    notes += echo_flags(table) if "echoes_prompt" in metrics else ()
    pipelines = pipeline_summary(session, row.id)
    for column in ("calls_per_case", "wall_p50_s", "context_truncated"):
        table[column] = table["config"].map(pipelines.configs[column]).astype(float)
    coverage = experiment_coverage(session, row)
    return Leaderboard(row.name, metrics, table, row.simulated, notes, pipelines, coverage)


def ranked_table(board: Leaderboard, higher_is_better: bool | None = None) -> pd.DataFrame:
    """The table best first on the first metric, in the comparison's order
    (``rank_order``: ties by ``tie_keys``, echo flag then median latency, then label).
    ``higher_is_better``: the metric's direction
    (default: the registry's, else higher)."""
    if not board.metrics:
        return board.table
    metric = board.metrics[0]
    if higher_is_better is None:
        higher_is_better = metric_direction(metric)
    table = board.table.set_index("config", drop=False)
    means = {c: (None if pd.isna(m) else float(m)) for c, m in table[metric].items()}
    ties = tie_keys(board.table)
    order = rank_order(means, higher_is_better, dict(table["label"].items()), ties)
    return table.loc[order].reset_index(drop=True)


def metric_direction(metric: str) -> bool:
    """Whether higher is better on ``metric`` (the registry's word; descriptive metrics
    and unknown ones: higher)."""
    from evaluation.errors import EvalError
    from evaluation.metrics import get_metric

    try:
        return get_metric(metric).higher_is_better is not False
    except EvalError:
        return True


def _fmt(value: object, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, float | np.floating):
        return fixed(float(value), digits)
    return str(value)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


def _latency(value: object) -> str:
    """A latency cell: "not measured" where no latency was stored."""
    return NOT_MEASURED if _missing(value) else _fmt(value)


def table_rows(board: Leaderboard) -> list[dict]:
    """One dict per config for a Prefect table artifact (NaN becomes null there)."""
    frame = ranked_table(board)
    digits = {
        m: column_decimals(frame[f"{m}_ci_low"], frame[f"{m}_ci_high"]) for m in board.metrics
    }
    rows = []
    labels = board.labels
    for r in frame.to_dict("records"):
        row = {"config": r["config"], "label": labels[r["config"]]}
        for m in board.metrics:
            d = digits[m]
            row[m] = rounded(r[m], d)
            row[f"{m}_ci95"] = f"[{_fmt(r[f'{m}_ci_low'], d)}, {_fmt(r[f'{m}_ci_high'], d)}]"
        row.update(
            {
                f: rounded(r[f], _FACT_DECIMALS[f]) if f in _FACT_DECIMALS else _int(r[f])
                for f in RUN_FACTS + (PIPELINE_FACTS if board.shows_pipelines else ())
            }
        )
        row["simulated"] = board.simulated
        rows.append(row)
    return rows


def echo_flags(table: pd.DataFrame) -> tuple[str, ...]:
    """A note for each config at least ``ECHO_FLAG_SHARE`` of whose outputs echo the
    prompt (``echoes_prompt``): its reference-based scores count only what it added."""
    flagged = table[table["echoes_prompt"] >= ECHO_FLAG_SHARE]
    return tuple(
        f"ECHOES THE PROMPT: {r.config} {r.label} repeats its prompt in "
        f"{r.echoes_prompt:.0%} of outputs; scores count only the rest of each output"
        for r in flagged.itertuples()
    )


def render_markdown(board: Leaderboard) -> str:
    lines = [f"# {board.title}", ""]
    if board.simulated:
        lines += [f"> **{SIMULATED_BANNER}**", ""]
    head = [
        "#",
        "config",
        *[f"{m} (95% CI)" for m in board.metrics],
        "latency p50 s",
        "p95 s",
        "TTFT p50 s",
        "tok/s",
        "ok",
        "failed",
    ]
    if board.shows_pipelines:
        head += ["calls/case", "prompt cut"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    labels = board.labels
    for rank, r in enumerate(ranked_table(board).to_dict("records"), start=1):
        cells = [str(rank), f"{labels[r['config']]} `{r['config']}`"]  # by label first
        cells += [
            f"{_fmt(r[m])} [{_fmt(r[f'{m}_ci_low'])}, {_fmt(r[f'{m}_ci_high'])}]"
            for m in board.metrics
        ]
        cells += [
            _latency(r["latency_p50_s"]),
            _latency(r["latency_p95_s"]),
            _fmt(r["ttft_p50_s"]),
            _fmt(r["tokens_per_s"], 1),
            _fmt(_int(r["generations_ok"])),
            _fmt(_int(r["generations_failed"])),
        ]
        if board.shows_pipelines:
            cells += [_fmt(r["calls_per_case"], 1), _fmt(_int(r["context_truncated"]))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Sorted by the first metric. Intervals: 95%, clustered by case group where "
        "the suite has groups; corpus metrics by a seeded case bootstrap.",
    ]
    if board.shared:
        lines += ["", f"Every config: {board.shared}."]
    if board.shows_pipelines and board.pipelines is not None:
        order = list(ranked_table(board)["config"])
        lines += ["", *stage_lines(board.pipelines.stages, order, board.labels)]
    if board.notes:
        lines += ["", "Notes:", *[f"- {n}" for n in board.notes]]
    return "\n".join(lines)


def _int(value: object) -> object:
    return int(value) if isinstance(value, float) and not np.isnan(value) else value


#: The width the terminal leaderboard fits unless ``wide`` is asked for, where the
#: terminal's own width is not known (output to a file or a pipe).
TERMINAL_COLUMNS = 100


def render_text(board: Leaderboard, *, wide: bool = False, columns: int = 0) -> str:
    """A terminal version of the leaderboard: rank, short label, each metric rounded to
    what its interval supports, p95 latency and failures, within ``columns`` (default
    ``TERMINAL_COLUMNS``; metrics that do not fit are left out and named). ``wide``:
    every column, full labels and the config hashes."""
    columns = columns or TERMINAL_COLUMNS
    frame = ranked_table(board)
    if wide:
        out = pd.DataFrame({"#": _ranks(frame), "config": frame["config"], "label": frame["label"]})
    else:
        labels = board.labels
        out = pd.DataFrame(
            {"#": _ranks(frame), "config": [labels[c] for c in frame["config"]]},
            index=frame.index,
        )
    for m in board.metrics:
        digits = column_decimals(frame[f"{m}_ci_low"], frame[f"{m}_ci_high"])
        out[m] = [
            f"{_fmt(v, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
            for v, lo, hi in zip(frame[m], frame[f"{m}_ci_low"], frame[f"{m}_ci_high"], strict=True)
        ]
    if wide:
        out["p50 s"] = frame["latency_p50_s"].map(_latency)
    out["p95 s"] = frame["latency_p95_s"].map(_latency)
    if wide:
        out["ok"] = frame["generations_ok"].map(lambda v: _fmt(_int(v)))
    out["failed"] = frame["generations_failed"].map(lambda v: _fmt(_int(v)))
    if board.shows_pipelines:
        out["calls"] = frame["calls_per_case"].map(lambda v: _fmt(v, 1))
        out["cut"] = frame["context_truncated"].map(lambda v: _fmt(_int(v)))
    header = board.title
    if board.simulated:
        banner = f"*** {SIMULATED_BANNER} ***"
        header = f"{header}\n{banner if wide else textwrap.fill(banner, columns)}"
    left_out = []
    text = out.to_string(index=False)
    while not wide and _width(text) > columns and len(left_out) < len(board.metrics) - 1:
        left_out.insert(0, board.metrics[len(board.metrics) - 1 - len(left_out)])
        text = out.drop(columns=left_out).to_string(index=False)
    if left_out:
        text += f"\n(not shown: {', '.join(left_out)}; --wide shows every column)"
    if not wide and board.shared:
        text += f"\nEvery config: {board.shared}"
    flags = [n for n in board.notes if n.startswith("ECHOES THE PROMPT")]
    if flags:
        text += "\n" + "\n".join(flags)
    if board.shows_pipelines and board.pipelines is not None and len(board.pipelines.stages):
        full = dict(zip(board.table["config"], board.table["label"], strict=True))
        labels = full if wide else board.labels
        text += "\n\n" + stage_text(board.pipelines.stages, list(frame["config"]), labels)
    return f"{header}\n{text}"


def _ranks(frame: pd.DataFrame) -> list[str]:
    return [f"#{i}" for i in range(1, len(frame) + 1)]


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)
