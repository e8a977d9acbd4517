"""What ``recommend`` answers: a config with its estimates, evidence, alternatives and an
explanation. Quality is on the metric's 0–1 scale in every field and argument, and in
text too (:mod:`selection.quality_text`). An option's ``quality`` and latencies are the
estimates the choice was made on: for a measured config, its measurements combined with
the model's prediction (:mod:`selection.shrinkage`); ``predicted_quality`` /
``predicted_latency_p95_s`` keep the model's own prediction (for a measured config, the
one made without its own rows) and ``evidence`` the measurements, and ``basis`` says
which dominates. Latency limits apply to p95."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from evaluation.labels import NUM_PREDICT_KEY, shows_num_predict
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.spec._params import PARAMETERS
from evaluation.statistics.precision import significant
from selection.quality_text import quality, quality_interval

Status = Literal["ok", "infeasible", "no_data", "unavailable"]


@dataclass(frozen=True)
class Estimate:
    """A prediction and its interval (90% unless the selector says otherwise)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Evidence:
    """What was measured for this exact config on this task type."""

    n_generations: int = 0
    n_cases: int = 0  # distinct cases: reruns and samples of a case count once
    n_failed: int = 0
    n_suites: int = 0
    quality_mean: float | None = None
    quality_se: float | None = None  # over cases
    quality_ci_low: float | None = None  # 95% interval of the mean over cases, in [0, 1]
    quality_ci_high: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    simulated: bool = False  # some of it came from the simulated backend

    @property
    def measured(self) -> bool:
        return self.n_generations > 0


@dataclass(frozen=True)
class Option:
    """A candidate configuration with the selector's predictions for the task."""

    config_hash: str
    model: str
    label: str
    params: dict[str, float | int | str | bool | None]
    template: str
    template_text: str
    quality: Estimate
    latency_p50_s: Estimate | None = None
    latency_p95_s: Estimate | None = None
    tokens_per_s: Estimate | None = None
    energy_j: Estimate | None = None
    evidence: Evidence = field(default_factory=Evidence)
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    violations: tuple[str, ...] = ()
    basis: Literal["measured", "predicted", "measured and predicted"] = "predicted"
    measurement_weight: float = 0.0  # share of the quality estimate from the measurement
    predicted_quality: Estimate | None = None
    predicted_latency_p95_s: Estimate | None = None
    measured_quality_pooled: float | None = None
    """The measured quality as the estimate combines it: read by the multilevel model of
    all the task type's measured configs (:mod:`selection.multilevel`), not the raw mean."""
    measured_quality_se: float | None = None
    """The standard error of ``measured_quality_pooled``, which set the measurement's
    weight against the prediction (never 0: :func:`selection.own_means.moderated_se`)."""
    measured_quality_own: bool = False
    """Whether ``measured_quality_pooled`` is the config's own cases' mean: the multilevel
    model read it far less surely than they do
    (:func:`selection.shrinkage.quality_measurement`)."""
    measured_latency_p95_pooled_s: float | None = None
    """The measured p95 as the estimate combines it: corrected for the small-sample bias
    of a Harrell–Davis p95 and pooled over configs that differ only in sampling settings
    (:func:`selection.shrinkage.pooled_latency`), not the raw figure."""
    latency_p95_measurement_weight: float = 0.0
    """The measurement's share of the log p95 estimate: estimate = measurement^w ·
    prediction^(1 − w)."""
    latency_pooled_with: tuple[str, ...] = ()
    """The configs (labels) its measured latency was pooled with: they differ from it
    only in sampling settings (none: its own calls alone; never when ranking by speed)."""
    latency_p95_checked_s: float | None = None
    """The p95 a latency limit holds it to: ``latency_p95_s`` raised by its margin, or its
    median times its model's measured p95 / median where that is larger
    (``latency_p95_checked_by`` says which); above the p95 estimate shown."""
    latency_p95_checked_by: str = ""

    def config(self) -> Config:
        """The configuration, ready for a sweep or a backend request."""
        values = {p.name: p.cast(self.params.get(p.name)) for p in PARAMETERS}
        defaults = {p.name: p.default for p in PARAMETERS if values[p.name] is None}
        return Config(
            self.model,
            GenerationParams(**(values | defaults)),
            PromptTemplate(self.template, self.template_text or "{input}"),
        )

    def summary(self) -> str:
        """ "label: quality 0.812 [0.780, 0.841] (estimate, …), p50 0.31 s, p95 0.52 s" in one
        line; a latency pooled over configs differing only in sampling settings says so."""
        parts = [
            f"{self.label}: quality {_shown_quality(self.quality)} ({BASIS_WORDS[self.basis]})"
        ]
        if self.latency_p50_s is not None:  # what a ranking for speed compares
            parts.append(f"p50 {_seconds(self.latency_p50_s.value)}")
        if self.latency_p95_s is not None:
            twins = len(self.latency_pooled_with)
            pooled = f" (latency pooled with {twins} sampling twin{'s' * (twins > 1)})"
            parts.append(f"p95 {_seconds(self.latency_p95_s.value)}" + pooled * bool(twins))
        if self.energy_j is not None:
            parts.append(f"{self.energy_j.value:.0f} J")
        return ", ".join(parts)


