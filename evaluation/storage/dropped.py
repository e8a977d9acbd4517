"""Configs an experiment's spec dropped. An experiment's configs are those of the spec it
last ran: a spec edited under the same name (a grid value removed or changed) leaves
configs stored that it no longer has. They move to ``dropped_configs``, out of every
reading of the experiment's configs; their generations and scores stay stored, and a
spec that has one again moves it back, resumed rather than generated again (the unit of
work is still config hash, case, sample). docs/specs-and-sweeps.md, "Editing a spec"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Select, delete, func, select, union_all
from sqlmodel import Session

from evaluation.labels import distinguishing_labels
from evaluation.storage.db import insert_ignoring_conflicts
from evaluation.storage.models import (
    ConfigRow,
    DroppedConfig,
    Experiment,
    ExperimentConfig,
    Generation,
)

if TYPE_CHECKING:
    from evaluation.spec import Config

SHOWN = 5  # dropped configs named in a line; the rest counted
#: The SQL condition on a generation ``g`` of experiment ``:e`` that keeps those of its
#: configs, not of those its spec dropped: every frame of an experiment's generations
#: reads it as its last spec has it.
OWN_CONFIGS = (
    "g.config_hash IN (SELECT config_hash FROM experiment_configs WHERE experiment_id = :e)"
)


@dataclass(frozen=True)
class Dropped:
    """The configs an experiment's last spec dropped: their labels as the experiment's
    other outputs show them (what varies between all its configs) and their generations
    stored: done (what a spec that has them again does not generate again) and failed."""

    labels: tuple[str, ...]
    generations: int
    failed: int = 0

    def __bool__(self) -> bool:
        return bool(self.labels)

    def named(self) -> str:
        """ "t=0.5, t=1" (the first ``SHOWN``, then "and N more")."""
        shown = ", ".join(self.labels[:SHOWN])
        more = len(self.labels) - SHOWN
        return shown + (f" and {more} more" if more > 0 else "")

    def words(self) -> str:
        """ "2 stored configs (t=0.5, t=1; 72 generations done, 3 failed)"."""
        n = len(self.labels)
        stored = f"{self.generations} generation{'s' * (self.generations != 1)} done"
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{n} stored config{'s' * (n != 1)} ({self.named()}; {stored}{failed})"

    def note(self, experiment: str = "") -> str:
        """The line under what leaves them out (a leaderboard; a comparison, naming the
        ``experiment``): "Not above: 2 stored configs (...), which the spec ..."."""
        of = f" of {experiment!r}" if experiment else ""
        return (
            f"Not above: {self.words()}{of}, which the spec last run no longer has; "
            "kept stored, and back, without generating them again, when a spec has them."
        )


NONE_DROPPED = Dropped((), 0)


def set_experiment_configs(session: Session, experiment_id: int, configs: Sequence[Config]) -> None:
    """Make ``configs`` the experiment's, in this order: those it had that are not among
    them move to ``dropped_configs``, dropped ones among them move back."""
    current = [c.hash for c in configs]
    rows = session.exec(
        select(ExperimentConfig).where(ExperimentConfig.experiment_id == experiment_id)
    ).scalars()
    gone = [row for row in rows if row.config_hash not in set(current)]
    insert_ignoring_conflicts(
        session,
        DroppedConfig,
        [
            {"experiment_id": experiment_id, "config_hash": r.config_hash, "position": r.position}
            for r in gone
        ],
    )
    if gone:
        session.exec(
            delete(ExperimentConfig).where(
                ExperimentConfig.experiment_id == experiment_id,
                ExperimentConfig.config_hash.in_([r.config_hash for r in gone]),
            )
        )
    session.exec(
        delete(DroppedConfig).where(
            DroppedConfig.experiment_id == experiment_id, DroppedConfig.config_hash.in_(current)
        )
    )
    insert_ignoring_conflicts(  # the spec's order: "sweep order" is the last spec's
        session,
        ExperimentConfig,
        [
            {"experiment_id": experiment_id, "config_hash": h, "position": i}
            for i, h in enumerate(current)
        ],
        update_columns=["position"],
    )


def dropped_configs(session: Session, experiment_id: int) -> Dropped:
    """The experiment's dropped configs, labelled against all its configs."""
    kept = session.exec(
        select(ConfigRow.label)
        .join(ExperimentConfig, ExperimentConfig.config_hash == ConfigRow.hash)
        .where(ExperimentConfig.experiment_id == experiment_id)
    ).scalars()
    dropped = session.exec(
        select(ConfigRow.hash, ConfigRow.label)
        .join(DroppedConfig, DroppedConfig.config_hash == ConfigRow.hash)
        .where(DroppedConfig.experiment_id == experiment_id)
        .order_by(DroppedConfig.position, ConfigRow.label)
    ).all()
    return _dropped(session, experiment_id, list(kept), [(h, label) for h, label in dropped])


