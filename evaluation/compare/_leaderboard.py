"""The leaderboard: per config, each metric's mean with its 95% interval, latency p50/p95,
TTFT, tokens/s and failures. Built from stored rows; stored back as aggregate rows so
`evalflow show` needs no recomputation. Read and printed without pandas (`show` starts
in a third of a second less): the board's rows are plain values, ``table`` the same as a
DataFrame for the report, the view and the artifacts."""

from __future__ import annotations

import math
import re
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, RowMapping, text
from sqlmodel import Session

from evaluation.compare._stage_table import stage_lines, stage_text
from evaluation.compare._text_table import text_table
from evaluation.compare._wrapped_table import wrapped_table
from evaluation.errors import ScorerFailed
from evaluation.labels import (
    distinguishing_labels,
    num_predict_spelled,
    settings_footer,
    settings_line,
)
from evaluation.pipelines.summary import PipelineSummary
from evaluation.spec import DEFAULT_NUM_PREDICT
from evaluation.statistics.precision import column_decimals, fixed, rounded
from evaluation.statistics.ranking import ECHO_FLAG_SHARE, rank_order, tie_keys
from evaluation.storage.coverage import Coverage, experiment_coverage, scored_coverage
from evaluation.storage.dropped import NONE_DROPPED, Dropped, dropped_configs
from evaluation.storage.repository import get_experiment
from evaluation.storage.stages import stored_pipeline_summary
from evaluation.storage.unscored import unscored
from evaluation.suites import Suite
from evaluation.wording import (
    NOT_MEASURED,
    TERMINAL_COLUMNS,
    corpus_figure,
    corpus_value_words,
    counted,
)

if TYPE_CHECKING:  # the metrics import their backends; reading a leaderboard needs neither
    import pandas as pd

    from evaluation.metrics import Metric

EMPTY_FLAG = "EMPTY OUTPUTS"
UNSCORED_FLAG = "NOT SCORED"  # a metric's scorer raised on outputs, or could not score them
FLAGS = ("ECHOES THE PROMPT", EMPTY_FLAG, UNSCORED_FLAG)  # notes `show` prints under the table
SIMULATED_BANNER = (
    "SIMULATED: these results come from evalflow's simulated backend, not from a real "
    "model. They show the pipeline working, nothing about any real model."
)

