"""A race over a stored experiment: the race a sweep's spec asks for, the score table it
is judged on (built from stored generations and scores), and its rounds as rows and
markdown. The flow calls these once per round; nothing here remembers anything between
calls, so a rerun after a crash rebuilds the same race from the database."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import pandas as pd
from sqlmodel import Session

from evaluation.adaptive._clusters import case_clustering
from evaluation.adaptive._race import STOP_TEXT, Race, RaceRound, RaceSettings
from evaluation.adaptive._schedule import race_schedule
from evaluation.metrics import get_metric
from evaluation.run import Sweep
from evaluation.statistics import CaseTable, case_table
from evaluation.statistics.precision import fixed
from evaluation.storage.race import race_rounds_frame
from evaluation.suites import Case

if TYPE_CHECKING:
    from evaluation.compare._leaderboard import Leaderboard

RACE_SEED = 0


def sweep_race(sweep: Sweep, cases: Sequence[Case], metric_name: str) -> Race:
    """The race of ``sweep`` over ``cases`` (the level's), judged on ``metric_name``: the
    run's primary metric (``storage.repository.metrics_of_run``), which a ``rescore
    --first`` may have made another than the spec's first."""
    metric = get_metric(metric_name)
    strategy = sweep.spec.strategy
    clustering = case_clustering(
        [c.id for c in cases],
        [c.group for c in cases],
        [c.metadata for c in cases],
        [c.prompt_text for c in cases],
    )
    schedule = race_schedule(
        list(clustering.case_ids), list(clustering.groups), seed=RACE_SEED, suite=sweep.suite.name
    )
    settings = RaceSettings(
        delta=strategy.delta,
        budget=strategy.budget,
        samples=sweep.spec.samples_per_case,
        score_type=metric.score_type,
        higher_is_better=metric.higher_is_better,
        limits=strategy.limits,
        metric=metric.name,
    )
    return Race([c.hash for c in sweep.configs], schedule, settings, clustering)


def stored_table(generations: pd.DataFrame, scores: pd.DataFrame, metric: str) -> CaseTable:
    """One row per stored generation (any status) with its score on ``metric`` (NaN when
    it failed or could not be scored): a failed generation counts as run, unscorable."""
    if generations.empty:
        empty = pd.DataFrame()
        return CaseTable(metric, empty, empty, empty, empty, None)
    values = scores.loc[scores["metric"] == metric].set_index("generation_id")["value"]
    rows = pd.DataFrame(
        {
            "config": generations["config_hash"].astype(str),
            "case_id": generations["case_id"].astype(str),
            "sample_index": generations["sample_index"],
            "group": generations["case_group"],
            "metric": metric,
            "value": generations["id"].map(values),
        }
    )
    return case_table(rows, metric)


def stored_measures(generations: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """One row per stored generation: its config, case and the measures a race's limits
    bound (``latency_s``, ``energy_j``; NaN where not measured, e.g. a failed call)."""
    columns = ["config", "case_id", *names]
    if generations.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "config": generations["config_hash"].astype(str),
            "case_id": generations["case_id"].astype(str),
        }
    )
    for name in names:
        frame[name] = pd.to_numeric(generations[name], errors="coerce")
    return frame[columns]


def round_rows(race: Race) -> list[dict]:
    """The race's rounds as ``race_rounds`` rows (the outcome on the last)."""
    rows = []
    for r in race.rounds:
        last = race.outcome is not None and r is race.rounds[-1]
        rows.append(
            {
                "round_index": r.index,
                "n_cases": r.n_cases,
                "survivors": list(r.survivors),
                "leader": r.leader,
                "eliminated": [asdict(e) for e in r.eliminated],
                "spent": r.spent,
                "full_grid": race.full_grid,
                "outcome": race.outcome.reason if last else None,
                "pick": race.outcome.pick if last else None,
                "bound": race.bound_text,
            }
        )
    return rows