@dataclass(frozen=True)
class Driver:
    """How much one setting of the chosen config moves the predicted ``target``
    (quality, or median latency when speed is preferred) on the asked task type against
    the most common value among the configs measured on that task type (``baseline``)."""

    feature: str
    value: str
    baseline: str
    effect: float  # in the target's unit: quality [0, 1] or seconds
    target: str = "quality"
    task_type: str = ""
    seen: bool = True  # some config measured on the task type has ``value``


@dataclass(frozen=True)
class ToMeasure:
    """A candidate a `next:` line names: measuring it settles whether the pick stands.
    ``suites``: the task type's suites to measure it on (those it was not run on; empty:
    any of them)."""

    option: Option
    suites: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    """The answer to "which config for this task, under these limits?".

    ``status``: "ok" (``choice`` is set), "infeasible" (nothing is predicted to meet the
    limits; ``closest`` lists the nearest misses), "no_data" (nothing to learn from;
    ``suggestions`` says what to run) or "unavailable" (the selector could not be read).
    """

    status: Status
    task_type: str
    message: str
    choice: Option | None = None
    alternatives: tuple[Option, ...] = ()
    closest: tuple[Option, ...] = ()
    drivers: tuple[Driver, ...] = ()
    excluded_best: Option | None = None
    # the next candidates estimated better, refused: the near misses first (those each
    # limit's measurement or estimate meets, refused by the margin), then by quality
    refused_better: tuple[Option, ...] = ()
    refused_more: int = 0  # further candidates estimated better and refused, not named
    overruled: Option | None = None  # the model's pick, when the evidence overruled it
    suggestions: tuple[str, ...] = ()
    measure_next: tuple[ToMeasure, ...] = ()  # the candidates the `next:` lines name
    notes: tuple[str, ...] = ()
    speed_tie: str | None = None  # why a pick for speed is not the fastest: a tie on quality
    request: dict[str, Any] = field(default_factory=dict)
    input_chars: float | None = None
    version_id: int | None = None
    id: int | None = None
    # metric -> configs the answering version read quality from it on (most used first)
    quality_metrics: dict[str, int] = field(default_factory=dict)
    # the first note where results are stored that the answering version did not learn
    # from (configs it never saw, or more generations): its next: lines may be stale
    newer_results: str = ""
    # why the answer was not logged (``id`` is None): the database took no write
    unlogged: str = ""
    # where candidates that may beat the pick were run on every case the selector knows
    # (the note that the task type needs more cases): that in one line, which -q keeps
    unsettled: str = ""
    # where nothing is feasible and a quality floor refused a config its measured mean
    # meets (selection._quality_floor): the note saying why, which the first line points
    # to and -q keeps
    quality_floor: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def config(self) -> Config | None:
        return self.choice.config() if self.choice else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""
        return _clean(asdict(self))

    def explain(self) -> str:
        """A few lines for people: the choice, its numbers and evidence, why, and the
        alternatives (or why nothing fits and what to do)."""
        lines = [self._headline()]
        if self.choice is not None:
            lines += _describe_choice(self.choice)
            lines += _describe_drivers(self.drivers, self.task_type, self.speed_tie)
            if self.overruled is not None:
                lines.append(f"  the model preferred: {self.overruled.summary()}")
            if self.excluded_best is not None:
                lines.append(
                    f"  best without the limits: {self.excluded_best.summary()} "
                    f"({'; '.join(self.excluded_best.violations)})"
                )
            if self.refused_better:
                lines.append("  also estimated better, refused by the limits:")
                lines += [
                    f"    {o.summary()} ({'; '.join(o.violations)})" for o in self.refused_better
                ]
                if self.refused_more:
                    lines.append(f"    and {self.refused_more} more")
        if self.alternatives:
            lines.append("  other options on the quality–latency front:")
            lines += [
                f"    {option.summary()}{_held_by_tail(option)}" for option in self.alternatives
            ]
        if self.closest:
            lines.append("  closest options:")
            lines += [f"    {o.summary()} ({'; '.join(o.violations)})" for o in self.closest]
        lines += [f"  next: {s}" for s in self.suggestions]
        lines += [f"  note: {n}" for n in self.notes]
        if any(_cut(e) for e in self._quality_estimates()):
            lines.append(f"  note: {CUT_NOTE}")
        return _with_num_predict_key(lines)

    def brief(self) -> str:
        """`recommend -q`: the answer's first line, the pick's `config:` line (what a
        spec takes: a newcomer's -q dropped it), the one line of its reason (what the
        model credits the pick with, else its estimate), its `next:` lines, the note
        that newer results are stored than the answering version learned from, the line
        that the pick is unsettled (``unsettled``: a newcomer's -q gave no hint of it),
        the note on a quality floor its first line points to (``quality_floor``) and the
        note that the answer was not logged (the whole answer was 17+ lines with
        or without -q)."""
        lines = [self._headline()]
        if self.choice is not None:
            config, *estimate = _describe_choice(self.choice)
            why = [
                line
                for line in _describe_drivers(self.drivers, self.task_type, self.speed_tie)
                if line.startswith("  why: ")
            ]
            lines += [config, (why or estimate)[0]]
        lines += [f"  next: {s}" for s in self.suggestions]
        notes = (self.newer_results, self.unsettled, self.quality_floor, self.unlogged)
        lines += [f"  note: {note}" for note in notes if note]
        return _with_num_predict_key(lines)

    def _headline(self) -> str:
        version = f" (selector v{self.version_id})" if self.version_id is not None else ""
        return f"{self.task_type}: {self.message}{version}"

    def _quality_estimates(self) -> list[Estimate]:
        """Every quality estimate the text shows."""
        shown = [
            self.choice,
            self.overruled,
            self.excluded_best,
            *self.refused_better,
            *self.alternatives,
        ]
        options = [o for o in (*shown, *self.closest) if o is not None]
        found = [o.quality for o in options]
        if self.choice is not None and self.choice.predicted_quality is not None:
            found.append(self.choice.predicted_quality)
        return found


