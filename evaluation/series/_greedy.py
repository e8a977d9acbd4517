"""Greedy outputs that changed between two runs of a config: at temperature 0 a model
repeats its answers, so most of them changing at once says the model, its server or
the prompt changed, even where the server names no digest (an OpenAI-compatible one:
a different model served under the same name). A note, not an event: the watch still
compares across it, so the alarms it may cause still show. It compares with a night the
watch took as normal: not one it alarmed on (the night back to normal after a degraded
host's would say its answers changed), not a partial one (a smoke run's few cases), and
a partial last run gets no note."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import pandas as pd
from sqlmodel import Session, select

from evaluation.series._series import SeriesPoint
from evaluation.storage.models import ConfigRow

CHANGED_SHARE = 0.5
"""A note when at least this share of a greedy config's shared cases changed output: a
server's batching may change a few greedy answers, not half of them."""


def greedy_changes(
    session: Session,
    points: Sequence[SeriesPoint],
    done: Sequence[int],
    configs: Sequence[str],
    generations: Callable[[str], pd.DataFrame],
    alarmed: Collection[str],
    partial: Collection[tuple[str, str]],
) -> list[str]:
    """A note per config of ``configs`` run at temperature 0 whose outputs on the last
    completed run (``points[done[-1]]``) differ from its previous completed run that is
    neither ``alarmed`` (runs the watch alarmed on) nor ``partial`` (``(config, run)``
    pairs) on at least ``CHANGED_SHARE`` of their shared cases (first sample,
    successful); none where the last run is partial for the config."""
    if len(done) < 2:
        return []
    greedy = set(
        session.exec(
            select(ConfigRow.hash).where(
                ConfigRow.hash.in_(list(configs)), ConfigRow.temperature == 0
            )
        ).all()
    )
    last = points[done[-1]]
    notes = []
    for config in [c for c in configs if c in greedy]:
        if (config, last.experiment) in partial:
            continue
        before = next(
            (
                points[i]
                for i in reversed(done[:-1])
                if config in points[i].configs
                and points[i].experiment not in alarmed
                and (config, points[i].experiment) not in partial
            ),
            None,
        )
        if before is None:
            continue
        now, then = (
            _outputs(generations(last.experiment), config),
            _outputs(generations(before.experiment), config),
        )
        shared = now.index.intersection(then.index)
        changed = int((now[shared] != then[shared]).sum())
        if shared.size and changed >= CHANGED_SHARE * shared.size:
            notes.append(
                f"{changed} of {shared.size} greedy outputs (temperature 0) of "
                f"{last.configs[config]} changed since {before.experiment}: they repeat "
                "unless the model, its server or the prompt changed (another model served "
                "under the same name, say); still compared across"
            )
    return notes


def _outputs(frame: pd.DataFrame, config: str) -> pd.Series:
    """Per case id: the first sample's output where it succeeded."""
    rows = frame[
        (frame["config_hash"] == config) & (frame["status"] == "ok") & (frame["sample_index"] == 0)
    ]
    return rows.set_index("case_id")["output"].fillna("")