def round_markdown(race: Race, r: RaceRound, labels: dict[str, str], simulated: bool) -> str:
    """One round for a person: survivors, dropped configs with the evidence, spending."""
    name = labels.get
    title = f"# Race round {r.index + 1} of at most {race.schedule.n_rounds}"
    lines = [title + (" (SIMULATED)" if simulated else ""), ""]
    leader = (
        f"leader {name(r.leader)} ({r.means[r.leader]:.3f})"
        if r.leader
        else "no config within the limits"
    )
    lines.append(
        f"{len(r.survivors)} configs on {r.n_cases} shared cases; {leader}. Generations so "
        f"far: {r.spent} of the full grid's {race.full_grid} ({r.spent / race.full_grid:.0%})."
    )
    if r.eliminated:
        lines += [
            "",
            "| eliminated | by | difference | interval | p (one-sided) | adjusted p | test |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in r.eliminated:
            by = name(e.by, e.by)
            diff = "" if e.diff is None else fixed(e.diff, 3, signed=True)
            ci = (
                ""
                if e.ci is None
                else f"[{fixed(e.ci[0], 3, signed=True)}, {fixed(e.ci[1], 3, signed=True)}]"
            )
            lines.append(
                f"| {name(e.config)} | {by} | {diff} | {ci} | {e.p_value:.2g} | "
                f"{e.p_adjusted:.2g} | {e.test} |"
            )
    else:
        lines += ["", "No config eliminated this round."]
    left = [c for c in r.survivors if c not in {e.config for e in r.eliminated}]
    lines += ["", "Still in: " + ", ".join(name(c, c) for c in left)]
    if race.outcome is not None and r is race.rounds[-1]:
        lines += [
            "",
            f"Race over: {STOP_TEXT[race.outcome.reason]}; "
            f"pick {name(race.outcome.pick, 'none') if race.outcome.pick else 'none'}.",
        ]
    lines += ["", f"Error control: {race.bound_text}."]
    return "\n".join(lines)


@dataclass(frozen=True)
class RaceStanding:
    """How far each config got in a stored race: the outcome, the generations spent,
    each config's cases run and status (the pick, survived, or stopped early: round
    and why), and the error bound with what it assumes of the cases."""

    head: str
    spent: str
    configs: list[tuple[str, int, str]]
    bound: str | None

    def markdown(self) -> str:
        lines = [
            "## Race",
            "",
            f"{self.head} {self.spent}",
            "",
            "| config | cases run | status |",
            "|---|---|---|",
            *(f"| {label} | {n} | {status} |" for label, n, status in self.configs),
        ]
        if self.bound:
            lines += ["", f"Error control: {self.bound}."]
        return "\n".join(lines)

    def text(self) -> str:
        """For a terminal: the same, in aligned columns."""
        width = max(len("config"), *(len(label) for label, _, _ in self.configs))
        lines = [
            "Race",
            f"{self.head} {self.spent}",
            f"{'config':<{width}}  {'cases run':>9}  status",
            *(f"{label:<{width}}  {n:>9}  {status}" for label, n, status in self.configs),
        ]
        if self.bound:
            lines.append(f"Error control: {self.bound}.")
        return "\n".join(lines)


def race_standing(rounds: pd.DataFrame, labels: dict[str, str]) -> RaceStanding | None:
    """The standing of a stored race (rows of ``race_rounds``); None when the experiment
    did not race. A race stored by an evalflow that did not keep its bound has none."""
    if rounds.empty:
        return None
    rounds = rounds.sort_values("round_index")
    status: dict[str, tuple[int, str]] = {}
    for r in rounds.to_dict("records"):
        for config in _listed(r["survivors"]):
            status[config] = (r["n_cases"], "survived")
        for e in _listed(r["eliminated"]):
            why = (
                f"significantly worse than {labels.get(e['by'], e['by'])} "
                f"(difference {fixed(e['diff'], 3, signed=True)}, adjusted p {e['p_adjusted']:.2g})"
                if e["reason"] == "worse"
                else f"{e['by']} (adjusted p {e['p_adjusted']:.2g})"
            )
            status[e["config"]] = (
                r["n_cases"],
                f"stopped early in round {r['round_index'] + 1}: {why}",
            )
    last = rounds.iloc[-1]
    if isinstance(last["outcome"], str):
        pick = labels.get(last["pick"], last["pick"]) if last["pick"] else "none"
        head = f"Race over: {STOP_TEXT[last['outcome']]}; pick {pick}."
        if last["pick"]:
            status[last["pick"]] = (status[last["pick"]][0], "pick")
    else:
        head = f"Race in progress after round {int(last['round_index']) + 1}."
    order = sorted(status.items(), key=lambda kv: (-kv[1][0], kv[1][1] != "pick"))
    bound = last.get("bound")
    return RaceStanding(
        head=head,
        spent=f"Generations: {int(last['spent'])} of the full grid's {int(last['full_grid'])}.",
        configs=[(labels.get(c, c), n, why) for c, (n, why) in order],
        bound=bound if isinstance(bound, str) else None,
    )


def stopped_line(
    session: Session,
    experiment_id: int,
    board: Leaderboard,
    *,
    order: Sequence[str] | None = None,
    where: str = "Race, below",
) -> str:
    """:func:`stopped_above_kept` under ``board``, the experiment's stored leaderboard, of
    its stored rounds: the one line show, run, compare, the report and view's summary
    print under it (compare and view had the board without it). ``order``: the configs
    as the board shows them, best first (the board's ranking where None); ``where``:
    where the race's rounds are shown, or "" where they are not."""
    if not board.metrics:
        return ""
    if order is None:
        from evaluation.compare._leaderboard import ranked_rows

        order = [str(r["config"]) for r in ranked_rows(board)]
    rounds = race_rounds_frame(session, experiment_id)
    return stopped_above_kept(rounds, order, board.labels, where=where)


def stopped_above_kept(
    rounds: pd.DataFrame,
    order: Sequence[str],
    names: dict[str, str],
    *,
    where: str = "Race, below",
) -> str:
    """The line under a leaderboard (``order``: its configs, best first; ``names``: each
    as it shows) where configs the race stopped early rank above every config it kept:
    their figures are over fewer cases, and the race did not keep them (one stopped in
    round 1 for its latency led a newcomer's board, unsaid). "" where none does.
    ``where``: where the race's rounds are shown, in brackets at the end ("" for none)."""
    if rounds.empty:
        return ""
    stopped: dict[str, tuple[int, int, str]] = {}
    for r in rounds.sort_values("round_index").to_dict("records"):
        for e in _listed(r["eliminated"]):
            why = (
                f"significantly worse than {names.get(e['by'], e['by'])}"
                if e["reason"] == "worse"
                else str(e["by"])
            )
            stopped[e["config"]] = (int(r["round_index"]) + 1, int(r["n_cases"]), why)
    kept = next((i for i, c in enumerate(order) if c not in stopped), None)
    above = [c for c in order[: len(order) if kept is None else kept] if c in stopped]
    if not above:
        return ""
    listed = "; ".join(
        f"#{order.index(c) + 1} {names.get(c, c)} ({stopped[c][1]} cases; round "
        f"{stopped[c][0]}: {stopped[c][2]})"
        for c in above
    )
    first = (
        f"; the best-ranked config it kept is #{kept + 1} {names.get(order[kept], order[kept])}"
        if kept is not None
        else ""
    )
    return (
        f"Stopped early by the race, yet ranked above every config it kept: {listed}. Their "
        f"figures are over the cases they ran only, and the race did not keep them{first}"
        + (f" ({where})" if where else "")
    )


def stored_standing(
    session: Session, experiment_id: int, labels: dict[str, str]
) -> RaceStanding | None:
    """:func:`race_standing` of an experiment's stored rounds."""
    return race_standing(race_rounds_frame(session, experiment_id), labels)


def _listed(value: object) -> list:
    """A JSON column as read back: a list, or its text on some drivers."""
    return json.loads(value) if isinstance(value, str) else list(value or [])