#: One sentence under the three figures a measured recommendation prints.
ESTIMATE_EXPLAINED = (
    "(measured: what this config scored in stored runs of the task type; predicted: what "
    "the selector's model expects of it from similar configs; estimate: the two combined, "
    "the measurement weighing more the more cases it has)"
)


#: Said once when a quality interval shown ends at 0 or 1.
CUT_NOTE = (
    "a quality interval ending at 0.000 or 1.000 was cut there: the selector's 90% interval "
    "(estimate ± its error) reaches past the scale, which quality cannot leave; cut, it "
    "still holds the true quality as often"
)


def _with_num_predict_key(lines: list[str]) -> str:
    """``lines`` joined, with what "n=" is where a label in them shows it ("n=32" read as
    32 cases)."""
    if any(shows_num_predict(line) for line in lines):
        lines = [*lines, f"  note: in the labels, {NUM_PREDICT_KEY}"]
    return "\n".join(lines)


def _cut(estimate: Estimate) -> bool:
    """Whether the interval was cut at a bound of the [0, 1] scale (an uncut interval
    ends exactly there only when its estimate does)."""
    return (estimate.low <= 0 < estimate.value) or (estimate.high >= 1 > estimate.value)


def format_recommendation(recommendation: Recommendation) -> str:
    """The CLI's text for a recommendation (same as ``explain``)."""
    return recommendation.explain()


