"""Newer data than the selector answering learned from: more generations stored than its
version learned from, or configs it never saw, said in the answer with how to weigh them
(a later version, a retrain, a promotion), and the `next:` lines asking for what is
stored already since that version was trained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd
from sqlmodel import Session

from evaluation.wording import counted
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
    simulated = learned_simulated(model)
    return "evalflow retrain --include-simulated" if simulated else "evalflow retrain"


def learned_simulated(model: SelectorModel) -> bool:
    """Whether ``model`` learned from SIMULATED generations (`retrain --include-simulated`):
    what is stored since is then counted with the simulated ones."""
    evidence = model.evidence
    return "n_simulated" in evidence and float(evidence["n_simulated"].sum()) > 0


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
    learned: Callable[[SelectorModel], bool],
    retrain: str,
) -> str:
    """How to weigh what version ``version_id`` never saw: a later version, ``retrain``
    (:func:`retrain_command`), or, where the newest version learned it all (``learned``
    of its model) and was not promoted, how to get it promoted (a retrain on the same
    data stores nothing)."""
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
        has_all = learned(load_model(session, newest))
    except LOAD_ERRORS:
        has_all = False
    if not has_all:
        return text + f"; or `{retrain}` to train on everything"
    return text if newest.promoted else f"{text}; {promotion_advice(session, newest)}"


def new_cases(session: Session, model: SelectorModel, answer: Recommendation) -> pd.DataFrame:
    """The cases of ``answer``'s task type stored for the configs its `next:` lines name
    that ``model`` did not learn of them (real ones; simulated too where it learned from
    them: after `retrain --include-simulated`, the demo's spec --write-spec wrote ran,
    and the same lines came back word for word)
    (:func:`evaluation.storage.training.task_cases`' rows, ``case`` = "suite/case id"),
    with ``known``: whether the model learned of the config on that suite at all, and
    ``stored``: the config's cases stored on that suite."""
    from evaluation.storage.training import task_cases

    hashes = sorted({m.option.config_hash for m in answer.measure_next})
    simulated = learned_simulated(model)
    found = task_cases(session, answer.task_type, hashes, include_simulated=simulated)
    pairs = found["config_hash"].astype(str) + "|" + found["suite"].astype(str)
    learned = _learned_cases(model, answer.task_type)
    found = found.assign(
        case=found["suite"].astype(str) + "/" + found["case_id"].astype(str),
        known=pairs.isin({key.split("/", 1)[0] for key in learned}),
        stored=pairs.map(pairs.value_counts()),
    )
    return found[~(found["config_hash"].astype(str) + "|" + found["case"]).isin(learned)]


def _learned_cases(model: SelectorModel, task_type: str) -> set[str]:
    """The config|suite/case keys ``model`` learned quality from on ``task_type``."""
    scores = model.case_scores[model.case_scores["task_type"] == task_type]
    return set(scores["config_hash"].astype(str) + "|" + scores["case"].astype(str))


def stored_since(
    session: Session,
    answer: Recommendation,
    model: SelectorModel,
    version_id: int | None,
    retrain: str,
) -> Recommendation:
    """``answer`` without the `next:` measurements stored since version ``version_id``
    (``model``) was trained: cases of the config it did not learn of, on every suite its
    line names (on any, where it names none). Each such line says so and how to weigh
    it, and ``measure_next`` (what --write-spec writes) leaves it out; a line with such
    cases on some of its suites asks for the others alone. A second user ran the pick on
    the suite its `next:` line named and the answer still asked for it; a newcomer ran
    the 12 cases `measure more of … (12 cases so far, 12 more on qa-short)` asked for,
    and the line came back word for word: the check was by (config, suite) pairs the
    version never saw, and that config had run on qa-short before."""
    if len(answer.suggestions) != len(answer.measure_next) or not answer.measure_next:
        return answer
    new = new_cases(session, model, answer)
    if new.empty:
        return answer
    lines, kept = [], []
    for text, item in zip(answer.suggestions, answer.measure_next, strict=True):
        key = item.option.config_hash
        mine = new[new["config_hash"].astype(str) == key]
        ran = tuple(sorted(set(mine["suite"].astype(str)) & set(item.suites or mine["suite"])))
        mine = mine[mine["suite"].astype(str).isin(ran)]
        if not ran:
            lines.append(text)
            kept.append(item)
            continue
        since = (
            f"has been run on {_where(mine, ran)} since version "
            f"{version_id} was trained ({counted(int(mine['n'].sum()), 'generation')} stored)"
        )
        learned = _has_cases(mine)
        later = _later(session, version_id, answer.task_type, "it", learned, retrain)
        rest = tuple(s for s in item.suites if s not in ran)
        if not rest:
            lines.append(
                f"{item.option.label} (hash {key}) {since}, so it is not to be measured "
                f"again: {later}"
            )
            continue
        lines.append(
            f"measure {item.option.label} (hash {key}) on {suites_label(rest)} still: it "
            f"{since}, not on {suites_label(rest)}; {later}"
        )
        kept.append(replace(item, suites=rest))
    return replace(answer, suggestions=tuple(lines), measure_next=tuple(kept))


def _where(mine: pd.DataFrame, ran: tuple[str, ...]) -> str:
    """The cases of ``ran`` (suites) a config has stored that the version did not learn
    of it (``mine``: :func:`new_cases`' rows of it): `12 more cases of qa-short (24
    stored)` where it learned of some there, `12 cases of qa-short` where of none."""
    parts = []
    for suite in ran:
        here = mine[mine["suite"].astype(str) == suite]
        if bool(here["known"].any()):
            more = counted(len(here), "more case", "more cases")
            parts.append(f"{more} of {suite} ({int(here['stored'].iloc[0])} stored)")
        else:
            parts.append(f"{counted(len(here), 'case')} of {suite}")
    return " and ".join(parts)


def _has_cases(cases: pd.DataFrame) -> Callable[[SelectorModel], bool]:
    """Whether a model learned of every case of ``cases`` (:func:`new_cases`' rows)."""
    keys = set(cases["config_hash"].astype(str) + "|" + cases["case"].astype(str))

    def learned(model: SelectorModel) -> bool:
        found = model.case_scores
        return keys <= set(found["config_hash"].astype(str) + "|" + found["case"].astype(str))

    return learned


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
    keys = _keys(unseen)

    def learned(model: SelectorModel) -> bool:
        return keys <= model.trained_keys

    them = "them" if count != 1 else "it"
    return (
        f"{count} measured {task_type} configuration{'s' * (count != 1)} stored that version "
        f"{version_id} never saw, so this answer does not weigh {them}"
        f": {shown}; {_later(session, version_id, task_type, them, learned, retrain)}"
    )