# Operational facts stored beside the metrics, as aggregate rows with these names.
RUN_FACTS = (
    "generations_ok",
    "generations_failed",
    "truncated",
    "empty_outputs",
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


#: A row's columns that are text; the others are numbers (None where not known).
TEXT_COLUMNS = ("config", "label", "model")


@dataclass(frozen=True)
class Leaderboard:
    experiment: str
    metrics: tuple[str, ...]
    # one per config, in sweep order: config, label, model, each metric's mean and its
    # interval (METRIC_ci_low, METRIC_ci_high), RUN_FACTS and PIPELINE_FACTS
    rows: tuple[dict[str, Any], ...]
    simulated: bool
    notes: tuple[str, ...] = ()
    pipelines: PipelineSummary | None = None  # calls, stage times, cut prompts
    coverage: Coverage | None = None  # how much of the suite the means rest on
    groups_note: str = ""  # where the intervals rest on few case groups (groups_note())
    dropped: Dropped = NONE_DROPPED  # stored configs its last spec no longer has

    @property
    def dropped_note(self) -> str:
        """The line under the board where the experiment's last spec dropped configs it
        ran (storage.dropped): they are not in it, nor anything computed from it."""
        return self.dropped.note() if self.dropped else ""

    @cached_property
    def table(self) -> pd.DataFrame:
        """``rows`` as a DataFrame, one row per config in sweep order (NaN where a number
        is not known)."""
        import pandas as pd

        columns = list(dict.fromkeys(k for row in self.rows for k in row)) or [
            *TEXT_COLUMNS,
            *(f"{m}{end}" for m in self.metrics for end in ("", "_ci_low", "_ci_high")),
            *RUN_FACTS,
            *PIPELINE_FACTS,
        ]
        frame = pd.DataFrame(list(self.rows), columns=columns)
        return frame.astype({c: float for c in columns if c not in TEXT_COLUMNS})

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
        return _shown_labels(self.rows)

    @property
    def shared(self) -> str:
        """The settings every config shares (left out of ``labels``), num_predict by its
        name, and what "n=" in a label means (``settings_footer``)."""
        return settings_footer([r["label"] for r in self.rows], DEFAULT_NUM_PREDICT)

    @property
    def settings_line(self) -> str:
        """The line under the board: "Every config: " and ``shared``, or only what "n="
        is where the configs share no setting (``settings_line``)."""
        return settings_line([r["label"] for r in self.rows], DEFAULT_NUM_PREDICT)

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
        rows.append(_estimate_row(est.config, est.metric, est, bounds.get(est.metric)))
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


def _estimate_row(config: str, metric: str, est, bounds: tuple[float, float] | None = None) -> dict:
    """An aggregate row; its interval cut to the metric's scale ``bounds`` where the mean
    is on it (the t interval kept for values off the declared scale could pass it)."""
    if est.ci and bounds and est.mean is not None and bounds[0] <= est.mean <= bounds[1]:
        est = replace(est, ci=(max(est.ci[0], bounds[0]), min(est.ci[1], bounds[1])))
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
        "empty_outputs": (len(ok), float(_empty(ok).sum())),
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


def _empty(ok: pd.DataFrame) -> pd.Series:
    """Which outputs are empty or white space only: answers of nothing, which every metric
    scores as it scores "" (a model that returned "" for every case sat at the top of a
    leaderboard, fastest of all, unremarked). ``short_output`` where the frame has it
    (``generation_facts_frame``: no output read whole), else ``output``."""
    texts = (ok["short_output"] if "short_output" in ok else ok["output"]).astype(object)
    return texts.map(lambda text: isinstance(text, str) and not text.strip()).astype(bool)


def _quantile(values: pd.Series, q: float) -> float | None:
    return float(values.quantile(q)) if len(values) else None


_CONFIGS = text(
    "SELECT c.hash, c.label, c.model, c.num_predict FROM configs c JOIN experiment_configs ec "
    "ON ec.config_hash = c.hash WHERE ec.experiment_id = :e ORDER BY ec.position"
)
_AGGREGATES = text(
    "SELECT config_hash, metric, mean, ci_low, ci_high, method, note FROM aggregates "
    "WHERE experiment_id = :e"
)


def stored_board(
    session: Session, experiment_id: int
) -> tuple[Sequence[Row[Any]], list[RowMapping]]:
    """What an experiment's leaderboard is read from: its configs as its last spec has
    them, in sweep order (hash, label, model, num_predict), and their stored aggregate
    rows; none of the configs its spec dropped (``evaluation.storage.dropped``), which
    the board does not list. Two queries, nothing computed: `show` reads it, and so does
    recommend's line on where `show` ranks another config first, so that line never
    names a config `show` does not list."""
    key = {"e": experiment_id}
    connection = session.connection()
    configs = connection.execute(_CONFIGS, key).all()
    own = {config for config, *_ in configs}
    aggregates = [
        a for a in connection.execute(_AGGREGATES, key).mappings() if a["config_hash"] in own
    ]
    return configs, aggregates


def load_leaderboard(session: Session, experiment: str) -> Leaderboard:
    """The stored leaderboard of an experiment (as the last run or rescore left it)."""
    row = get_experiment(session, experiment)
    configs, aggregates = stored_board(session, row.id)
    stored = {(a["metric"], a["config_hash"]): a for a in aggregates}
    present = {a["metric"] for a in aggregates}
    metrics = tuple(m for m in row.metrics if m in present)
    pipelines = stored_pipeline_summary(session, row.id)
    rows = []
    for config, label, model, num_predict in configs:
        board_row: dict[str, Any] = {"config": config, "label": label, "model": model}
        for metric in metrics:
            found = stored.get((metric, config), {})
            board_row[metric] = _number(found.get("mean"))
            low, high = shown_interval(found, num_predict if metric == "output_length" else None)
            board_row[f"{metric}_ci_low"], board_row[f"{metric}_ci_high"] = low, high
        for fact in RUN_FACTS:
            board_row[fact] = _number(stored.get((fact, config), {}).get("mean"))
        facts = pipelines.by_config.get(config, {})
        board_row |= {fact: _number(facts.get(fact)) for fact in PIPELINE_FACTS}
        rows.append(board_row)
    notes = tuple(
        f"{a['metric']} / {a['config_hash']}: {a['note']}"
        for a in aggregates
        if isinstance(a["note"], str) and a["note"]
    )
    notes += echo_flags(rows) if "echoes_prompt" in metrics else ()
    notes += empty_flags(rows)
    notes += unscored_flags(session, row.id, row.name, row.metrics)
    notes += corpus_failed_flags([a for a in aggregates if a["metric"] in metrics])
    coverage = experiment_coverage(session, row)
    aggregated = [board_row["generations_ok"] for board_row in rows]
    if rows and None not in aggregated and coverage.generated > sum(aggregated):
        coverage = scored_coverage(session, row, coverage)  # stored since the scores
    shown = [a for a in aggregates if a["metric"] in metrics]
    return Leaderboard(
        row.name,
        metrics,
        tuple(rows),
        row.simulated,
        notes,
        pipelines,
        coverage,
        groups_note(shown, _shown_labels(rows)),
        dropped_configs(session, row.id),
    )


#: Fewer case groups than this leave a clustered interval wide whatever the cases: its t
#: has C − 1 df (12.7 at 2 groups, 4.3 at 3, 3.2 at 4, against 1.96 with many).
FEW_GROUPS = 5
#: Fewer case groups than this leave no interval worth printing: on 1 df (t = 12.7) a
#: newcomer's `show` read output_length "16 [0, 889]" with num_predict=32 and contains
#: "0.75 [0.01, 1.00]" (8 cases, 2 groups): noise, so the board shows none.
MIN_GROUPS = 3
_CLUSTERED = re.compile(r"clustered \((\d+) groups\)")
ONE_GROUP = "all cases share one group"


def groups_note(
    aggregates: Iterable[Mapping[str, Any]], labels: Mapping[str, str] | None = None
) -> str:
    """One line for the board where its intervals rest on few case groups (a newcomer's
    `--limit 5` took 4 cases of one passage and 1 of another: `0.80 [0.02, 1.00]`, and
    only the export's notes said why), or on one group, whose cases the intervals treat
    as independent; "" otherwise. Read from the stored aggregates' methods and notes
    (``mean_interval``'s). Where only some configs' rest on few groups (an interrupted
    run: one config's 16 cases from 4 groups, another's 33 from 9), it names them by
    ``labels`` (config hash -> shown label)."""
    aggregates = list(aggregates)
    clustered = [
        (int(found.group(1)), a.get("config_hash"))
        for a in aggregates
        if (found := _CLUSTERED.search(str(a.get("method") or "")))
    ]
    counts = sorted(count for count, _ in clustered)
    if counts and counts[0] < FEW_GROUPS:
        few = [c for c in counts if c < FEW_GROUPS]
        groups = f"{few[0]}" if few[0] == few[-1] else f"{few[0]} to {few[-1]}"
        df = f"{few[0] - 1}" if few[0] == few[-1] else f"{few[0] - 1} to {few[-1] - 1}"
        whose = _few_groups_configs(aggregates, clustered, labels or {})
        which, others = _few_groups_metrics(aggregates)
        if few[-1] < MIN_GROUPS:
            return (
                f"{which}{whose} are not shown: the cases run are from only {groups} case "
                f"groups (clustered by group: t on {df} df), too few for an interval to say "
                f"anything; cases from more groups give one.{others}"
            )
        return (
            f"{which}{whose} rest on only {groups} case groups (clustered by group: t on "
            f"{df} df), so they are wide however many cases ran; cases from more groups "
            f"narrow them.{others}"
        )
    if any(ONE_GROUP in str(a.get("note") or "") for a in aggregates):
        return (
            "Every case run is from one case group: the intervals treat its cases as "
            "independent, so they are narrower than cases of one group warrant."
        )
    return ""


def shown_interval(
    aggregate: Mapping[str, Any], most: int | None = None
) -> tuple[float | None, float | None]:
    """A stored aggregate's interval as the board shows it: none where it is clustered on
    fewer than ``MIN_GROUPS`` case groups (``groups_note`` says why); ``most``, the
    largest possible value where the config bounds it (output_length's words by its
    num_predict tokens), caps the upper end unless the mean itself is above it."""
    low, high = _number(aggregate.get("ci_low")), _number(aggregate.get("ci_high"))
    found = _CLUSTERED.search(str(aggregate.get("method") or ""))
    if found and int(found.group(1)) < MIN_GROUPS:
        return None, None
    mean = _number(aggregate.get("mean"))
    if most is not None and high is not None and mean is not None and mean <= most:
        high = min(high, float(most))
    return low, high


def _shown_labels(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Config hash -> its label as every output shows it (``Leaderboard.labels``)."""
    short = distinguishing_labels([r["label"] for r in rows])
    return {r["config"]: short[r["label"]] for r in rows}


def _few_groups_configs(
    aggregates: Sequence[Mapping[str, Any]],
    clustered: Sequence[tuple[int, Any]],
    labels: Mapping[str, str],
) -> str:
    """The words " of t=0.7 n=32" where some configs' intervals rest on few groups and others'
    not, named by ``labels``; "" where every config's do (or none is named)."""
    few = {config for count, config in clustered if count < FEW_GROUPS}
    every = {a.get("config_hash") for a in aggregates}
    if not few <= labels.keys() or few == every:
        return ""
    return " of " + ", ".join(labels[config] for config in labels if config in few)


def _few_groups_metrics(aggregates: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The note's subject, "Intervals" or "The contains, exact_match intervals", and its
    closing words on the metrics whose intervals are not clustered by group (a corpus
    metric's case bootstrap): `show nc-real` printed chrf's `34 [15, 56]` right above
    "Intervals are not shown"."""
    few = {
        a.get("metric")
        for a in aggregates
        if (found := _CLUSTERED.search(str(a.get("method") or "")))
        and int(found.group(1)) < FEW_GROUPS
    }
    rest = sorted(
        {str(a.get("metric")) for a in aggregates if a.get("metric") not in few}
        & {str(a.get("metric")) for a in aggregates if _number(a.get("ci_low")) is not None}
    )
    if not rest:
        return "Intervals", ""
    methods = {str(a.get("method") or "") for a in aggregates if a.get("metric") in rest}
    how = " (a bootstrap over the cases)" if all(m.startswith("bootstrap") for m in methods) else ""
    return (
        f"The {', '.join(sorted(str(m) for m in few))} intervals",
        f" {', '.join(rest)}'s are not clustered by case group{how}, so they are shown.",
    )


def _number(value: object) -> float | None:
    """A stored number as a float; None where there is none (NULL, NaN)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def ranked_rows(board: Leaderboard, higher_is_better: bool | None = None) -> list[dict]:
    """The rows best first on the first metric, in the comparison's order
    (``rank_order``: ties by ``tie_keys``, echo flag then median latency, then label).
    ``higher_is_better``: the metric's direction
    (default: the registry's, else higher)."""
    if not board.metrics:
        return list(board.rows)
    return rows_best_first(board.rows, board.metrics[0], higher_is_better)


def rows_best_first(
    rows: Sequence[dict[str, Any]], metric: str, higher_is_better: bool | None = None
) -> list[dict[str, Any]]:
    """Board-shaped rows (config, label, ``metric``, latency_p50_s, echoes_prompt where
    known) best first on ``metric``: the leaderboard's order, for whatever else names a
    best config (the monitor's recent runs)."""
    if higher_is_better is None:
        higher_is_better = metric_direction(metric)
    by_config = {r["config"]: r for r in rows}
    means = {c: _number(r.get(metric)) for c, r in by_config.items()}
    labels = {c: r["label"] for c, r in by_config.items()}
    order = rank_order(means, higher_is_better, labels, tie_keys(rows))
    return [by_config[c] for c in order]


def label_names(
    board: Leaderboard, order: Sequence[str] | None = None, *, wide: bool = False
) -> dict[str, str]:
    """Each config's full label -> as the leaderboard shows it (its short label; with
    ``wide`` its full one, num_predict spelled out, as ``render_text``), in ``order``
    (config hashes; default the leaderboard's ranking): what names the rows of a block
    under it (the estimates of the cases run: ``evaluation.itembank.named_estimates``)."""
    full = {r["config"]: r["label"] for r in board.rows}
    order = [r["config"] for r in ranked_rows(board)] if order is None else order
    shown = {c: num_predict_spelled(full[c]) for c in full} if wide else board.labels
    return {full[c]: shown[c] for c in order if c in full}


def ranked_table(board: Leaderboard, higher_is_better: bool | None = None) -> pd.DataFrame:
    """``ranked_rows`` as ``board.table``'s rows."""
    if not board.metrics:
        return board.table
    order = [r["config"] for r in ranked_rows(board, higher_is_better)]
    return board.table.set_index("config", drop=False).loc[order].reset_index(drop=True)


def is_corpus_metric(metric: str) -> bool:
    """Whether ``metric``'s figure on the board is a corpus value (chrF, BLEU, macro-F1)
    rather than the mean of its per-case scores. A built-in metric's is read from its
    table, without loading the metrics; so is no metric at all ("": a summary page with
    no full-suite estimates asks, and loading the registry imports numpy, ~0.1 s)."""
    from evaluation.errors import EvalError
    from evaluation.metrics._directions import CORPUS_LEVEL, HIGHER_IS_BETTER

    if not metric:
        return False
    if metric in HIGHER_IS_BETTER:
        return metric in CORPUS_LEVEL
    from evaluation.metrics import get_metric

    try:
        return get_metric(metric).corpus_level
    except EvalError:
        return False


def figure_name(metric: str) -> str:
    """``metric`` as named beside its figure on the board: "corpus chrf" for a corpus
    metric (``corpus_figure``), else the metric's name."""
    return corpus_figure(metric) if is_corpus_metric(metric) else metric


def ranking_words(board: Leaderboard) -> str:
    """How ``ranked_rows`` orders the board, in a line: "Ranked by exact_match (higher is
    better); ties by lower median latency (a config flagged for echoing the prompt
    last), then label." ("" without metrics)."""
    if not board.metrics:
        return ""
    metric = board.metrics[0]
    better = "higher" if metric_direction(metric) else "lower"
    what = (
        f"{corpus_value_words(metric)} ({better} is better; the verdicts' paired tests use its "
        "per-case values)"
        if is_corpus_metric(metric)
        else f"{metric} ({better} is better)"
    )
    return (
        f"Ranked by {what}; ties by lower median latency "
        "(a config flagged for echoing the prompt last), then label."
    )


def metric_direction(metric: str) -> bool:
    """Whether higher is better on ``metric`` (the registry's word; descriptive metrics
    and unknown ones: higher, said in a ReadNote for a user's scorer whose code does not
    import and whose declaration is not stored). A built-in metric's is read from its
    table, without loading the metrics (numpy, the backends: `show` ranks by it)."""
    from evaluation.errors import EvalError, ReadNote, ScorerNotHere
    from evaluation.metrics._directions import HIGHER_IS_BETTER

    if metric in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[metric]
    from evaluation.metrics import get_metric

    try:
        return get_metric(metric).higher_is_better is not False
    except ScorerNotHere as exc:
        note = f"{metric}: ranked as higher is better, its direction not known here ({exc})"
        warnings.warn(note, ReadNote, stacklevel=2)
        return True
    except EvalError:
        return True


def _fmt(value: object, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, float):  # numpy's float64 is one
        return fixed(float(value), digits)
    return str(value)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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


def echo_flags(rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """A note for each config (a leaderboard row) at least ``ECHO_FLAG_SHARE`` of whose
    outputs echo the prompt (``echoes_prompt``): its reference-based scores count only
    what it added. Its label as the table shows it (``_shown_labels``; the footer says
    what "n=" is): a spelling of its own here was one more to match by eye."""
    rows = list(rows)
    shown = _shown_labels(rows)
    return tuple(
        f"ECHOES THE PROMPT: {r['config']} {shown[r['config']]} repeats its prompt in "
        f"{r['echoes_prompt']:.0%} of outputs; scores count only the rest of each output"
        for r in rows
        if not _missing(r["echoes_prompt"]) and r["echoes_prompt"] >= ECHO_FLAG_SHARE
    )


def empty_flags(rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """A note for each config (a leaderboard row) with empty outputs (``empty_outputs``;
    none for an experiment aggregated before it was stored: `evalflow rescore` adds it),
    its label as ``echo_flags`` gives it."""
    rows = list(rows)
    shown = _shown_labels(rows)
    return tuple(
        f"{EMPTY_FLAG}: {r['config']} {shown[r['config']]} returned nothing in "
        f"{_int(r['empty_outputs'])} of {_int(r['generations_ok'])} outputs; each is scored "
        "as an empty answer"
        for r in rows
        if _has_empty(r)
    )


def unscored_flags(
    session: Session, experiment_id: int, experiment: str, metrics: Sequence[str]
) -> tuple[str, ...]:
    """A note for each metric whose scorer raised on some of the experiment's outputs or
    could not score them: their scores are missing (a column of "–" said nothing of why,
    newcomer F8)."""
    return tuple(
        f"{UNSCORED_FLAG}: {u.words()}: those scores are missing, the reason kept with each "
        f"output (evalflow view {experiment})"
        for u in unscored(session, experiment_id, metrics)
    )


def corpus_failed_flags(aggregates: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """A note for each metric whose corpus function (a user's scorer's ``corpus=``)
    raised or gave no number, on how many configs, with the reason the aggregate's note
    keeps (``evaluation/metrics/_user.py``): its headline is missing on those."""
    failed: dict[str, list[str]] = {}
    configs: dict[str, int] = {}
    for a in aggregates:
        metric, note = a["metric"], a["note"]
        configs[metric] = configs.get(metric, 0) + 1
        if isinstance(note, str) and note.startswith(f"{metric}'s corpus function "):
            failed.setdefault(metric, []).append(" ".join(note.split()))
    flags = []
    for metric, notes in failed.items():
        others = len(set(notes)) - 1
        more = f", and {others} other {'error' if others == 1 else 'errors'}" if others else ""
        example = notes[0] if len(notes[0]) <= 160 else notes[0][:159] + "…"
        flags.append(
            f"{UNSCORED_FLAG}: {example}{more}, on {len(notes)} of "
            f"{counted(configs[metric], 'config')}: those corpus values are missing"
        )
    return tuple(flags)


def _has_empty(row: Mapping[str, Any]) -> bool:
    return not _missing(row.get("empty_outputs")) and row["empty_outputs"] > 0


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
    shows_empty = any(_has_empty(r) for r in board.rows)
    if shows_empty:
        head += ["empty"]
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
        if shows_empty:
            cells.append(_fmt(_int(r["empty_outputs"])))
        if board.shows_pipelines:
            cells += [_fmt(r["calls_per_case"], 1), _fmt(_int(r["context_truncated"]))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"{ranking_words(board) or 'Sorted by the first metric.'} Intervals: 95%, "
        "clustered by case group where the suite has groups; corpus metrics by a seeded "
        "case bootstrap.",
    ]
    if board.groups_note:
        lines += ["", board.groups_note]
    if board.settings_line:
        lines += ["", f"{board.settings_line}."]
    if board.shows_pipelines and board.pipelines is not None:
        order = list(ranked_table(board)["config"])
        lines += ["", *stage_lines(board.pipelines.rows, order, board.labels)]
    if board.dropped:
        lines += ["", f"**{board.dropped_note}**"]
    if board.notes:
        lines += ["", "Notes:", *[f"- {n}" for n in board.notes]]
    return "\n".join(lines)


def _int(value: object) -> object:
    return int(value) if isinstance(value, float) and not math.isnan(value) else value


def render_text(board: Leaderboard, *, wide: bool = False, columns: int = 0) -> str:
    """A terminal version of the leaderboard: rank, short label, each metric rounded to
    what its interval supports, p95 latency and failures, within ``columns`` (default
    ``TERMINAL_COLUMNS``; metrics that do not fit are left out and named, then a label
    still too long wraps under itself, and the lines under the table wrap). ``wide``:
    every column, full labels and the config hashes."""
    columns = columns or TERMINAL_COLUMNS
    ranked = ranked_rows(board)
    out: dict[str, list[str]] = {"#": [f"#{i}" for i in range(1, len(ranked) + 1)]}
    if wide:
        out["config"] = [r["config"] for r in ranked]
        out["label"] = [num_predict_spelled(r["label"]) for r in ranked]
    else:
        labels = board.labels
        out["config"] = [labels[r["config"]] for r in ranked]
    for m in board.metrics:
        digits = column_decimals(
            [r[f"{m}_ci_low"] for r in ranked], [r[f"{m}_ci_high"] for r in ranked]
        )
        out[m] = [
            f"{_fmt(r[m], digits)} [{_fmt(r[f'{m}_ci_low'], digits)}, "
            f"{_fmt(r[f'{m}_ci_high'], digits)}]"
            for r in ranked
        ]
    if wide:
        out["p50 s"] = [_latency(r["latency_p50_s"]) for r in ranked]
    out["p95 s"] = [_latency(r["latency_p95_s"]) for r in ranked]
    if wide:
        out["ok"] = [_fmt(_int(r["generations_ok"])) for r in ranked]
    out["failed"] = [_fmt(_int(r["generations_failed"])) for r in ranked]
    if any(_has_empty(r) for r in ranked):
        out["empty"] = [_fmt(_int(r["empty_outputs"])) for r in ranked]
    if board.shows_pipelines:
        out["calls"] = [_fmt(r["calls_per_case"], 1) for r in ranked]
        out["cut"] = [_fmt(_int(r["context_truncated"])) for r in ranked]
    header = board.title
    if board.simulated:
        banner = f"*** {SIMULATED_BANNER} ***"
        header = f"{header}\n{banner if wide else textwrap.fill(banner, columns)}"
    left_out: list[str] = []
    shown = text_table(out)
    while not wide and _width(shown) > columns and len(left_out) < len(board.metrics) - 1:
        left_out.insert(0, board.metrics[len(board.metrics) - 1 - len(left_out)])
        shown = text_table({k: v for k, v in out.items() if k not in left_out})
    if not wide:
        shown = wrapped_table(
            {k: v for k, v in out.items() if k not in left_out}, ("config",), columns
        )
    if left_out:
        missing = f"(not shown: {', '.join(left_out)}; --wide shows every column)"
        shown += "\n" + _fill(missing, columns)
    if board.metrics:
        words = ranking_words(board)
        shown += "\n" + (words if wide else textwrap.fill(words, columns))
    if board.groups_note:
        shown += "\n" + (board.groups_note if wide else textwrap.fill(board.groups_note, columns))
    if not wide and board.settings_line:
        shown += "\n" + _fill(board.settings_line, columns)
    flags = [n for n in board.notes if n.startswith(FLAGS)]
    if flags:
        shown += "\n" + "\n".join(flag if wide else _fill(flag, columns) for flag in flags)
    if board.dropped:
        shown += "\n" + (board.dropped_note if wide else _fill(board.dropped_note, columns))
    if board.shows_pipelines and board.pipelines is not None and board.pipelines.rows:
        full = {r["config"]: r["label"] for r in board.rows}
        names = full if wide else board.labels
        order = [r["config"] for r in ranked]
        heading, table = stage_text(board.pipelines.rows, order, names).split("\n", 1)
        shown += f"\n\n{heading if wide else _fill(heading, columns)}\n{table}"
    return f"{header}\n{shown}"


def _fill(text: str, columns: int) -> str:
    """``text`` in lines of at most ``columns``, broken at spaces only (a label's
    template name is one word)."""
    return textwrap.fill(text, columns, break_on_hyphens=False)


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)
