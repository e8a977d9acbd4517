"""How much of its suite an experiment ran. A subset level (`--level subset`,
`--level calibrated`, `--limit`) runs part of the suite, and every figure of such a run
is a mean over those cases only: each output says so beside the figure
(docs/calibrated-subsets.md, "Where an estimate is shown")."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import and_, case, exists, func, or_, select
from sqlmodel import Session

from evaluation.storage.dropped import experiment_hashes
from evaluation.storage.models import CaseRow, Experiment, ExperimentRun, Generation, Score
from evaluation.storage.race import raced
from evaluation.wording import counted, part_of_suite, with_failures


@dataclass(frozen=True)
class Coverage:
    """``fewest`` and ``most``: the distinct cases a config of the experiment generated
    for successfully, over its configs (an interrupted run leaves them apart; its failed
    generations are no case its means rest on: counted, a run whose server died read
    "Leaderboard: real-smol" over "subset mean from 33 of 36 cases"); ``total``: its
    suite's; ``first``: the last run took the suite's first cases (``ran_first_cases``);
    ``cut_short``: the last run was at the full level, so what it lacks it did not finish
    (a host down, an interrupt), not a subset it chose; ``named``: the last run, at the
    full level, ran every case its spec's ``cases:`` names (`recommend --write-spec`'s
    spec of a config's missing cases), which is not cut short either; ``raced``: the last
    run, a race at the full level, ended, and the configs it stopped early (lost, or broke
    a limit) ran fewer cases by its rule, not cut short (a completed race read "20 to 36
    of 36 cases per config: cut short"); ``of_named``: the
    spec's ``cases:`` count where the last run took the first of them. ``generated``: its
    configs' successful generations; ``unscored``: those of them stored after the scores
    (``scored_coverage``: an interrupted resume), where ``fewest`` and ``most`` count the
    scored ones only."""

    fewest: int
    most: int
    total: int
    first: bool = False
    cut_short: bool = False
    named: bool = False
    raced: bool = False
    of_named: int = 0
    generated: int = field(default=0, compare=False)
    unscored: int = 0
    running: bool = False  # a run goes on: it scores them itself
    failed: tuple[int, int] = field(default=(0, 0), compare=False)
    """The fewest and most cases, over configs, whose every generation failed (a timeout):
    run, but no case a mean rests on."""
    ran: tuple[int, int] = field(default=(0, 0), compare=False)
    """The fewest and most cases, over configs, run: generated successfully or failed."""
    cases_ok: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    """Per config with a successful generation (its hash), its distinct cases with one:
    ``short_configs`` without scanning the generations again."""

    @property
    def partial(self) -> bool:
        return self.most > 0 and self.fewest < self.total

    def words(self) -> str:
        """ "subset: 8 of 36 cases", "first 10 of 36 cases" where the last run took the
        suite's first cases (`--limit 10`: "subset" read as `--level subset`, a stratified
        20%), "subset: 6 to 9 of 36 cases per config" where the configs ran different
        numbers of cases ("first 6 to 9 ...", "... per config: cut short" as the last run
        took them: a verdict's figure says ``how`` too), "4 of 12 cases: cut short" for a
        full-level run that did not finish, "20 to 36 of 36 cases per config: stopped early
        by the race" for a race that ended, "12 named cases of 36" for one that ran every
        case its spec's ``cases:`` names, or "" for a run of the whole suite. Where
        generations were stored after the scores, what the scores rest on and that those
        are not scored yet (an interrupted resume: "12 to 36 of 36 cases" headed rows of
        12 cases' scores)."""
        if self.unscored:
            ran = str(self.most) if self.fewest == self.most else f"{self.fewest} to {self.most}"
            per = " per config" if self.fewest != self.most else ""
            then = "" if self.running else ": resume to score them"
            return (
                f"scores of {ran} of {self.total} cases{per}; "
                f"{counted(self.unscored, 'generation')} stored since not scored yet{then}"
            )
        if self.failed[1]:
            return self._with_failures()
        if not self.partial:
            return ""
        return self._part(self.fewest, self.most)

    def _part(self, fewest: int, most: int) -> str:
        if fewest == most:
            return part_of_suite(str(most), self.total, self.how, named=self.of_named)
        ran = f"{fewest} to {most}"
        return part_of_suite(ran, self.total, self.how, per_config=True, named=self.of_named)

    def _with_failures(self) -> str:
        """``wording.with_failures`` of the cases run, failed and scored."""
        run_fewest, run_most = self.ran
        return with_failures(
            self._part(run_fewest, run_most) if run_fewest < self.total else "",
            _span(*self.failed),
            self.total,
            _span(self.fewest, self.most),
            per_config=self.failed[0] != self.failed[1],
        )

    def short_configs(self) -> dict[str, int]:
        """``short_configs`` of the experiment, from the counts read with this coverage."""
        return _short(dict(self.cases_ok), self.total)

    @property
    def how(self) -> str:
        """How the last run took its cases, as ``part_of_suite`` says them."""
        if self.named:
            return "named"
        if self.raced:
            return "race"
        return "cut short" if self.cut_short else "first" if self.first else "subset"


def experiment_coverage(session: Session, experiment: Experiment) -> Coverage:
    """One experiment's coverage: its configs' distinct cases generated successfully, and
    run (failed too), (one scan of its own generations; not of configs its spec dropped)
    and its suite's."""
    own = _per_config(session, experiment.id)
    counts = [n for _, n, _, _ in own]
    ran = [r for _, _, _, r in own]
    failed = [r - n for _, n, _, r in own]
    total = session.exec(
        select(func.count()).select_from(CaseRow).where(CaseRow.suite == experiment.suite)
    ).scalar()
    found = Coverage(
        min(counts, default=0),
        max(counts, default=0),
        int(total or 0),
        generated=sum(g for _, _, g, _ in own),
        failed=(min(failed, default=0), max(failed, default=0)),
        ran=(min(ran, default=0), max(ran, default=0)),
        cases_ok=tuple((config, n) for config, n, generated, _ in own if generated),
    )
    named = named_cases(experiment)
    if found.partial and ran_first_cases(session, experiment.name):
        return replace(found, first=True, of_named=named)
    if found.partial and _last_level(session, experiment.name) == "full":
        if found.fewest == found.most == named or found.ran[0] == found.ran[1] == named:
            return replace(found, named=True)
        if experiment.status == "completed" and raced(session, experiment.id):
            return replace(found, raced=True)
        return replace(found, cut_short=True)
    return found


def run_cases(session: Session, experiment_id: int) -> dict[str, tuple[int, int]]:
    """Per config of the experiment (hash): its cases run and those of them whose every
    generation failed, as the run's heading counts them (``Coverage.ran`` and
    ``Coverage.failed``; where generations were stored after the scores, those scored
    alone, as ``scored_coverage``): a comparison's verdict says them beside the cases its
    mean rests on, which a case whose score could not be made leaves fewer."""
    ok = Generation.status == "ok"
    scored = exists().where(Score.generation_id == Generation.id)
    per_config = session.exec(
        select(
            Generation.config_hash,
            func.count(func.distinct(case((and_(ok, scored), Generation.case_uid)))),
            func.count(func.distinct(case((or_(~ok, scored), Generation.case_uid)))),
        )
        .where(Generation.experiment_id == experiment_id)
        .group_by(Generation.config_hash)
    ).all()
    own = experiment_hashes(session, experiment_id)
    return {c: (int(r), int(r) - int(n)) for c, n, r in per_config if c in own}


def _per_config(session: Session, experiment_id: int) -> list[tuple[str, int, int, int]]:
    """Per config of the experiment (not those its spec dropped): its distinct cases
    generated successfully, its successful generations and its distinct cases run."""
    ok = Generation.status == "ok"
    per_config = session.exec(
        select(
            Generation.config_hash,
            func.count(func.distinct(case((ok, Generation.case_uid)))),
            func.sum(case((ok, 1), else_=0)),
            func.count(func.distinct(Generation.case_uid)),
        )
        .where(Generation.experiment_id == experiment_id)
        .group_by(Generation.config_hash)
    ).all()
    own = experiment_hashes(session, experiment_id)
    return [(c, int(n), int(g or 0), int(r)) for c, n, g, r in per_config if c in own]


def _span(fewest: int, most: int) -> str:
    return str(most) if fewest == most else f"{fewest} to {most}"


def scored_coverage(session: Session, experiment: Experiment, coverage: Coverage) -> Coverage:
    """``coverage`` of the scored generations alone, and how many are not scored yet:
    for a board whose scores predate generations stored since (read only then: it joins
    every generation to its scores)."""
    scored = exists().where(Score.generation_id == Generation.id)
    per_config = session.exec(
        select(
            Generation.config_hash,
            func.count(func.distinct(case((scored, Generation.case_uid)))),
            func.sum(case((scored, 0), else_=1)),
        )
        .where(Generation.experiment_id == experiment.id, Generation.status == "ok")
        .group_by(Generation.config_hash)
    ).all()
    own = experiment_hashes(session, experiment.id)
    counts = [n for config, n, _ in per_config if config in own]
    unscored = sum(int(n or 0) for config, _, n in per_config if config in own)
    return replace(
        coverage,
        fewest=min(counts, default=0),
        most=max(counts, default=0),
        unscored=unscored,
        running=experiment.status == "running",
    )


def named_cases(experiment: Experiment) -> int:
    """How many cases the experiment's spec's ``cases:`` names (0: the whole suite)."""
    return len((experiment.spec or {}).get("cases") or ())


def ran_first_cases(session: Session, name: str) -> bool:
    """Whether the last run of experiment ``name`` took the suite's first cases: a smoke
    run, or one cut by ``--limit`` (but the calibrated level's, whose order is seeded)."""
    level = _last_level(session, name)
    return level.startswith("smoke") or ("limit" in level and not level.startswith("calib"))


def _last_level(session: Session, name: str) -> str:
    """The level the last run of ``name`` ran at, as ``record_level`` stored it ("" if
    none was)."""
    level = session.exec(
        select(ExperimentRun.level).where(ExperimentRun.experiment == name)
    ).scalar()
    return level or ""


def short_configs(session: Session, experiment_id: int, total: int) -> dict[str, int]:
    """Per config, the distinct cases it has a successful generation for, where one of
    them has fewer than ``total`` (its suite's): their full-suite figures are estimates
    (``evaluation.itembank.experiment_estimates``). Empty when every config ran every
    case, as most did (one grouped count: `show` imports the item banks only otherwise)."""
    own = experiment_hashes(session, experiment_id)
    done = {
        config: n
        for config, n in session.exec(
            select(Generation.config_hash, func.count(func.distinct(Generation.case_uid)))
            .where(Generation.experiment_id == experiment_id, Generation.status == "ok")
            .group_by(Generation.config_hash)
        ).all()
        if config in own
    }
    return _short(done, total)


def _short(done: dict[str, int], total: int) -> dict[str, int]:
    return done if any(n < total for n in done.values()) else {}
