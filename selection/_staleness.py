"""Newer data than the selector answering learned from: more generations stored than its
version learned from, or configs it never saw, said in the answer with how to weigh them
(a later version, a retrain, a promotion), and the `next:` lines asking for what is
stored already since that version was trained."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from sqlmodel import Session

from selection._candidates import params_label
from selection.model import SelectorModel
from selection.recommendation import MAX_LISTED, Recommendation
from selection.schema import SelectorVersion
from selection.suite_mix import suites_label


def retrain_command(model: SelectorModel) -> str:
    """The `retrain` that trains on the data ``model`` learned from: with
    --include-simulated where it learned from SIMULATED generations (a plain `evalflow
    retrain`, as the mixed-metrics note advised after the demo, exits 1 on a database
    with only simulated results, or leaves them out)."""
    evidence = model.evidence
    simulated = "n_simulated" in evidence and float(evidence["n_simulated"].sum()) > 0
    return "evalflow retrain --include-simulated" if simulated else "evalflow retrain"


def retrain_advice(retrain: str, them: str) -> str:
    """The one advice to retrain on what the answering version did not learn from (more
    generations, or configs it never saw), with ``retrain`` (:func:`retrain_command`): a
    newcomer's `-q` answer said "`evalflow retrain` trains a version that has them" and the
    full one "`evalflow retrain --include-simulated` trains on them" of one state."""
    return f"`{retrain}` trains on {them} and compares"


def newer_data_note(
    session: Session, version: SelectorVersion, model: SelectorModel, task_type: str
) -> str | None:
    """That more generations are stored than ``version`` learned from (of its kind: with
    the simulated ones where it learned from them), and the later version that learned
    from more of them; None where there is neither. A newcomer's answer from version 3
    said "measured: 10 cases" of a config with 36 stored, with no word that version 5
    had learned from them (not promoted against version 3's 0.00 of 3 flat configs).
    Where configs are stored that it never saw, :func:`unseen_note` says this."""
    from evaluation.storage.training import training_generations
    from selection.versions import current_version, list_versions, promotion_advice

    retrain = retrain_command(model)
    stored = training_generations(session, include_simulated="--include-simulated" in retrain)
    learned = version.n_generations
    later = [
        v
        for v in list_versions(session)
        if (v.id or 0) > (version.id or 0) and learned < v.n_generations <= max(stored, learned)
    ]
    if later:  # the advice as things stand: v2 current, "or retrain to compare them
        # again" (a retrain on the same data stores nothing) was a newcomer's loop
        newest = max(later, key=lambda v: (v.n_generations, v.id or 0))
        current = current_version(session)
        is_current = current is not None and current.id == newest.id
        head = (
            f"version {newest.id}{', the current one,' if is_current else ''}"
            f"{'' if newest.promoted else ', not promoted,'} learned from "
            f"{newest.n_generations - learned} more generations than version {version.id}, "
            f"which answers; `evalflow recommend {task_type}"
            f"{'' if is_current else f' --version {newest.id}'}` answers from version {newest.id}"
        )
        if stored > newest.n_generations:
            more = stored - newest.n_generations
            return f"{head}; {retrain_advice(retrain, f'the {more} stored since')}"
        return head if newest.promoted else f"{head}; {promotion_advice(session, newest)}"
    if stored > learned:
        return (
            f"{stored - learned} more generations are stored than version {version.id}, "
            f"which answers, learned from: {retrain_advice(retrain, 'them')}"
        )
    return None


def unseen_measurements(session: Session, model: SelectorModel, task_type: str) -> pd.DataFrame:
    """The real (config, suite) measurements of ``task_type`` stored that ``model`` was
    not trained on (:func:`evaluation.storage.training.task_measured`'s rows)."""
    from evaluation.storage.training import task_measured

    stored = task_measured(session, task_type)
    if stored.empty:
        return stored
    keys = stored["config_hash"].astype(str) + "|" + stored["suite"].astype(str)
    return stored[~keys.isin(model.trained_keys)]


def _later(
    session: Session,
    version_id: int | None,
    task_type: str,
    them: str,
    keys: set[str],
    retrain: str,
) -> str:
    """How to weigh what version ``version_id`` never saw (``keys``: config|suite): a later
    version, ``retrain`` (:func:`retrain_command`), or, where the newest version has them
    all and was not promoted, how to get it promoted (a retrain on the same data stores
    nothing)."""
    from selection.versions import LOAD_ERRORS, list_versions, load_model, promotion_advice

    later = [v for v in list_versions(session) if v.id is not None and v.id > (version_id or 0)]
    if not later:
        return retrain_advice(retrain, them)
    newest = later[-1]
    text = (
        f"version {newest.id}, trained since{'' if newest.promoted else ' and not promoted'}"
        f", may have {them}: `evalflow recommend {task_type} --version {newest.id}`"
    )
    try:
        has_all = keys <= load_model(session, newest).trained_keys
    except LOAD_ERRORS:
        has_all = False
    if not has_all:
        return text + f"; or `{retrain}` to train on everything"
    return text if newest.promoted else f"{text}; {promotion_advice(session, newest)}"


def stored_since(
    session: Session,
    answer: Recommendation,
    unseen: pd.DataFrame,
    version_id: int | None,
    retrain: str,
) -> Recommendation:
    """``answer`` without the `next:` measurements that are stored but that version
    ``version_id`` never saw (a config on every suite its line names; on any, where it
    names none): each such line says so and how to weigh it, and ``measure_next`` (what
    --write-spec writes) leaves it out. A second user ran the pick on the suite its
    `next:` line named, the retrain was not promoted, and the answer still asked for that
    measurement, and --write-spec wrote the same spec again."""
    if len(answer.suggestions) != len(answer.measure_next) or unseen.empty:
        return answer
    suites_of = unseen.groupby(unseen["config_hash"].astype(str))["suite"].agg(set)
    generations = unseen.groupby(unseen["config_hash"].astype(str))["n"].sum()
    lines, kept = [], []
    for text, item in zip(answer.suggestions, answer.measure_next, strict=True):
        key = item.option.config_hash
        stored = suites_of.get(key, set())
        if not stored or not set(item.suites) <= stored:
            lines.append(text)
            kept.append(item)
            continue
        where = suites_label(tuple(sorted(stored & set(item.suites or stored))))
        lines.append(
            f"{item.option.label} (hash {key}) has been run on {where} since version "
            f"{version_id} was trained ({int(generations[key])} generations stored), so "
            f"it is not to be measured again: "
            f"{_later(session, version_id, answer.task_type, 'it', _keys(unseen), retrain)}"
        )
    return replace(answer, suggestions=tuple(lines), measure_next=tuple(kept))


def _keys(measured: pd.DataFrame) -> set[str]:
    """The config|suite keys of ``measured`` (rows with config_hash and suite)."""
    return set(measured["config_hash"].astype(str) + "|" + measured["suite"].astype(str))


def unseen_note(
    session: Session, unseen: pd.DataFrame, version_id: int | None, task_type: str, retrain: str
) -> str | None:
    """The real configs measured on ``task_type`` that the version answering never saw
    (``unseen``: on some suite), and how to include them; None if it saw every one. A
    newcomer's retrain after measuring two configs was not promoted, and `recommend`
    answered from the version before without a word of them (one had scored 90%)."""
    if unseen.empty:
        return None
    labels = []
    for config_hash, rows in unseen.groupby("config_hash", sort=False):
        suites = ", ".join(f"{r.suite} ({r.n} generations)" for r in rows.itertuples())
        labels.append(f"{params_label(rows.iloc[0])} (hash {config_hash}) on {suites}")
    shown = "; ".join(labels[:MAX_LISTED]) + (
        f"; and {len(labels) - MAX_LISTED} more" if len(labels) > MAX_LISTED else ""
    )
    count = unseen["config_hash"].nunique()
    them = "them" if count != 1 else "it"
    return (
        f"{count} measured {task_type} configuration{'s' * (count != 1)} stored that version "
        f"{version_id} never saw, so this answer does not weigh {them}"
        f": {shown}; {_later(session, version_id, task_type, them, _keys(unseen), retrain)}"
    )