def _describe_choice(choice: Option) -> list[str]:
    lines = [f"  config: {choice.label} (hash {choice.config_hash}, template {choice.template!r})"]
    numbers = [f"quality {_shown_quality(choice.quality)}"]
    if choice.latency_p50_s is not None and choice.latency_p95_s is not None:
        numbers.append(
            f"latency p50 {_seconds(choice.latency_p50_s.value)}, p95 "
            f"{_seconds(choice.latency_p95_s.value)} {latency_interval(choice.latency_p95_s)}"
            + _pooled_with(choice)
        )
        if choice.latency_p95_checked_s is not None:
            numbers.append(
                f"a latency limit holds it to p95 {_seconds(choice.latency_p95_checked_s)} "
                f"({choice.latency_p95_checked_by})"
            )
    if choice.energy_j is not None:
        numbers.append(f"energy {choice.energy_j.value:.0f} J/generation")
    evidence = choice.evidence
    if choice.basis == "predicted" or not evidence.measured:
        lines.append("  predicted (never run on this task type): " + ", ".join(numbers))
        return lines
    share = f"{100 * choice.measurement_weight:.0f}% of the quality estimate from the measurement"
    lines.append(f"  estimate ({choice.basis}; {share}): " + ", ".join(numbers))
    lines.append(f"  {ESTIMATE_EXPLAINED}")
    if evidence.quality_mean is not None:
        ci = ""
        low, high = evidence.quality_ci_low, evidence.quality_ci_high
        if low is not None and high is not None:
            ci = f" (95% CI [{quality(low)}, {quality(high)}])"
        p95 = ""
        if evidence.latency_p95_s:  # the leaderboard's p95 interpolates: lower on a long tail
            p95 = f", p95 {_seconds(evidence.latency_p95_s)} (Harrell–Davis)"
        lines.append(
            f"  measured: {evidence.n_cases} cases ({evidence.n_generations} generations; "
            f"reruns of a case count once) on {evidence.n_suites} suite(s), "
            f"quality {quality(evidence.quality_mean)}{ci}{p95}"
        )
    if choice.measured_quality_pooled is not None:
        se = choice.measured_quality_se
        what = f"quality {quality(choice.measured_quality_pooled)}" + (
            f" ± {quality(se)} (standard error)" if se is not None else ""
        )
        how = (
            "its own cases at the task type's suite mix (the multilevel model of the task "
            "type's measured configs reads it far less surely: too few configs for its "
            "effects, or suites it cannot tell from settings)"
            if choice.measured_quality_own
            else "read with the task type's other measured configs (multilevel model)"
        )
        lines.append(
            f"  measured, {how}: {what}, the measurement the estimate combines with the prediction"
        )
    if choice.measured_latency_p95_pooled_s is not None:
        weight = choice.latency_p95_measurement_weight
        how = "its own calls"
        if choice.latency_pooled_with:
            how = f"pooled with {', '.join(choice.latency_pooled_with)}"
        lines.append(
            f"  measured p95 as the estimate combines it: "
            f"{_seconds(choice.measured_latency_p95_pooled_s)} ({how}; freed of a few "
            f"calls' low bias), {100 * weight:.0f}% of the p95 estimate on the log scale "
            "(measurement^w × prediction^(1 − w))"
        )
    if choice.predicted_quality is not None:
        p95 = ""
        if choice.predicted_latency_p95_s is not None:
            p95 = f", p95 {_seconds(choice.predicted_latency_p95_s.value)}"
        lines.append(
            f"  predicted by the model: quality {_shown_quality(choice.predicted_quality)}{p95}"
        )
    return lines


MAX_LISTED = 3  # configs a note names before "and N more"
WIDE = 10.0
"""A latency interval is shown only within this factor of its estimate either way; past
it, the answer says it is unknown beyond. A newcomer's never-run pick printed p95 5.5 s
[0.167–182 s]: the model's calibrated error, scaled up on held-out suites where configs
of other models stood in for a model run on that suite alone (:func:`wide_interval`)."""


