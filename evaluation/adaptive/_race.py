"""A race: rounds of shared cases, the losers dropped after each, until one is left, the
leader is within delta of every survivor, the budget is spent or the suite is exhausted.

The race is a pure function of (configs, schedule, settings) and the scores it is given:
:meth:`Race.next_round` says which configs to run on which cases, :meth:`Race.close_round`
judges the round from the scores. :func:`replay` runs it over whatever scores are already
stored, so a rerun after a crash reaches the same survivors without generating anything
twice, and stops at the first round whose scores are incomplete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from evaluation.adaptive._clusters import Clustering
from evaluation.adaptive._elimination import Elimination, judge, over_limit
from evaluation.adaptive._schedule import RaceSchedule
from evaluation.wording import counted

if TYPE_CHECKING:  # scipy.stats and pandas load on a race's first look, not when a run starts
    import pandas as pd

    from evaluation.statistics import CaseTable, ScoreType

StopReason = Literal["one_left", "none_within_limits", "tie", "budget", "exhausted"]
STOP_TEXT = {
    "one_left": "one config left",
    "none_within_limits": "every config is significantly over a limit: none to pick",
    "tie": "no survivor is more than delta better than the leader (tie within delta)",
    "budget": "the generation budget is spent",
    "exhausted": "every case was run; the survivors could not be separated",
}
ALPHA = 0.05
DELTA = 0.01


@dataclass(frozen=True)
class RaceSettings:
    """``alpha`` bounds P(the truly best config is ever eliminated) (half of it for the
    limits when there are any); ``delta`` is the smallest difference worth knowing;
    ``budget`` caps the generations; ``limits`` maps a per-generation measure (e.g.
    "latency_s") to the most its p95 may be; ``metric`` names the scores."""

    alpha: float = ALPHA
    delta: float = DELTA
    budget: int | None = None
    samples: int = 1
    score_type: ScoreType = "binary"
    higher_is_better: bool = True
    limits: Mapping[str, float] = field(default_factory=dict)
    metric: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.delta < 0:
            raise ValueError(f"delta must be >= 0, got {self.delta}")
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"budget must be at least 1 generation, got {self.budget}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")


@dataclass(frozen=True)
class RoundPlan:
    """Round ``index``: run ``configs`` on ``cases`` (the cases this round adds)."""

    index: int
    configs: tuple[str, ...]
    cases: tuple[str, ...]


@dataclass(frozen=True)
class RaceRound:
    """A finished round: who ran, on how many cases in all, who was dropped, and the
    generations spent so far (all rounds)."""

    index: int
    survivors: tuple[str, ...]
    cases: tuple[str, ...]
    n_cases: int
    leader: str
    means: dict[str, float]
    eliminated: tuple[Elimination, ...]
    spent: int


@dataclass(frozen=True)
class RaceOutcome:
    reason: StopReason
    pick: str
    survivors: tuple[str, ...]

    def describe(self, labels: Mapping[str, str] | None = None) -> str:
        """Why the race stopped and its pick, by ``labels`` where given ("no pick" when
        every config broke a limit)."""
        pick = (labels or {}).get(self.pick, self.pick) if self.pick else ""
        return f"stopped: {STOP_TEXT[self.reason]}; " + (f"pick {pick}" if pick else "no pick")


class Race:
    """The state of one race; see the module docstring. ``clustering``: which cases share
    a source (:mod:`evaluation.adaptive._clusters`); its groups are used when a round is
    judged without groups of its own, and ``bound_text`` says what the error bound
    assumes. None: the caller passes any groups with each round."""

    def __init__(
        self,
        configs: Sequence[str],
        schedule: RaceSchedule,
        settings: RaceSettings,
        clustering: Clustering | None = None,
    ) -> None:
        if len(set(configs)) != len(configs) or not configs:
            raise ValueError("a race needs distinct configs")
        self.configs = tuple(configs)
        self.schedule = schedule
        self.settings = settings
        self.clustering = clustering
        self._groups = None
        if clustering is not None and clustering.known:
            import pandas as pd

            self._groups = pd.Series(clustering.groups, index=clustering.case_ids, dtype=object)
            alone = self._groups.isna()
            self._groups[alone] = ["\x00case:" + c for c in self._groups.index[alone]]
        self.survivors = tuple(configs)
        self.rounds: list[RaceRound] = []
        self.outcome: RaceOutcome | None = None
        self._pending: RoundPlan | None = None
        self._cases: list[str] = []
        self._budget_cut = False
        rivals = max(1, len(configs) - 1)
        looks = schedule.n_rounds
        alpha_quality = settings.alpha / 2 if settings.limits else settings.alpha
        self.looks_times_rivals = looks * rivals
        self.level = alpha_quality / self.looks_times_rivals
        self.limit_level = settings.alpha / 2 / max(1, len(settings.limits)) / looks
        if len(configs) == 1:
            self.outcome = RaceOutcome("one_left", configs[0], self.survivors)

    @property
    def bound_text(self) -> str:
        """The error bound and what it assumes of the cases."""
        judged = f"on {self.settings.metric}, " if self.settings.metric else ""
        bound = (
            f"{judged}P(the truly best config is eliminated) <= {self.settings.alpha:g} over "
            f"{counted(self.schedule.n_rounds, 'look')} (adjusted p = one-sided p x looks x "
            "rivals)"
        )
        if self.clustering is None:
            return bound
        return f"{bound}; {self.clustering.text}"

    @property
    def full_grid(self) -> int:
        """Generations the full grid would take."""
        return len(self.configs) * len(self.schedule.order) * self.settings.samples

    @property
    def cases_run(self) -> tuple[str, ...]:
        """The cases of the rounds closed so far."""
        return tuple(self._cases)

    @property
    def spent(self) -> int:
        return self.rounds[-1].spent if self.rounds else 0

    def next_round(self) -> RoundPlan | None:
        """The round to run next, or None when the race is over."""
        if self.outcome is not None:
            return None
        if self._pending is None:
            index = len(self.rounds)
            cases = self.schedule.round_cases(index)
            per_case = len(self.survivors) * self.settings.samples
            if self.settings.budget is not None:
                affordable = (self.settings.budget - self.spent) // per_case
                if affordable < len(cases):
                    self._budget_cut = True
                    cases = cases[:affordable]
            if not cases:
                self._finish("budget")
                return None
            self._pending = RoundPlan(index, self.survivors, cases)
        return self._pending

    def close_round(
        self,
        means: pd.DataFrame,
        groups: pd.Series | None = None,
        limit_values: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    ) -> RaceRound:
        """Judge the pending round from case means (rows: case ids, columns: configs;
        every survivor must have a row for every case run so far) and, for the limits,
        each config's per-generation values so far.

        The limits are judged first and the quality test only among the configs that
        kept within them: the question is the best config under the limits, so a config
        shown to break one can neither lead nor drop the others."""
        plan = self._pending
        if plan is None:
            raise RuntimeError("no round is pending")
        cases = [*self._cases, *plan.cases]
        missing = [c for c in plan.configs if c not in means.columns]
        absent = [c for c in cases if c not in means.index]
        if missing or absent:
            raise ValueError(f"scores missing for configs {missing} / cases {absent[:5]}")
        s = self.settings
        if groups is None:
            groups = self._groups
        dropped: list[Elimination] = []
        for name, limit in s.limits.items():
            values = (limit_values or {}).get(name, {})
            dropped += [
                e
                for e in over_limit(
                    values,
                    plan.configs,
                    name=name,
                    limit=limit,
                    level=self.limit_level,
                    looks=self.schedule.n_rounds,
                )
                if e.config not in {d.config for d in dropped}
            ]
        within_limits = tuple(c for c in plan.configs if c not in {d.config for d in dropped})
        leader, round_means, within_delta = "", {}, False
        if within_limits:
            verdict = judge(
                means.loc[cases],
                within_limits,
                groups=groups,
                level=self.level,
                adjust=self.looks_times_rivals,
                delta=s.delta,
                score_type=s.score_type,
                higher_is_better=s.higher_is_better,
            )
            dropped += verdict.eliminated
            leader, round_means, within_delta = verdict.leader, verdict.means, verdict.within_delta
        gone = {e.config for e in dropped}
        record = RaceRound(
            index=plan.index,
            survivors=plan.configs,
            cases=plan.cases,
            n_cases=len(cases),
            leader=leader,
            means=round_means,
            eliminated=tuple(dropped),
            spent=self.spent + len(plan.configs) * len(plan.cases) * s.samples,
        )
        self.rounds.append(record)
        self._cases = cases
        self._pending = None
        self.survivors = tuple(c for c in plan.configs if c not in gone)
        if not self.survivors:
            self._finish("none_within_limits")
        elif len(self.survivors) == 1:
            self._finish("one_left")
        elif within_delta:
            self._finish("tie")
        elif self._budget_cut:
            self._finish("budget")
        elif plan.index + 1 >= self.schedule.n_rounds:
            self._finish("exhausted")
        return record

    def _finish(self, reason: StopReason) -> None:
        last = self.rounds[-1] if self.rounds else None
        if not self.survivors:  # every config broke a limit
            pick = ""
        elif last is None:
            pick = self.survivors[0]
        elif last.leader in self.survivors:
            pick = last.leader
        else:
            sign = 1 if self.settings.higher_is_better else -1
            pick = max(self.survivors, key=lambda c: sign * last.means[c])
        self.outcome = RaceOutcome(reason, pick, self.survivors)


def replay(race: Race, table: CaseTable, measures: pd.DataFrame | None = None) -> RoundPlan | None:
    """Close every round whose generations are all in ``table`` (``samples`` rows per
    config and case, scored or not); return the first round that still needs
    generations, or None when the race is over. ``measures``: one row per generation
    (``config``, ``case_id`` and a column per limited measure, e.g. ``latency_s``); each
    round's limits are judged on the generations of the cases run up to that round, so
    a replay sees what the race saw when it ran."""
    while (plan := race.next_round()) is not None:
        rows = table.rows.reindex(index=list(plan.cases), columns=list(plan.configs))
        if rows.isna().any(axis=None) or (rows < race.settings.samples).any(axis=None):
            return plan
        values = None
        if measures is not None and race.settings.limits:
            values = _limit_values(measures, race, plan)
        race.close_round(table.means, table.groups, values)
    return None


def _limit_values(
    measures: pd.DataFrame, race: Race, plan: RoundPlan
) -> dict[str, dict[str, list[float]]]:
    """Each limited measure's values per config over the cases run up to ``plan``."""
    so_far = {*race.cases_run, *plan.cases}
    rows = measures[measures["case_id"].isin(so_far) & measures["config"].isin(plan.configs)]
    by_config = rows.groupby("config")
    return {
        name: {config: part[name].tolist() for config, part in by_config}
        for name in race.settings.limits
        if name in rows.columns
    }
