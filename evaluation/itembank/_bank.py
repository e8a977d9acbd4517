"""Item banks in the results database: calibrated from every stored score of a suite,
read back, and used to estimate the full-suite score of configs that ran a subset."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlmodel import Session

from evaluation.compare._leaderboard import is_corpus_metric
from evaluation.errors import EvalError
from evaluation.itembank._left_out import LeftOut, left_out
from evaluation.itembank._stored_bank import (
    MIN_CONFIGS,
    PIPELINE_REASON,
    Bank,
    current_bank,
    model_family,
    why_not,
)
from evaluation.itembank.schema import BankAbility, BankCase, ItemBank
from evaluation.labels import NUM_PREDICT_KEY, distinguishing_labels, shows_num_predict
from evaluation.series.schema import SeriesRun
from evaluation.storage.coverage import named_cases, ran_first_cases, short_configs
from evaluation.storage.models import (
    Aggregate,
    CaseRow,
    ConfigPipeline,
    ConfigRow,
    Experiment,
    ExperimentConfig,
    Generation,
    Score,
    SuiteRow,
)
from evaluation.wording import (
    ESTIMATED_FROM,
    IN_FULL,
    MEASURED_IN_FULL,
    NOT_A_SAMPLE,
    per_case_words,
)

if TYPE_CHECKING:  # numpy, and the fit and the estimates (scipy): imported where they are
    # used, so that `show` and the view, which ask whether an experiment needs them, do not
    import numpy as np

    from evaluation.itembank._estimate import Estimate


class BankRefused(EvalError):
    """A bank was asked for that cannot be made or used (bad input: exit 2)."""


@dataclass(frozen=True)
class Scores:
    """A suite's stored scores on one metric: configs × cases, the mean over samples
    (``y``) and how many samples (``w``, 0 where the config did not run the case);
    ``older``: experiments left out because they ran other content of the suite;
    ``pipelines``: pipeline configs left out (their cases are not exchangeable);
    ``left``: runs left out as alarmed or not completed (``_left_out``)."""

    suite: str
    metric: str
    digest: str
    cases: list[str]
    configs: list[str]
    families: list[str]
    y: np.ndarray
    w: np.ndarray
    older: int = 0
    pipelines: int = 0
    path: str = ""
    left: LeftOut = field(default_factory=LeftOut)

    def content(self) -> str:
        """The content these scores are of, as a user can tell it apart: its digest and
        the file it was last run from."""
        return f"{self.digest[:8]}" + (f", {self.path}" if self.path else "")

    def notes(self) -> list[str]:
        """What was left out of these scores, one line each (`evalflow bank` prints them)."""
        out = []
        if self.older:
            out.append(
                f"suite {self.suite!r} is calibrated on its content as last run "
                f"({self.content()}): {self.older} experiment(s) that ran other content of "
                "it were left out (a run of the content to calibrate on makes it the last)"
            )
        if self.left:
            out.append(self.left.note())
        if self.pipelines:
            out.append(
                f"{self.pipelines} pipeline config(s) left out: a pipeline's cases are not "
                "exchangeable (their calls share documents and steps)"
            )
        unscored = int(((self.w > 0).sum(0) == 0).sum())
        if unscored:
            out.append(
                f"{unscored} of the {len(self.cases)} cases have no {self.metric!r} score "
                "from any config: left out of the bank"
            )
        return out


# Why a subset mean's interval is not the leaderboard's, under the estimates.
SUBSET_INTERVAL = (
    "a subset mean's interval is for the suite's own cases: clustered by case group as the "
    "leaderboard's, but never past what the cases run fix (the others all at the metric's lowest "
    "or all at its highest score), "
    "so it can be narrower than the leaderboard's"
)


def stored_scores(
    session: Session, suite: str, metric: str | None = None, *, all_runs: bool = False
) -> Scores:
    """Every stored score of ``suite`` on ``metric`` (default: the suite's first
    metric), from the experiments that ran the suite as it is now, but those left out
    as alarmed or not completed (``_left_out``; ``all_runs`` keeps them)."""
    import numpy as np

    row = session.get(SuiteRow, suite)
    if row is None:
        raise BankRefused(
            f"no suite named {suite!r} has been run: an item bank is calibrated from stored "
            f"results{_did_you_mean(session, suite)} (`evalflow experiments` lists what has run)"
        )
    metric = metric or (row.default_metrics[0] if row.default_metrics else "")
    digests = dict(session.exec(select(SeriesRun.experiment, SeriesRun.suite_digest)).all())
    ran = session.exec(
        select(Experiment.id, Experiment.name).where(Experiment.suite == suite)
    ).all()
    experiments = [
        (e_id, name)
        for e_id, name in ran
        if not digests.get(name) or digests[name].split("+")[0] == row.fingerprint
    ]
    older = len(ran) - len(experiments)
    left = LeftOut() if all_runs else left_out(session, [name for _, name in experiments])
    dropped = {*left.alarmed, *left.not_completed}
    experiments = [(e, name) for e, name in experiments if name not in dropped]
    piped = set(session.exec(select(ConfigPipeline.config_hash)).scalars().all())
    cases = sorted(
        session.exec(select(CaseRow.case_id).where(CaseRow.suite == suite)).scalars().all()
    )
    rows = session.exec(
        select(Generation.config_hash, Generation.case_uid, Score.value)
        .join(Score, Score.generation_id == Generation.id)
        .where(
            Generation.experiment_id.in_([e for e, _ in experiments]),
            Generation.status == "ok",
            Score.metric == metric,
            Score.value.is_not(None),
        )
    ).all()
    pipelines = {config for config, _, _ in rows if config in piped}
    if rows and len(pipelines) == len({config for config, _, _ in rows}):
        raise BankRefused(
            f"suite {suite!r} was run only by pipelines: {PIPELINE_REASON}, so an item "
            "bank cannot be calibrated on them (run single-call configs on it)"
        )
    rows = [r for r in rows if r[0] not in pipelines]
    if not rows:
        metrics = (
            session.exec(
                select(Score.metric)
                .join(Generation, Score.generation_id == Generation.id)
                .where(Generation.experiment_id.in_([e for e, _ in experiments]))
                .distinct()
            )
            .scalars()
            .all()
        )
        raise BankRefused(
            f"no stored {metric!r} scores for suite {suite!r}"
            + (
                f" as last run ({row.fingerprint[:8]}, {row.path}; {older} run(s) of other "
                "content left out)"
            )
            * bool(older)
            + (f"; scored metrics: {', '.join(sorted(metrics))}" if metrics else "")
        )
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    prefix = f"{suite}/"
    for config, uid, value in rows:
        if not 0.0 <= value <= 1.0:
            raise BankRefused(
                f"metric {metric!r} of suite {suite!r} scores {value:g}: an item bank needs "
                "scores in [0, 1] (choose another with --metric)"
            )
        sums[config, uid.removeprefix(prefix)].append(value)
    configs = sorted({c for c, _ in sums})
    at = {c: i for i, c in enumerate(cases)}
    y = np.zeros((len(configs), len(cases)))
    w = np.zeros_like(y)
    for (config, case), values in sums.items():
        if case in at:
            j = configs.index(config)
            y[j, at[case]] = float(np.mean(values))
            w[j, at[case]] = len(values)
    models = dict(session.exec(select(ConfigRow.hash, ConfigRow.model)).all())
    families = [model_family(models.get(c, c)) for c in configs]
    return Scores(
        suite,
        metric,
        row.fingerprint,
        cases,
        configs,
        families,
        y,
        w,
        older,
        len(pipelines),
        row.path,
        left,
    )


def _did_you_mean(session: Session, asked: str) -> str:
    """A suite file given where its name was asked: the name of the suite run from that
    path (or named as its file), as a hint; "" otherwise."""
    from pathlib import Path

    if "/" not in asked and "." not in asked:
        return ""
    path = Path(asked).expanduser()
    found = session.exec(
        select(SuiteRow.name).where(SuiteRow.path.in_([asked, str(path.resolve())]))
    ).scalar()
    stem = path.name.split(".")[0]
    found = found or (stem if session.get(SuiteRow, stem) is not None else None)
    return f"; a suite is named, not its file: did you mean {found!r}?" if found else ""


def calibrate_bank(
    session: Session, suite: str, metric: str | None = None, *, all_runs: bool = False
) -> Bank:
    """Calibrate a new version of ``suite``'s bank from every stored score (but the runs
    ``stored_scores`` leaves out) and store it; refused (nothing written) below
    ``MIN_CONFIGS`` configs that ran half the suite. Cases no config scored are left out
    (nothing is known of them)."""
    import numpy as np

    from evaluation.itembank._calibrate import CHECK_SHARE, calibrate

    scores = stored_scores(session, suite, metric, all_runs=all_runs)
    enough = (scores.w > 0).mean(1) >= 0.5
    if enough.sum() < MIN_CONFIGS:
        older = (
            f"; it is calibrated on the suite's content as last run ({scores.content()}) and "
            f"the {scores.older} experiment(s) that ran other content were left out (a run "
            "of the content to calibrate on makes it the last)"
            if scores.older
            else ""
        )
        raise BankRefused(
            f"suite {suite!r} has {int(enough.sum())} configs with at least half its "
            f"{len(scores.cases)} cases scored on {scores.metric!r}{older}; an item bank "
            f"needs at least {MIN_CONFIGS} (run more configs on the full suite first)"
        )
    scored = (scores.w > 0).any(0)
    scores = replace(
        scores,
        cases=[c for c, ok in zip(scores.cases, scored, strict=True) if ok],
        y=scores.y[:, scored],
        w=scores.w[:, scored],
    )
    done = calibrate(scores.y, scores.w, share=CHECK_SHARE)
    fit = done.fit
    version = (
        session.exec(
            select(func.max(ItemBank.version)).where(
                ItemBank.suite == suite, ItemBank.metric == scores.metric
            )
        ).scalar()
        or 0
    ) + 1
    row = ItemBank(
        suite=suite,
        metric=scores.metric,
        version=version,
        suite_digest=scores.digest,
        configs=scores.configs,
        families=sorted({f for f, ok in zip(scores.families, enough, strict=True) if ok}),
        cases=len(scores.cases),
        scores=int((scores.w > 0).sum()),
        heldout_logloss=done.heldout_logloss,
        baseline_logloss=done.baseline_logloss,
        check_share=CHECK_SHARE,
        check_configs=done.cv_configs,
        check_mae=None if np.isnan(done.cv_mae) else done.cv_mae,
        check_coverage=None if np.isnan(done.cv_coverage) else done.cv_coverage,
        interval_scale=done.interval_scale,
        ability_mean=float(np.mean(fit.ability)),
        ability_sd=float(np.std(fit.ability)) or 1.0,
    )
    session.add(row)
    session.flush()
    session.add_all(
        BankCase(
            bank_id=row.id,
            case_id=case,
            position=i,
            difficulty=float(fit.difficulty[i]),
            discrimination=float(fit.discrimination[i]),
            var_log_a=float(fit.cov[i, 0, 0]),
            var_b=float(fit.cov[i, 1, 1]),
            cov_log_a_b=float(fit.cov[i, 0, 1]),
        )
        for i, case in enumerate(scores.cases)
    )
    session.add_all(
        BankAbility(
            bank_id=row.id,
            config_hash=c,
            ability=float(fit.ability[j]),
            se=float(fit.ability_se[j]),
        )
        for j, c in enumerate(scores.configs)
    )
    session.flush()
    return Bank(row, fit, list(scores.cases))


@dataclass(frozen=True)
class ConfigEstimate:
    """A config of an experiment and its full-suite score on the bank's metric;
    ``placed``: where that puts it among the configs the bank was calibrated on (their
    measured full-suite scores), "" where no bank served."""

    label: str
    estimate: Estimate
    placed: str = ""


def _leaderboard(session: Session, bank: Bank) -> list[tuple[float, str, str]]:
    """The measured full-suite scores of the configs ``bank`` was calibrated on that ran
    every case it knows, best first, with their labels and hashes."""
    scores = stored_scores(session, bank.row.suite, bank.row.metric)
    known = [scores.cases.index(c) for c in bank.cases if c in scores.cases]
    labels = dict(session.exec(select(ConfigRow.hash, ConfigRow.label)).all())
    out = []
    for j, config in enumerate(scores.configs):
        if config in bank.row.configs and (scores.w[j, known] > 0).all():
            label = labels.get(config) or config[:8]
            out.append((float(scores.y[j, known].mean()), label, config))
    return sorted(out, reverse=True)


def placement(
    estimate: Estimate,
    board: list[tuple[float, str]],
    version: int,
    measured: float | None = None,
) -> str:
    """Where a full-suite estimate puts a config among ``board`` (measured scores, best
    first): the ranks its interval allows, and the configs just outside them;
    ``measured``: the config's own full-suite score where it is one of the bank's (it
    is left out of ``board``, and the line says so)."""
    if not board:
        return ""
    best = sum(score > estimate.high for score, _ in board) + 1
    worst = sum(score > estimate.low for score, _ in board) + 1
    ranks = f"rank {best}" if best == worst else f"rank {best}–{worst}"
    around = []
    if best > 1:
        score, label = board[best - 2]
        around.append(f"below {label} {score:.3f}")
    if worst <= len(board):
        score, label = board[worst - 1]
        around.append(f"above {label} {score:.3f}")
    beside = f" ({', '.join(around)})" if around else ""
    other = "" if measured is None else " other"
    own = "" if measured is None else f"; its own score on every case, measured: {measured:.3f}"
    return (
        f"{ranks} of {len(board) + 1} among the {len(board)}{other} configs item bank "
        f"v{version} was calibrated on{beside}{own}"
    )


def experiment_estimates(
    session: Session, experiment_id: int, seed: int = 0
) -> tuple[str, list[ConfigEstimate]]:
    """For an experiment whose configs ran only part of its suite: the metric and each
    config's full-suite estimate (the bank's where it can, else the subset's plain mean
    with the reason). Empty when every config ran every case.

    The metric is the experiment's leaderboard metric (its first with scores), whatever
    bank was fitted last, so `show`, `compare`, the report and the view agree; the bank
    is the newest on that metric, used only when it was calibrated on the suite content
    this experiment ran (its series digest; else the suite as it is now)."""
    experiment = session.get(Experiment, experiment_id)
    suite = session.get(SuiteRow, experiment.suite) if experiment else None
    if experiment is None or suite is None:
        return "", []
    total = session.exec(
        select(func.count()).select_from(CaseRow).where(CaseRow.suite == suite.name)
    ).scalar()
    ran = short_configs(session, experiment_id, total)  # most experiments ran every case
    if not ran:
        return "", []
    scored = set(
        session.exec(
            select(Score.metric)
            .join(Generation, Score.generation_id == Generation.id)
            .where(Generation.experiment_id == experiment_id, Score.value.is_not(None))
            .distinct()
        )
        .scalars()
        .all()
    )
    metric = next((m for m in experiment.metrics or () if m in scored), "")
    metric = metric or (experiment.metrics or [""])[0]
    bank = current_bank(session, suite.name, metric)
    ran_digest = session.exec(
        select(SeriesRun.suite_digest).where(SeriesRun.experiment == experiment.name)
    ).scalar()
    digest = ran_digest.split("+")[0] if ran_digest else suite.fingerprint
    first_cases = ran_first_cases(session, experiment.name)
    piped = set(
        session.exec(
            select(ConfigPipeline.config_hash).where(ConfigPipeline.config_hash.in_(list(ran)))
        )
        .scalars()
        .all()
    )
    rows = session.exec(
        select(Generation.config_hash, Generation.case_uid, Score.value)
        .join(Score, Score.generation_id == Generation.id)
        .where(
            Generation.experiment_id == experiment_id,
            Generation.status == "ok",
            Score.metric == metric,
            Score.value.is_not(None),
        )
    ).all()
    by_config: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for config, uid, value in rows:
        by_config[config][uid.removeprefix(f"{suite.name}/")].append(float(value))
    if not by_config or all(len(c) >= total for c in by_config.values()):
        return metric, []
    order = session.exec(
        select(ExperimentConfig.config_hash, ConfigRow.label, ConfigRow.model)
        .join(ConfigRow, ConfigRow.hash == ExperimentConfig.config_hash)
        .where(ExperimentConfig.experiment_id == experiment_id)
        .order_by(ExperimentConfig.position)
    ).all()
    order = _leaderboard_order(session, experiment_id, metric, order)
    import numpy as np

    case_groups = dict(
        session.exec(
            select(CaseRow.case_id, CaseRow.group).where(CaseRow.suite == suite.name)
        ).all()
    )
    out = []
    board: list[tuple[float, str, str]] | None = None
    for config, label, model in order:
        cases = by_config.get(config)
        if not cases:
            continue
        means = {case: float(np.mean(v)) for case, v in cases.items()}
        if config in piped:
            reason = PIPELINE_REASON
        elif bank is None:
            reason = f"no item bank on {metric!r} for suite {suite.name!r}"
        else:
            reason = why_not(bank, digest, [model_family(model)])
        if len(means) >= total:  # its suite's score, measured: no estimate of it
            from evaluation.itembank._estimate import subset_mean

            out.append(ConfigEstimate(label or model, subset_mean(list(means.values()), total)))
            continue
        if reason or any(not 0 <= v <= 1 for v in means.values()):
            from evaluation.itembank._estimate import subset_mean
            from evaluation.metrics import metric_scale

            groups = [case_groups.get(case) for case in means]
            why = reason or "scores outside [0, 1]"
            est = subset_mean(list(means.values()), total, why, groups, metric_scale(metric))
            first = first_cases and est.method == "subset mean"
            est = replace(est, first_cases=first, of_named=named_cases(experiment) if first else 0)
            out.append(ConfigEstimate(label or model, est))
            continue
        est = bank.estimate(means, seed=seed)
        board = _leaderboard(session, bank) if board is None else board
        others = [(score, name) for score, name, other in board if other != config]
        itself = next((score for score, _, other in board if other == config), None)
        placed = placement(est, others, bank.row.version, itself)
        out.append(ConfigEstimate(label or model, est, placed))
    return metric, out


def _leaderboard_order(
    session: Session, experiment_id: int, metric: str, configs: Sequence[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """``configs`` (hash, label, model) in the leaderboard's order on ``metric``: its
    stored figures, ties as it breaks them (``rows_best_first``), so the estimates' rows
    come in the same order in every output."""
    from evaluation.compare._leaderboard import rows_best_first

    wanted = (metric, "latency_p50_s", "echoes_prompt")
    stored = session.exec(
        select(Aggregate.config_hash, Aggregate.metric, Aggregate.mean).where(
            Aggregate.experiment_id == experiment_id, Aggregate.metric.in_(wanted)
        )
    ).all()
    rows = {h: {"config": h, "label": label or model} for h, label, model in configs}
    for config, name, mean in stored:
        if config in rows:
            rows[config][name] = mean
    by_hash = {c[0]: c for c in configs}
    return [by_hash[r["config"]] for r in rows_best_first(list(rows.values()), metric)]


def estimates_text(
    metric: str,
    estimates: list[ConfigEstimate],
    width: int = 100,
    names: Mapping[str, str] | None = None,
) -> str:
    """The estimates as `show` and `compare` print them, ``width`` columns wide (``names``:
    as ``shown_estimates_text`` takes them)."""
    rows = [(e.label, e.estimate.text(), e.placed) for e in estimates]
    notes = sorted({e.estimate.note for e in estimates if e.estimate.note})
    return shown_estimates_text(metric, rows, notes, width, names)


#: Said once under a block of first-cases means: why their intervals are not the
#: leaderboard's, and which of the two the cases run support.
FIRST_CASES_INTERVALS = (
    "each interval: where the mean over all the suite's cases would lie were the cases run "
    "a random sample of it (finite-population, never past what they fix), a guide only; "
    "the leaderboard's, wider, is for new cases like those run, the one they support"
)


def estimates_heading(metric: str, rows: Sequence[tuple[str, str, str]]) -> str:
    """What a block of estimates (label, estimate, placement) is, as `show` and the view
    title it: "Full-suite" only over item-bank estimates; the suite's first cases (a
    `--limit` or smoke run) and subset means are the means of the cases run (the view
    said "Full-suite estimates" over rows reading "no full-suite interval")."""
    if all(NOT_A_SAMPLE in shown for _, shown, _ in rows):  # no estimate of the full suite
        return f"{metric} on the cases run (95% intervals for the mean of the whole suite)"
    if not any(ESTIMATED_FROM in shown for _, shown, _ in rows):  # subset means
        return f"{metric} on each config's cases run (95% intervals; no item bank estimate)"
    return f"Full-suite {metric} (95% intervals)"


def shown_estimates_text(
    metric: str,
    rows: Sequence[tuple[str, str, str]],
    notes: Sequence[str],
    width: int = 100,
    names: Mapping[str, str] | None = None,
) -> str:
    """``estimates_text`` from what it shows of each estimate (label, estimate with its
    interval, placement) and the sorted notes: the view's stored page holds them. Each
    line fits ``width`` (wrapped at spaces, further lines indented); what every row
    says after its interval alike (``mean of the suite's first 10 of 36 cases, not a
    sample: …``) is said once under them, not on each row. ``names``: a config's label
    -> the label shown, in the order shown (under a leaderboard: its rank and its short
    labels, the settings all share said once above; full labels made every row wrap
    at 80 columns, in spec order); a row it does not name keeps its label, after them.
    Without ``names`` (`compare`), the short labels every other output shows
    (``distinguishing_labels``), and what their "n=" is said under them."""
    if not rows:
        return ""
    short = distinguishing_labels([label for label, _, _ in rows])
    keyed = not names and any(shows_num_predict(x) for x in short.values())
    rows = named_estimates(rows, names or short)
    labels = [label for label, _, _ in rows]
    room = max(map(len, labels))
    heading = estimates_heading(metric, rows) + ":"
    first_cases = all(NOT_A_SAMPLE in shown for _, shown, _ in rows)
    numbers, said = zip(*(_interval_and_rest(shown) for _, shown, _ in rows), strict=True)
    once = len(rows) > 1 and len(set(said)) == 1 and said[0]
    lines = textwrap.wrap(heading, width, subsequent_indent="  ")
    for label, number, rest, (_, _, placed) in zip(labels, numbers, said, rows, strict=True):
        shown = number if once else f"{number} {rest}".rstrip()
        lines += _wrapped(f"{label:<{room}}  {shown}", width)
        if placed:
            lines += _wrapped(f"{'':<{room}}  {placed}", width)
    if once:
        lines += _wrapped(f"each: {said[0]}", width)
    lines += [
        line
        for note in notes
        for line in _wrapped(f"not calibrated: {note}; the subset's plain mean instead", width)
    ]
    if keyed:
        lines += _wrapped(f"in the labels, {NUM_PREDICT_KEY}", width)
    if is_corpus_metric(metric):
        lines += _wrapped(per_case_words(metric), width)
    if first_cases:
        lines += _wrapped(FIRST_CASES_INTERVALS, width)
    elif notes:
        lines += _wrapped(SUBSET_INTERVAL, width)
    if any(shown.endswith(MEASURED_IN_FULL) for _, shown, _ in rows):
        lines += _wrapped(IN_FULL, width)
    return "\n".join(lines)


def named_estimates(
    rows: Sequence[tuple[str, str, str]], names: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """``rows`` (a config's full label, estimate, placement) named and ordered as
    ``names`` says (full label -> the label shown, in the order shown: the leaderboard's
    above the block, ``evaluation.compare._leaderboard.label_names``); a row it does not name keeps
    its label, after them. `show`, the view and the report name a config alike (the
    view and the report had the full label, 'n=24' under a table saying 'num_predict=24')."""
    order = {label: i for i, label in enumerate(names)}
    ranked = sorted(rows, key=lambda row: order.get(row[0], len(order)))
    return [(names.get(label, label), shown, placed) for label, shown, placed in ranked]


def _interval_and_rest(shown: str) -> tuple[str, str]:
    """``0.700 [0.385, 0.950] mean of …`` as its number with interval and the rest."""
    number, bracket, rest = shown.partition("] ")
    return (number + "]", rest) if bracket else (shown, "")


def _wrapped(line: str, width: int) -> list[str]:
    """``line``, indented by two, wrapped at spaces to ``width``, further lines by four."""
    return textwrap.wrap(
        line, max(40, width), initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
    ) or [""]


def cases_for_width(bank: Bank, width: float, seed: int = 0) -> tuple[int, float]:
    """The fewest cases whose 95% interval is at most ``width`` wide for a typical
    config, and that typical width: configs at the bank's abilities' quartiles answer
    the chosen cases as the model says, and are estimated back. A grid of sizes first,
    then halving between the last size too few and the first enough (so `plan`'s
    ``--cases`` is not a grid step too many)."""
    import numpy as np

    n = len(bank.cases)
    rng = np.random.default_rng(seed)
    sizes = sorted({max(2, min(n, int(np.ceil(s * n)))) for s in np.geomspace(0.02, 1, 12)})
    below, typical = 1, 1.0
    for k in sizes:
        typical = _typical_width(bank, k, rng, seed)
        if typical <= width:
            break
        below = k
    else:
        return n, typical
    while k - below > 1:
        mid = (below + k) // 2
        found = _typical_width(bank, mid, rng, seed)
        if found <= width:
            k, typical = mid, found
        else:
            below = mid
    return k, typical


def _typical_width(bank: Bank, k: int, rng: np.random.Generator, seed: int) -> float:
    """The median 95% interval width from ``k`` random cases (as the level's) for
    configs at the bank's abilities' quartiles."""
    import numpy as np

    from evaluation.itembank._estimate import calibrated_estimate
    from evaluation.itembank._fit import probabilities

    n = len(bank.cases)
    widths = []
    for theta in np.quantile(bank.fit.ability, [0.25, 0.5, 0.75]):
        chosen = sorted(int(i) for i in rng.choice(n, k, replace=False))
        p = probabilities(bank.fit, np.array([theta]))[0, chosen]
        observed = dict(zip(chosen, (rng.random(k) < p).astype(float), strict=True))
        got = calibrated_estimate(
            bank.fit,
            observed,
            ability_mean=bank.row.ability_mean,
            ability_sd=bank.row.ability_sd,
            interval_scale=bank.row.interval_scale,
            seed=seed,
        )
        widths.append(got.high - got.low)
    return float(np.median(widths))