def wide_interval(estimate: Estimate) -> bool:
    """Whether ``estimate``'s interval passes ``WIDE`` times its value either way."""
    return estimate.low < estimate.value / WIDE or estimate.high > estimate.value * WIDE


def latency_interval(estimate: Estimate) -> str:
    """ "[1.01 s–2.01 s]", or where it passes ``WIDE`` times the estimate, that it is
    unknown beyond: "[under 0.548 s to over 54.8 s: ...]" (an end within it is shown)."""
    low, high = _seconds(estimate.low), _seconds(estimate.high)
    if not wide_interval(estimate):
        return f"[{low}–{high}]"
    if estimate.low < estimate.value / WIDE:
        low = f"under {_seconds(estimate.value / WIDE)}"
    if estimate.high > estimate.value * WIDE:
        high = f"over {_seconds(estimate.value * WIDE)}"
    return f"[{low} to {high}: unknown beyond {WIDE:g}× its estimate, the model cannot place it]"


def _held_by_tail(option: Option) -> str:
    """For another option whose p95 a latency limit holds to its median times a tail
    ratio (above its p95 estimate and interval): that figure, so a limit that refuses it
    does not contradict the p95 its line shows; else ""."""
    by = option.latency_p95_checked_by
    if option.latency_p95_checked_s is None or not by or by.startswith("with margin"):
        return ""
    return f" (a latency limit holds it to p95 {_seconds(option.latency_p95_checked_s)}: {by})"


def _pooled_with(option: Option) -> str:
    """ " (measured latency pooled with …)" where it was, else ""."""
    if not option.latency_pooled_with:
        return ""
    return (
        " (measured latency pooled with "
        + ", ".join(option.latency_pooled_with)
        + ": they differ only in sampling settings)"
    )


def _describe_drivers(
    drivers: tuple[Driver, ...], task_type: str, speed_tie: str | None = None
) -> list[str]:
    """ "why:" for the settings the model predicts help the pick (higher quality, or a
    lower median latency when ranking for speed), after ``speed_tie`` where a tie on
    speed was broken by quality, and "against it:" for those it predicts cost
    something: a pick decided by its measurement can have either."""
    where = (
        f" — the model's predictions on {task_type}, each against the setting most used "
        f"by the configs measured on {task_type}"
    )
    helps = [d for d in drivers if (d.effect > 0) == (d.target == "quality")]
    costs = [d for d in drivers if d not in helps]
    lines = []
    if speed_tie is not None:
        lines.append(f"  why: {speed_tie}")
    if helps:
        lines.append(
            ("  and: " if speed_tie else "  why: ") + "; ".join(_driver(d) for d in helps) + where
        )
    if costs:
        lines.append(
            "  against it: "
            + "; ".join(_driver(d) for d in costs)
            + (" (same predictions)" if helps else where)
        )
    return lines


def _driver(driver: Driver) -> str:
    sign = "+" if driver.effect >= 0 else "−"
    if driver.target == "quality":
        amount = f"{sign}{quality(abs(driver.effect))} quality"
    else:
        amount = f"{sign}{significant(abs(driver.effect))} s median latency"
    text = f"{driver.feature} {driver.value} {amount} vs {driver.baseline}"
    if not driver.seen:
        text += f", never run on {driver.task_type}: learnt from other task types"
    return text


#: What an option's quality figure is, in the summary line: the shown figure is the
#: estimate (the measurement shrunk toward the prediction), never the measurement itself
#: (a newcomer read "54.9% ... (measured)" for a config `show` measured at 0.50).
BASIS_WORDS = {
    "measured": "estimate, mostly from its measurement",
    "measured and predicted": "estimate from its measurement and the prediction",
    "predicted": "predicted",
}


def _shown_quality(estimate: Estimate) -> str:
    return quality_interval(estimate.value, estimate.low, estimate.high)


def _seconds(value: float | None) -> str:
    """A latency to 3 significant figures (0.0500 s, 0.0550 s, 1.23 s, 12.3 s)."""
    if value is None or not math.isfinite(value):
        return "?"
    return f"{significant(value)} s"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
