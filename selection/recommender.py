"""``recommend``: pick a configuration for a task type under limits.

Every known configuration (or the given ``candidates``) is scored for the task type:
measured configs by their measurements combined with the model's prediction
(:mod:`selection.shrinkage`), the others by the prediction. A candidate is feasible when
its estimated p95 latency, raised by ``SAFETY_Z`` standard deviations (of the ensemble's
spread for a predicted config, of the combined estimate for a measured one), and its
estimated median times its model's measured tail ratio (p95 / median, a
distribution-free bound over the model's generations: latency is not assumed log-normal
where the data can tell) are within ``max_latency_s``; for a config never measured on
the task type the first is at most its median, raised by its margin, times that ratio
(:func:`selection._scoring._with_tail_bounds`). Likewise its predicted energy per
generation must be within ``max_energy_j`` and its estimated quality reaches
``min_quality``. For a config measured on many generations that estimate is its
measurement, so a config that meets the limits by its measurements is feasible unless it
does so only within their noise (the margin keeps true p95 violations rare). A measured
config the margin alone keeps out whose own measurements meet the limits is a candidate
too where no candidate meets, with its margin, the figure its measurements meet
(:mod:`selection._measured_latency`: judged per config, so a looser limit never refuses
what a tighter one admits), and the answer says so: "nothing meets the limits" would
contradict what the user can read in the leaderboard. Among feasible candidates
``prefer`` decides: "quality" (highest estimated quality, then fastest), "speed" (the
best estimated quality among the candidates whose median latency ties with the fastest's
within their noise: :func:`selection._choice.speed_ties`; then the lowest median
latency) or weights ``{"quality": wq, "latency": wl, "energy": we}`` on
min–max-normalised estimates (score = wq·quality − wl·latency − we·energy). With
"quality", a measured-feasible config significantly better than the pick replaces it
(:mod:`selection._evidence_rule`: a paired test on the cases both ran), and the pick
must be estimated significantly better than the best-estimated measured-feasible config,
or that config is kept (unless the pick's own estimate rests mostly on measurements: the
multilevel estimate from the task type's measured configs). Where those configs are too
few for that model (``_thin_data``), the pick is not held to a floor; where the by-hand
choice is measured above its estimate the answer says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.spec import Config
from evaluation.storage.db import database_name, storage_problem
from evaluation.storage.snapshot import asked_url, snapshot_note
from selection._candidates import (
    candidate_table,
    none_known,
    option,
    params_label,
    real_only,
)
from selection._choice import (
    LATENCY_REASON,
    Prefer,
    choose,
    drivers,
    miss,
    pareto,
    recorded_weights,
    set_aside,
    violations,
)
from selection._considered import considered
from selection._corpus_board import Boards, corpus_boards, ranked_apart
from selection._db import engine_for, not_there_yet, tables_refused
from selection._evidence_rule import (
    evidence_override,
    hand_floor,
    measured_above,
    measured_feasible,
    measured_over_guess,
    paired_tests,
    uninformed,
)
from selection._measure_next import (
    MAX_TO_MEASURE,
    measure_next,
    missing_suites,
    needs_cases_note,
    never_run,
    rest_of_suites_note,
    unrun_cases,
)
from selection._measured_higher import measured_higher_note
from selection._measured_latency import (
    feasible_candidates,
    measured_latency_note,
    meeting_by_measurements,
    met_by_measurements_note,
)
from selection._notes import (
    assumptions_note,
    guess_note,
    metric_note,
    mix_note,
    on_its_cases,
    only_elsewhere,
    prompt_note,
    selection_note,
    set_aside_note,
    shared_note,
    simulated_left_out_note,
    simulated_training_note,
    speed_tie,
    thin_data_note,
    unplaced_latency_note,
    weight_note,
)
from selection._quality_floor import QUALITY_REASON, floor_note
from selection._refused import named_refused
from selection._request import (
    check_database_url_argument,
    check_engine_argument,
    check_request,
)
from selection._scoring import ranks_latency, scored_candidates
from selection._staleness import (
    newer_data_note,
    retrain_command,
    stored_since,
    unseen_measurements,
    unseen_note,
)
from selection._tail_only import tail_only_next
from selection._unread import unread_note
from selection.model import SelectorModel
from selection.quality import quality_metrics_used
from selection.quality_text import quality
from selection.recommendation import (
    Option,
    Recommendation,
    ToMeasure,
)
from selection.schema import RecommendationLog, SelectorVersion
from selection.shrinkage import (
    assumption_checks,
    quality_fit,
)

MAX_ALTERNATIVES = 5
MAX_CLOSEST = 3
MAX_REFUSED = 3
"""Candidates estimated better than the pick that the limits refused, shown with why
(a newcomer found configs meeting a limit by their measurements not mentioned at all),
the near misses first (:mod:`selection._refused`)."""
SHARED_NOTE_SD = 0.01
"""The shared case error is said (a note) from one point of standard deviation."""


def recommend(
    task_type: str,
    *,
    max_latency_s: float | None = None,
    max_energy_j: float | None = None,
    min_quality: float | None = None,
    prefer: Prefer = "quality",
    candidates: Sequence[Config | str] | None = None,
    version: int | None = None,
    input_chars: float | None = None,
    engine: Engine | None = None,
    database_url: str | None = None,
) -> Recommendation:
    """Recommend a config for ``task_type`` and log the answer (its ``id`` is what
    ``record_outcome`` takes). ``version`` picks a selector version (default: the
    current one); ``input_chars`` the input length (default: the task type's typical
    one). Bad arguments raise ValueError; everything else is an answer with a status."""
    request = check_request(
        task_type,
        max_latency_s,
        max_energy_j,
        min_quality,
        prefer,
        candidates,
        version,
        input_chars,
    )
    check_engine_argument(engine)
    if database_url is not None:
        check_database_url_argument(database_url)
    try:
        with engine_for(engine, database_url, reads_only=True) as bound, Session(bound) as session:
            answer = _answer(session, request, candidates)
            if answer.status == "unavailable":  # a refusal (no such version): nothing logged
                return answer
            if unlogged := _not_logged(bound):
                return replace(answer, notes=(*answer.notes, unlogged), unlogged=unlogged)
            return _logged(session, answer, database_name(bound))
    except StorageError as exc:  # it names the database ("cannot open the results database")
        return Recommendation("unavailable", task_type, str(exc), request=request)
    except SQLAlchemyError as exc:
        said = f"cannot use the results database: {storage_problem(exc)}"
        return Recommendation("unavailable", task_type, said, request=request)


def _not_logged(engine: Engine) -> str:
    """Why an answer read from ``engine`` is not logged there: a fresh home (a read does
    not create its database), a snapshot (no write to try), a database without the log
    table that cannot take it; "" where it is logged."""
    if (missing := not_there_yet(engine)) is not None:
        return (
            f"not logged: no results database at {missing} yet (the first `evalflow run` makes it)"
        )
    if snapshot := snapshot_note(engine):
        return f"not logged: {snapshot}"
    if refused := tables_refused(engine):
        return f"not logged in the results database {database_name(engine)}: {refused}"
    return ""


def _logged(session: Session, answer: Recommendation, database: str) -> Recommendation:
    """``answer`` with the ``id`` of its log row; where the database takes no write (a
    teammate reading a shared copy read-only) the answer stands, not logged, and says so
    (the log keeps what ``record_outcome`` attaches outcomes to, not what the answer is
    made of: a newcomer's read-only `recommend` printed the INSERT and its parameters)."""
    log = RecommendationLog(
        task_type=answer.task_type,
        status=answer.status,
        version_id=answer.version_id,
        config_hash=answer.choice.config_hash if answer.choice else None,
        request=answer.request,
        answer=answer.to_dict(),
    )
    session.add(log)
    try:
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        said = storage_problem(exc, asked=asked_url(session.get_bind()))  # mode=ro: said
        unlogged = f"not logged in the results database {database}: {said}"
        return replace(answer, notes=(*answer.notes, unlogged), unlogged=unlogged)
    return replace(answer, id=log.id)


def no_quality_spread(candidates: pd.DataFrame) -> float | None:
    """The one value every measured candidate's quality has, when two or more were
    measured and they all have it (no spread: nothing to choose on); else None."""
    measured = candidates.loc[candidates["measured"].astype(bool), "measured_quality_mean"]
    measured = measured.dropna()
    if len(measured) < 2 or measured.max() - measured.min() > 1e-12:
        return None
    return float(measured.iloc[0])


def recommend_from_model(
    model: SelectorModel,
    task_type: str,
    *,
    max_latency_s: float | None = None,
    max_energy_j: float | None = None,
    min_quality: float | None = None,
    prefer: Prefer = "quality",
    candidates: Sequence[Config | str] | None = None,
    input_chars: float | None = None,
    version_id: int | None = None,
    suite_sizes: Mapping[str, int] | None = None,
    corpus_boards: Boards | None = None,
) -> Recommendation:
    """The recommendation from a loaded selector, without the database; ``suite_sizes``
    (cases per suite, as stored) lets its advice name a suite's cases no config was run
    on (:func:`selection._measure_next.needs_cases_note`); ``corpus_boards`` (the stored
    leaderboards' corpus values: :func:`selection._corpus_board.corpus_boards`) lets it
    say where `show` ranks another config first
    (:func:`selection._corpus_board.ranked_apart`)."""
    request = check_request(
        task_type,
        max_latency_s,
        max_energy_j,
        min_quality,
        prefer,
        candidates,
        version_id,
        input_chars,
    )
    base = {"task_type": task_type, "request": request, "version_id": version_id}
    if task_type not in model.task_types:
        return _no_data_for_task(model, base)
    seen = model.evidence if candidates is not None else considered(model.evidence, task_type)
    base["quality_metrics"] = quality_metrics_used(seen, task_type)
    table, notes = candidate_table(model, candidates, task_type)
    prefer, left_out = recorded_weights(prefer, model)
    notes += [left_out] if left_out is not None else []
    if candidates is None:
        table, simulated = real_only(model, table, task_type)
        if simulated:
            notes.append(simulated_left_out_note(simulated, task_type))
    if table.empty:
        return Recommendation(
            "no_data",
            message="none of the given candidates is known",
            notes=tuple(notes),
            suggestions=none_known(model, candidates or (), task_type),
            **base,
        )
    chars = input_chars if input_chars is not None else model.typical_input_chars[task_type]
    scored = scored_candidates(
        model, table, task_type, chars, pool_sampling=not ranks_latency(prefer)
    )
    if twins := set_aside(table, scored):
        notes.append(set_aside_note(model, twins, task_type))
    table = scored
    base["input_chars"] = chars
    problems, found = violations(table, model, max_latency_s, max_energy_j, min_quality)
    notes += problems
    feasible, by_measurements = feasible_candidates(table, found, max_latency_s, min_quality)
    by_hand = measured_feasible(feasible, max_latency_s, min_quality)
    if feasible.empty:
        scores = sorted(range(len(table)), key=lambda i: miss(table.iloc[i], request))
        closest = tuple(
            option(model, table.iloc[i], task_type, found[i]) for i in scores[:MAX_CLOSEST]
        )
        limits = _limits(request, _met_by_some(found, request))
        message, floor = _unchecked(model, request), None
        if not message and (floor := floor_note(table, found, min_quality, params_label)):
            message = f"no configuration is estimated to meet {limits}: {floor[0]}"
            notes.append(floor[1])
        message = message or f"no configuration is estimated or measured to meet {limits}"
        if max_latency_s is not None and meeting_by_measurements(table, max_latency_s).empty:
            notes.append(measured_latency_note(table, max_latency_s))
        tails = tail_only_next(
            table, found, feasible, max_latency_s, prefer, task_type, MAX_TO_MEASURE
        )
        if (metric := metric_note(model, seen, base, task_type)) is not None:
            notes.append(metric)  # its --min-quality is compared on that scale too
        return Recommendation(
            "infeasible",
            message=message,
            closest=closest,
            notes=tuple(notes),
            suggestions=tuple(text for _, _, text in tails),
            measure_next=tuple(
                ToMeasure(option(model, table.loc[i], task_type)) for i, _, _ in tails
            ),
            quality_floor=floor[1] if floor else "",
            **base,
        )
    chosen = choose(feasible, prefer)
    tie = speed_tie(feasible, chosen) if prefer == "speed" else None
    overruled = None
    if prefer == "quality":
        tests = paired_tests(model, feasible, chosen, by_hand, task_type)
        override = evidence_override(tests)
        if override is not None:
            overruled = option(model, feasible.loc[chosen], task_type)
            chosen = override.index
            notes.append(override.reason)
        thin = _thin_data(model, task_type)
        kept, covariance = None, _shared_error(model, feasible, task_type)
        if thin is None:
            kept = hand_floor(feasible, chosen, by_hand, covariance)
        elif (above := measured_above(feasible, chosen, by_hand)) is not None:
            shared = on_its_cases(model, task_type, above, chosen)
            notes.append(thin_data_note(feasible.loc[above], feasible.loc[chosen], thin, shared))
        if kept is not None:
            overruled = overruled or option(model, feasible.loc[chosen], task_type)
            chosen = kept.index
            notes.append(kept.reason)
        if uninformed(guess := feasible.loc[chosen]):
            measured = measured_over_guess(feasible, chosen)
            if measured is not None:
                overruled = overruled or option(model, guess, task_type)
                chosen = measured
            notes.append(guess_note(table, guess, feasible.loc[chosen], task_type))
        elif thin is None and overruled is None:  # the pick stands: say why, where it needs
            said = measured_higher_note(feasible, chosen, by_hand, tests, covariance)
            notes += [said] if said is not None else []
    if (unread := unread_note(model, feasible.loc[chosen], task_type)) is not None:
        notes.append(unread)
    if prefer == "quality" and (flat := no_quality_spread(table)) is not None:
        notes.append(
            f"quality does not vary: every measured configuration scored {flat:.3g} on it, "
            "so quality cannot decide here; this pick rests on the other estimates "
            "(latency, energy). Choose a metric that tells the outputs apart "
            "(the spec's first metric is the selector's quality)"
        )
    row = feasible.loc[chosen]
    if chosen in by_measurements and max_latency_s is not None:
        any_clear = len(feasible) > len(by_measurements)
        notes.append(met_by_measurements_note(row, len(feasible), max_latency_s, any_clear))
    choice = option(model, row, task_type)
    alternatives = tuple(
        option(model, feasible.loc[i], task_type)
        for i in islice((i for i in pareto(feasible) if i != chosen), MAX_ALTERNATIVES)
    )
    excluded_best = None
    best = table["quality"].idxmax()
    if best not in feasible.index and table.loc[best, "quality"] > row["quality"] + 0.005:
        excluded_best = option(model, table.loc[best], task_type, found[table.index.get_loc(best)])
    better = table[
        ~table.index.isin(feasible.index)
        & (table["quality"] > row["quality"] + 0.005)
        & (table.index != best)
    ]
    named, refused_more = named_refused(
        better, max_latency_s, max_energy_j, min_quality, MAX_REFUSED
    )
    refused_better = tuple(
        option(model, better.loc[i], task_type, found[table.index.get_loc(i)]) for i in named
    )
    target = "latency_p50" if prefer == "speed" else "quality"
    reasons = drivers(model, seen, table, chosen, task_type, chars, target)
    if (cut := prompt_note(row, chars)) is not None:
        notes.append(cut)
    if (elsewhere := only_elsewhere(model, choice, task_type)) is not None:
        notes.append(elsewhere)
    if (unplaced := unplaced_latency_note(model, row, choice)) is not None:
        notes.append(unplaced)
    notes.append(selection_note(row, len(table)))
    if (metric := metric_note(model, seen, base, task_type)) is not None:
        notes.append(metric)
    if len(base["quality_metrics"]) == 1 and corpus_boards:
        shown = measured_feasible(table, max_latency_s, min_quality)
        refused = {
            i: why for i, why in zip(table.index, found, strict=True) if i not in feasible.index
        }
        metric = next(iter(base["quality_metrics"]))
        limited = bool(_limits(request))
        if apart := ranked_apart(metric, corpus_boards, table, shown, chosen, refused, limited):
            notes.append(apart)
    if (shared := float(row.get("quality_shared_sd", 0.0))) >= SHARED_NOTE_SD:
        half_width = model.targets["quality"].z * shared
        notes.append(shared_note(half_width, model, table, task_type))
    if (mixed := mix_note(model, row, task_type)) is not None:
        notes.append(mixed)
    if (weighing := weight_note(row)) is not None:
        notes.append(weighing)
    if (assumed := assumptions_note(assumption_checks(model, task_type), task_type)) is not None:
        notes.append(assumed)
    if choice.evidence.simulated:
        notes.append("the evidence comes (partly) from the SIMULATED backend")
    elif (learnt := simulated_training_note(model, row, task_type)) is not None:
        notes.append(learnt)
    never = never_run(model, task_type, suite_sizes or {})
    decides, unrun = no_quality_spread(table) is None, unrun_cases(model, task_type, never)
    next_up = measure_next(
        feasible,
        chosen,
        missing_suites(model, task_type),
        unrun=unrun,
        quality_decides=decides,
    )
    room = max(1, MAX_TO_MEASURE - len(next_up))
    next_up += tail_only_next(table, found, feasible, max_latency_s, prefer, task_type, room)
    retrain = retrain_command(model)  # --include-simulated where it learned from SIMULATED
    unsettled = needs_cases_note(
        feasible, chosen, task_type, unrun, quality_decides=decides, retrain=retrain
    )
    if unsettled is not None:
        notes.append(unsettled[0])
    if rest := rest_of_suites_note(next_up, never, retrain):
        notes.append(rest)
    message = f"use {choice.label}" + (" (SIMULATED)" if _simulated(model, choice) else "")
    message += f" ({_limits(request)})" if _limits(request) else ""
    return Recommendation(
        "ok",
        message=message,
        choice=choice,
        alternatives=alternatives,
        drivers=reasons,
        excluded_best=excluded_best,
        refused_better=refused_better,
        refused_more=refused_more,
        overruled=overruled,
        suggestions=tuple(text for _, _, text in next_up),
        measure_next=tuple(
            ToMeasure(option(model, table.loc[i], task_type), suites) for i, suites, _ in next_up
        ),
        notes=tuple(notes),
        speed_tie=tie,
        unsettled="" if unsettled is None else unsettled[1],
        **base,
    )


def _simulated(model: SelectorModel, choice: Option) -> bool:
    """Whether the pick is the simulated backend's: measured on the task type (partly) by
    it, or never measured there and its model never run for real."""
    if choice.evidence.measured:
        return choice.evidence.simulated
    evidence = model.evidence
    runs = evidence[
        model.configs.reindex(evidence["config_hash"])["model"].to_numpy() == choice.model
    ]
    return not runs.empty and bool((runs["n_simulated"].fillna(0) > 0).all())


def _thin_data(model: SelectorModel, task_type: str) -> str | None:
    """Why the task type's measured configs are too few to trust the multilevel model's
    estimates as measurements (:attr:`selection.multilevel.Fit.ample`); None if not."""
    fit = quality_fit(model, task_type)
    if fit is None or fit.ample:
        return None
    return (
        f"the data on {task_type} are thin ({fit.measured} measured configs for the "
        f"{fit.fixed} effects the model fixes from them; ample from {2 * fit.fixed})"
    )


def _shared_error(
    model: SelectorModel, table: pd.DataFrame, task_type: str
) -> Callable[[Any, Any], float] | None:
    """The covariance of two rows' combined quality estimates: what their multilevel
    estimates share (:meth:`selection.multilevel.Fit.covariance`), times the weight each
    combined estimate gives its multilevel one."""
    if "quality_weight" not in table:
        return None
    fit = quality_fit(model, task_type)
    if fit is None:
        return None
    weight = table["quality_weight"]
    return lambda a, b: float(weight[a] * weight[b]) * fit.covariance(str(a), str(b))


def _answer(
    session: Session, request: dict[str, Any], candidates: Sequence[Config | str] | None
) -> Recommendation:
    from selection.versions import LOAD_ERRORS, current_version, load_model, sklearn_version

    task_type = request["task_type"]
    version = request["version"]
    if tables_refused(session.get_bind()):  # a read-only database never retrained
        row = None
    elif version is not None:
        row = session.get(SelectorVersion, version)
    else:
        row = current_version(session)
    if row is None:
        if version is not None:
            return Recommendation(
                "unavailable",
                task_type,
                f"selector version {version} does not exist{_versions_there(session)}",
                request=request,
            )
        return Recommendation(
            "no_data",
            task_type,
            "no selector has been trained yet",
            request=request,
            suggestions=_before_training(session, task_type),
        )
    try:
        model = load_model(session, row)
    except LOAD_ERRORS as exc:
        message = f"selector version {row.id} cannot be loaded: {exc}"
        return Recommendation("unavailable", task_type, message, request=request, version_id=row.id)
    kwargs = {
        k: request[k] for k in ("max_latency_s", "max_energy_j", "min_quality", "input_chars")
    }
    answer = recommend_from_model(
        model,
        task_type,
        prefer=request["prefer"],
        candidates=candidates,
        version_id=row.id,
        suite_sizes=_suite_sizes(session),
        corpus_boards=corpus_boards(session, task_type),
        **kwargs,
    )
    if row.sklearn_version != sklearn_version():
        note = (
            f"selector trained with scikit-learn {row.sklearn_version}, "
            f"running {sklearn_version()}: retrain to be safe"
        )
        answer = replace(answer, notes=(*answer.notes, note))
    if not row.promoted:
        answer = replace(answer, notes=(*answer.notes, f"version {row.id} was not promoted"))
    unseen = unseen_measurements(session, model, task_type)
    retrain = retrain_command(model)
    answer = stored_since(session, answer, model, row.id, retrain)
    if (note := unseen_note(session, unseen, row.id, task_type, retrain)) is None:
        note = newer_data_note(session, row, model, task_type)
    if note is not None:
        answer = replace(answer, notes=(note, *answer.notes), newer_results=note)
    return answer


def _suite_sizes(session: Session) -> dict[str, int]:
    """Cases per stored suite: a run stores its whole suite, whatever part it runs."""
    from sqlalchemy import func, select

    from evaluation.storage.models import CaseRow

    rows = session.exec(select(CaseRow.suite, func.count()).group_by(CaseRow.suite)).all()  # type: ignore[call-overload]
    return {str(suite): int(n) for suite, n in rows}


def _before_training(session: Session, task_type: str) -> tuple[str, ...]:
    """What to do with no selector trained, from what is stored: a newcomer after the
    simulated demo was told to run a qa sweep, one being stored (simulated ones are
    left out of training without --include-simulated)."""
    from evaluation.storage.training import task_generations, training_pairs
    from selection.frame import NotEnoughTrainingData

    real, simulated = task_generations(session, task_type)
    if real:
        # retrain's own count: advice to run it where it refuses sent a user to a refusal
        pairs, needed = training_pairs(session), NotEnoughTrainingData.MIN_PAIRS
        if pairs < needed:
            more = needed - pairs
            what = "config or suite" if more == 1 else "configs or suites"
            return (
                f"run at least {more} more {what} first (e.g. `evalflow run SPEC` with more "
                f"models or settings in its grid): `evalflow retrain` needs successful "
                f"generations for at least {needed} (config, suite) pairs, and the real "
                f"ones stored give {pairs}",
            )
        return (
            f"train the selector on the {real} real {task_type} generations stored: "
            "`evalflow retrain`",
        )
    if simulated:
        return (
            f"the {simulated} {task_type} generations stored are all SIMULATED (such as the "
            "demo's), which `evalflow retrain` leaves out: `evalflow retrain "
            "--include-simulated` learns from them too",
            f"or run a sweep over a {task_type} suite on a real backend, then `evalflow retrain`",
        )
    return (
        f"run a sweep over a {task_type} suite with a few models and settings",
        "then train the selector: `evalflow retrain` (add --include-simulated to "
        "learn from simulated sweeps such as the demo)",
    )


def _no_data_for_task(model: SelectorModel, base: dict[str, Any]) -> Recommendation:
    task_type = base["task_type"]
    known = ", ".join(model.task_types)
    suggestions = [f"run a sweep over a {task_type} suite, then retrain the selector"]
    if leaders := _leaders(model):
        suggestions.append(
            "start with the configs `evalflow recommend` picks on the other task types: "
            + "; ".join(f"{label} ({tasks})" for label, tasks in leaders[:MAX_ALTERNATIVES])
        )
    return Recommendation(
        "no_data",
        message=f"no results for task type {task_type!r} yet (have: {known})",
        suggestions=tuple(suggestions),
        **base,
    )


def _leaders(model: SelectorModel) -> list[tuple[str, str]]:
    """Each config this selector picks, without limits, on a task type it has data on,
    with those task types. Only task types with real results where any task type has
    them: a real sweep was told to start with the simulated demo's sim-large:8b. The
    best measured mean named the demo's t=0.7 twin of the leader (a tie at 0.778, an
    unstable sort), `show`'s #2 and not what `recommend qa` picks."""
    tasks: dict[str, list[str]] = {}
    for task in sorted(set(considered(model.evidence)["task_type"])):
        answer = recommend_from_model(model, task)
        if answer.choice is not None:
            tasks.setdefault(answer.choice.label, []).append(task)
    return [(label, ", ".join(names)) for label, names in tasks.items()]


LIMIT_REASONS = {
    "max_latency_s": LATENCY_REASON,
    "max_energy_j": "predicted energy",
    "min_quality": QUALITY_REASON,
}
"""How a candidate's refusal (:func:`selection._choice.violations`) begins, per limit."""


_LIMIT_NAMES: dict[str, Callable[[float], str]] = {
    "max_latency_s": lambda v: f"p95 latency ≤ {v:g} s",
    "max_energy_j": lambda v: f"energy ≤ {v:g} J",
    "min_quality": lambda v: f"quality ≥ {quality(v)}",
}
"""Each limit as a headline names it."""
LIMIT_TARGETS = {"max_latency_s": "latency_p95", "max_energy_j": "energy_j"}
"""The target each limit is checked on (a model without it cannot check the limit)."""


def _unchecked(model: SelectorModel, request: dict[str, Any]) -> str:
    """The headline where a limit cannot be checked, its target never recorded ("" where
    each can be): such a limit refuses every candidate, and the line said no
    configuration was estimated to meet it, as if each had been judged too hungry."""
    limits = [
        limit
        for limit, target in LIMIT_TARGETS.items()
        if request[limit] is not None and target not in model.targets
    ]
    if not limits:
        return ""
    named = " and ".join(_LIMIT_NAMES[limit](request[limit]) for limit in limits)
    never = " and ".join(LIMIT_TARGETS[limit].split("_")[0] for limit in limits)
    was, it = ("was", "it") if len(limits) == 1 else ("were", "them")
    return (
        f"{named} cannot be checked: {never} {was} never recorded, so no configuration "
        f"can be judged to meet {it}"
    )


def _met_by_some(found: list[tuple[str, ...]], request: dict[str, Any]) -> set[str]:
    """The limits of ``request`` that some candidate meets (its refusal names another)."""
    return {
        limit
        for limit, reason in LIMIT_REASONS.items()
        if request[limit] is not None
        and any(not any(r.startswith(reason) for r in reasons) for reasons in found)
    }


def _versions_there(session: Session) -> str:
    """What a refusal of a version that does not exist adds: the versions there are (a
    newcomer was told only that the one asked for does not exist)."""
    from selection.versions import current_version, list_versions

    trained = not tables_refused(session.get_bind())
    ids = [v.id for v in list_versions(session) if v.id is not None] if trained else []
    if not ids:
        return "; no version has been trained yet (`evalflow retrain` trains one)"
    promoted = current_version(session)
    default = f"default: {promoted.id}, the promoted one" if promoted else "none promoted"
    return f"; the versions there are: {_spans(ids)} ({default})"


def _spans(ids: list[int]) -> str:
    """Whole numbers as runs: [1, 2, 3, 5, 7, 8] as "1-3, 5, 7, 8"."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(
        f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)) for run in runs
    )


def _limits(request: dict[str, Any], met_by_some: set[str] = frozenset()) -> str:
    """The limits, as the headline names them: where some limits are met by no candidate
    and the others by some, only the former (a quality floor nothing reaches is not
    blamed on a latency limit every config meets); where each is met by some but no
    candidate meets them all, all of them, "together"."""
    given = [limit for limit in LIMIT_REASONS if request[limit] is not None]
    binding = [limit for limit in given if limit not in met_by_some] or given
    together = " together" if len(binding) > 1 and set(binding) <= met_by_some else ""
    return ", ".join(_LIMIT_NAMES[limit](request[limit]) for limit in binding) + together
