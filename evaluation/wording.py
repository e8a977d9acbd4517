"""Words shared by every output: counts as people read them ("1 sample", "2 samples"),
what a latency that was not measured reads as, a mean of first cases, and the width text
is laid out to where the terminal's is not known."""

from __future__ import annotations

import math

TERMINAL_COLUMNS = 100
"""The width terminal text (a leaderboard, a comparison, the doctor's report) fits where
the terminal's own width is not known (output to a file or a pipe), unless asked wider."""

NOT_MEASURED = "not measured"
"""A latency no clock covered (stored as None; ``evaluation.run._pipelines``): shown as
these words, never as a number or a dash that could pass for one."""


NOT_A_SAMPLE = "not a random sample of it"
"""Said of a mean of a suite's first cases (a smoke or ``--limit`` run;
``evaluation.itembank``): what its interval is is said once under the block
(``FIRST_CASES_INTERVALS``); "not a sample: the interval is a random subset's" under
a heading "as for a random subset" read as a contradiction."""


ESTIMATED_FROM = "estimated from"
"""How a full-suite score an item bank estimated reads (``evaluation.itembank``): a
heading says "Full-suite" only over such rows, not over subset means alone."""


MEASURED_IN_FULL = "measured, nothing estimated"
"""How a config run on every case of its suite reads beside estimates from part of it
(``evaluation.itembank``): its score is the suite's, with no interval; it read "0.694
[0.694, 0.694] estimated from 36 of 36 cases (item bank v1)", certainty it does not
have of other cases."""
IN_FULL = (
    "a config run on every case has the suite's own score, measured: no interval, as "
    "nothing of the suite is left to estimate (the leaderboard's interval is for other "
    "cases like these)"
)
"""Said once under a block of estimates where some configs read ``MEASURED_IN_FULL``."""


NOT_SCORED = "not scored in that run"
"""Said of a series' night whose run scored no case on the metric (one rescored into
earlier runs only): a gap, not judged (`trends`, the monitor's series page)."""


PARTIAL_RUN = "partial run: not judged"
"""Said of a series' night with fewer than half the fullest night's cases (a smoke or
subset level): its mean is shown, never compared (`trends`, the monitor's pages)."""


ON_THE_DISPLAY = "on_the_display"
"""A log record's attribute (``extra={ON_THE_DISPLAY: True}``): what it says `run`'s
terminal display counts and its summary repeats (generations never answered), so the
terminal does not get it while the display is drawn (``flows.cli.logs``): a 241-column
warning wrapped over four rows above the live line."""


COST_WORDS = {"latency_p95_s": "p95 latency (s)", "energy_j": "energy per generation (J)"}
"""A Pareto front's cost (``statistics.pareto``'s columns) as every output names it: the
view said "exact_match against latency_p95_s" beside a leaderboard's "p95 latency s"."""


EFFECTS_FIGURES = "in rho, p and best value"
"""Where a parameter effects table has per-case figures (``per_case_words``' ``where``):
its rank correlations are over each config's mean of its per-case values."""


def corpus_figure(metric: str) -> str:
    """A corpus metric's figure (chrF, BLEU, macro-F1: ``is_corpus_metric``) named beside
    its value: "corpus chrf", the leaderboard's, not the mean of its per-case values. A
    verdict, the view's grid and the monitor's best config name it alike (the monitor's
    "chrf 96.412" beside the verdict's "corpus chrf 96.4"); a line saying what a board
    ranks by says ``corpus_value_words``."""
    return f"corpus {metric}"


def per_case_words(metric: str, where: str = "here") -> str:
    """Said under figures of a corpus metric (chrF, BLEU: ``is_corpus_metric``) that are
    each config's mean of its per-case values (the estimates of the cases run, the
    parameter effects' correlations), where the leaderboard's is the corpus value: the
    CLI, the report and the view say it alike (the report and the view listed per-case
    means in the leaderboard's order, out of order, unexplained)."""
    return (
        f"{metric} {where}: the mean of its per-case values, not the {corpus_figure(metric)} "
        "the leaderboard shows and ranks by"
    )


def per_case_mean(metric: str) -> str:
    """A corpus metric's other figure named where it stands beside the corpus value: "the
    mean of chrf's per-case values" (what the selector learns and predicts as quality, the
    block under the leaderboard shows and the paired tests use)."""
    return f"the mean of {metric}'s per-case values"


def corpus_value_words(metric: str) -> str:
    """A corpus metric's figure on the leaderboard (chrF, BLEU: ``is_corpus_metric``), as
    every output that ranks by it names it: "Ranked by chrf's corpus value", status's
    "best on chrf's corpus value" (it said "best on chrf" of the corpus figure)."""
    return f"{metric}'s corpus value"


LATENCY_MEANS = (
    "latency_s here: each config's mean seconds over its cases, which its paired tests "
    "compare, not the median (p50) the leaderboard shows"
)
"""Under the latency verdict where a leaderboard beside it shows latency's median and p95
(the view's summary): the verdict named a config's 0.108 s where its row said 0.102."""


def verdict_words(verdict: str, *, on_latency: bool) -> str:
    """A comparison's verdict shown beside a leaderboard of latency's median (the view's
    summary, the HTML report): on latency it says its figures are means (``LATENCY_MEANS``);
    the report said it nowhere where the view did."""
    return f"{verdict}; {LATENCY_MEANS}" if on_latency else verdict