def not_in_spec(session: Session, experiment: str, spec: dict[str, str]) -> Dropped:
    """What a run of a spec with configs ``spec`` (hash -> label) under the name
    ``experiment`` will drop (``dropped_configs`` once it has): the configs the
    experiment has or had that the spec does not, in the same words and figures (`plan`
    says it before the run)."""
    found = session.exec(select(Experiment.id).where(Experiment.name == experiment)).first()
    if found is None:
        return NONE_DROPPED
    held = held_config_labels(session, experiment)
    gone = [(h, label) for h, label in held.items() if h not in spec]
    return _dropped(session, int(found[0]), list(spec.values()), gone)


def _dropped(
    session: Session, experiment_id: int, kept: list[str], gone: list[tuple[str, str]]
) -> Dropped:
    """``gone`` (hash, label, in order) labelled against them and the ``kept`` labels,
    with their generations counted by status."""
    if not gone:
        return NONE_DROPPED
    short = distinguishing_labels([*kept, *(label for _, label in gone)])
    counts = dict(
        session.exec(
            select(Generation.status, func.count())
            .where(
                Generation.experiment_id == experiment_id,
                Generation.config_hash.in_([h for h, _ in gone]),
            )
            .group_by(Generation.status)
        ).all()
    )
    return Dropped(
        tuple(short[label] for _, label in gone),
        int(counts.get("ok", 0)),
        int(counts.get("failed", 0)),
    )


def held_config_labels(session: Session, experiment: str) -> dict[str, str]:
    """Config hash -> label of every config ``experiment`` has or had (its spec's and
    those an edit dropped), in the order of their spec (as `run`'s warning lists them)."""
    held = union_all(
        *(
            select(t.config_hash, t.position)
            .join(Experiment, Experiment.id == t.experiment_id)
            .where(Experiment.name == experiment)
            for t in (ExperimentConfig, DroppedConfig)
        )
    ).subquery()
    rows = session.exec(
        select(ConfigRow.hash, ConfigRow.label)
        .join(held, held.c.config_hash == ConfigRow.hash)
        .order_by(held.c.position, ConfigRow.label)
    ).all()
    return dict(rows)


def has_dropped(session: Session, experiment_id: int) -> bool:
    """Whether the experiment's spec dropped any config (one key lookup)."""
    found = session.exec(
        select(DroppedConfig.config_hash).where(DroppedConfig.experiment_id == experiment_id)
    ).first()
    return found is not None


def own_configs(experiment_id: int) -> Select:
    """The hashes of the experiment's configs (its last spec's), as a subquery for
    ``config_hash.in_(...)``."""
    return select(ExperimentConfig.config_hash).where(
        ExperimentConfig.experiment_id == experiment_id
    )


def experiment_hashes(session: Session, experiment_id: int) -> set[str]:
    """The hashes of the experiment's configs (its last spec's)."""
    return set(session.exec(own_configs(experiment_id)).scalars())
