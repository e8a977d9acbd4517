"""What runs in progress will still generate: a spec planned (or written by `recommend
--write-spec`) while a run of the same configs on the same suite goes on has work that
run generates anyway, and a new experiment stores its own, so running the spec then
generates it twice (a newcomer's 5 greedy cases, 61 s, identical outputs). `plan` and
`--write-spec` say so (``evaluation.run.Sweep.running_note``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlmodel import Session

from evaluation.storage.models import Experiment, ExperimentConfig, ExperimentRun
from evaluation.storage.runs import experiment_status, starting_runs
from evaluation.storage.throughput import stored_keys


@dataclass(frozen=True)
class RunningWork:
    """A run in progress on a suite, as far as the database tells what it will generate:
    its ``configs`` (of those asked about), the ``cases`` its spec names (None: every
    case of the suite), the first ``limit`` of them where `--limit` cuts them, its samples
    per case, what it stored already, and whether its level runs every such case
    (``exact``; a smoke or subset level runs part of them, an unrecorded one may: "up
    to")."""

    experiment: str
    status: str  # "running" or "starting"
    configs: frozenset[str]
    cases: tuple[str, ...] | None
    limit: int | None
    samples: int
    stored: frozenset[tuple[str, str, int]]
    exact: bool

    def will_generate(
        self, config: str, case: str, uid: str, sample: int, order: list[str]
    ) -> bool:
        """Whether this run still has the generation of ``config`` on ``case`` (its uid
        ``uid``) for ``sample`` to make; ``order``: the suite's case ids, in its order."""
        if config not in self.configs or sample >= self.samples:
            return False
        if (config, uid, sample) in self.stored:
            return False
        named = order if self.cases is None else [c for c in order if c in self.cases]
        return case in (named if self.limit is None else named[: self.limit])


def running_work(
    session: Session, suite: str, configs: Collection[str], experiment: str
) -> list[RunningWork]:
    """The runs in progress on ``suite`` (running, or starting with their experiment
    stored, as `status` shows them), other than ``experiment``'s, that run some of
    ``configs`` (config hashes)."""
    found = []
    starting = {run.experiment for run in starting_runs(session)}
    rows = session.exec(
        select(Experiment).where(
            Experiment.suite == suite,
            Experiment.name != experiment,
            or_(Experiment.status == "running", Experiment.name.in_(starting)),  # type: ignore[attr-defined]
        )
    ).scalars()
    for row in rows:
        status = "starting" if row.name in starting else experiment_status(session, row).status
        if status not in ("running", "starting"):
            continue
        hashes = session.exec(
            select(ExperimentConfig.config_hash).where(
                ExperimentConfig.experiment_id == row.id,
                ExperimentConfig.config_hash.in_(list(configs)),  # type: ignore[attr-defined]
            )
        ).scalars()
        shared = frozenset(hashes)
        if not shared:
            continue
        run = session.get(ExperimentRun, row.name)
        # no level recorded yet (a claim that did not say it): it may run part of them
        level, _, limit = ((run.level if run else None) or "").partition(", limit ")
        named = (row.spec or {}).get("cases")
        found.append(
            RunningWork(
                row.name,
                status,
                shared,
                tuple(map(str, named)) if named else None,
                int(limit) if limit.isdigit() else None,
                row.samples_per_case,
                frozenset(stored_keys(session, row.name)),
                level == "full",
            )
        )
    return found