def cost_words(cost: str) -> str:
    """``COST_WORDS``' name of ``cost``; another cost column as it is."""
    return COST_WORDS.get(cost, cost)


def part_of_suite(
    ran: str, total: int, how: str = "subset", *, per_config: bool = False, named: int = 0
) -> str:
    """A figure of part of a suite says which part, by ``how`` its cases were taken:
    "first 10 of 36 cases" (the suite's first: `--limit`, smoke), "4 of 12 cases: cut
    short" (a full-level run that did not finish), "20 of 36 cases: stopped early by the
    race" (a race that ended stopped the config), "12 named cases of 36" (every case a
    spec's ``cases:`` names), else "subset: 8 of 36 cases" (a subset level); ``ran``: "8",
    or "6 to 9" with ``per_config`` where configs differ. `subset` read as `--level
    subset` (a stratified 20%) where a `--limit` run said it. ``named``: the spec's
    ``cases:`` count, whose first ones (in suite order) a "first" run took: "first 3 of
    the spec's 28 named cases, in suite order" (it read "first 3 of 36 cases" of suite
    cases 9-11); a figure on fewer than all of them where the run generated them all
    (its scoring interrupted: a verdict's means rest on the scored ones) is "5 of the
    spec's 28 named cases" (it read "5 named cases of 36")."""
    per = " per config" if per_config else ""
    if how == "named" and named and ran != str(named):
        return f"{ran} of the spec's {named} named cases{per}"
    if how == "named":
        return f"{ran} named cases of {total}{per}"
    if how == "first" and named:
        return f"first {ran} of the spec's {named} named cases{per}, in suite order"
    cases = f"{ran} of {total} cases{per}"
    if how == "cut short":
        return f"{cases}: cut short"
    if how == "race":
        return f"{cases}: stopped early by the race"
    return f"first {cases}" if how == "first" else f"subset: {cases}"


def with_failures(
    ran_part: str,
    failed: str,
    total: int,
    scored: str,
    *,
    per_config: bool = False,
    unscored: int = 0,
) -> str:
    """A figure of a run some of whose cases failed (every generation a timeout): the cases
    run (``ran_part``, ``part_of_suite``'s words; "" for the whole suite), how many failed
    and what the figures rest on: "first 6 of 36 cases; 2 failed: figures over the 4
    scored" (it read "first 4 of 36 cases" with 6 run, and a quality mean over the 4 read
    as the run's), "2 of 36 cases failed: figures over the 34 scored". The run's heading
    (``Coverage.words``) and a verdict's figure (``verdict.decide``) say it alike; a
    verdict's figure also says the cases run but not scored on its metric (``unscored``:
    a score that could not be made): "2 failed, 1 not scored: figures over the 3 scored",
    "1 of 36 cases not scored: figures over the 35 scored" (it read "first 5 of 36" under
    a heading of 6, and "subset: 35 of 36 cases" of a run of the whole suite)."""
    per = " per config" if per_config else ""
    tail = f"figures over the {scored} scored"
    lost = [f"{failed} failed{per}"] if failed != "0" else []
    lost += [f"{unscored} not scored"] if unscored else []
    if ran_part:
        return f"{ran_part}; {', '.join(lost)}: {tail}"
    if failed == "0":
        return f"{unscored} of {total} cases not scored: {tail}"
    return f"{', '.join([f'{failed} of {total} cases failed{per}', *lost[1:]])}: {tail}"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one ("1 sample", "0 samples", "3 configs")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def not_judged_why(scored: bool, partial: bool, too_few: str = "") -> str:
    """Why a series' night is not judged, as every output says it: ``NOT_SCORED`` before
    ``PARTIAL_RUN`` (an unscored night is partial too), then ``too_few`` (a p95 of too
    few latencies: ``Night.too_few``); empty for none."""
    if not scored:
        return NOT_SCORED
    if partial:
        return PARTIAL_RUN
    return f"not judged: {too_few}" if too_few else ""


def failed_words(failed: int, never_answered: int) -> str:
    """ "5 failed", with how many of them no host answered ("5 failed (5 never answered:
    no host serving their model was up)"): the log said "could not run" of
    what the summary and the leaderboard count as failed, and a reader took it for the
    model's failure."""
    if not never_answered:
        return f"{failed} failed"
    return f"{failed} failed ({never_answered} never answered: no host serving their model was up)"


UNADJUSTED_ONLY = "†"
"""A pair's mark where its own interval excludes 0 but its adjusted p is not significant
(newcomer N15: "+27 [+15, +39]  0.064" read as a contradiction; the footnote explained):
the text table's rows and the markdown's "significant" column alike."""


def pair_mark(significant: bool | None, low: float | None, high: float | None) -> str:
    """``*`` for a pair significant after adjustment; ``UNADJUSTED_ONLY`` where only its
    own (unadjusted) interval ``low``–``high`` leaves out 0; else nothing."""
    if significant is True:
        return "*"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return UNADJUSTED_ONLY if low > 0 or high < 0 else ""


def unadjusted_only_words(adjustment: str) -> str:
    """The line under a pair table with an ``UNADJUSTED_ONLY`` row; ``adjustment``: its
    name ("Holm", "Benjamini–Hochberg")."""
    return (
        f"{UNADJUSTED_ONLY} interval unadjusted (it excludes 0); not significant after "
        f"{adjustment}'s adjustment"
    )
