"""A newcomer (N1): on chrf, `show nc-real` ranked smollm2 t=0 first (corpus chrf 31.5) and
`recommend qa --max-latency 30` said `use gemma3-270m t=0` (quality 0.411), the board's
second, with only `note: quality is chrf, the first metric of the qa runs`. The answer now
names its figure (the mean of chrf's per-case values, 0–1) and, where `show` ranks another
config first, says so with both figures; the pick does not change."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from evaluation.compare import load_leaderboard
from evaluation.storage.models import (
    Aggregate,
    ConfigRow,
    DroppedConfig,
    Experiment,
    ExperimentConfig,
)
from selection._candidates import params_label
from selection._corpus_board import corpus_boards, ranked_apart
from selection.frame import validate_training_frame
from selection.quality_text import quality
from selection.recommender import recommend, recommend_from_model
from selection.training import train_selector
from selection.versions import PromotionDecision, save_version
from tests.selection.conftest import FAST, synthetic_frame

SHOWN = "`evalflow show "


def stored(
    session: Session,
    experiment: Experiment,
    values: dict[str, float | None],
    dropped: dict[str, float] | None = None,
    metric: str = "chrf",
) -> None:
    """``experiment``'s configs (``values``: each one's corpus value) as a run stores them,
    and those its last spec dropped (``dropped``), their aggregates kept."""
    for position, config in enumerate([*values, *(dropped or {})]):
        if session.get(ConfigRow, config) is None:
            session.add(ConfigRow(hash=config, model="m:1b", label=config))
        kind = ExperimentConfig if config in values else DroppedConfig
        session.add(kind(experiment_id=experiment.id, config_hash=config, position=position))
    for config, value in {**values, **(dropped or {})}.items():
        session.add(
            Aggregate(experiment_id=experiment.id, config_hash=config, metric=metric, mean=value)
        )


@pytest.fixture(scope="module")
def trained():
    frame = validate_training_frame(synthetic_frame()).assign(quality_metric="chrf")
    return train_selector(frame, FAST)


@pytest.fixture(scope="module")
def model(trained):
    return trained.model


def test_a_pick_show_ranks_below_another_says_so_with_both_figures(model):
    plain = recommend_from_model(model, "qa")
    chosen = plain.choice.config_hash
    table = model.configs
    other = next(h for h in plain.alternatives if h.config_hash != chosen).config_hash
    label = params_label(table.loc[other])
    boards = {"chrf": {"nc-real": {chosen: 25.5, other: 31.5}, "nc-old": {chosen: 40.0}}}
    answer = recommend_from_model(model, "qa", corpus_boards=boards)
    assert answer.choice.config_hash == chosen  # only words: the pick is the same
    (note,) = [n for n in answer.notes if n.startswith("quality is chrf")]
    assert note == (
        "quality is chrf, the first metric of the qa runs; chrf here: the mean of its "
        "per-case values, not the corpus chrf the leaderboard shows and ranks by (0–1: "
        "chrf / 100)"
    )
    (line,) = [n for n in answer.notes if n.startswith(SHOWN)]
    scored = {o.config_hash: o.quality.value for o in (answer.choice, *answer.alternatives)}
    assert line == (
        f"`evalflow show nc-real` ranks {label} first of the configs measured, by chrf's "
        f"corpus value ({label} 31.5, this pick 25.5); the selector ranks by the mean of "
        f"chrf's per-case values (0–1: chrf / 100), estimated {quality(scored[chosen])} for "
        f"this pick and {quality(scored[other])} for {label}"
    )
    # the board holding most of the measured configs is read, not the newest with one
    assert "nc-old" not in line
    # where show ranks the pick first too, nothing more is said
    agree = {"chrf": {"nc-real": {chosen: 31.5, other: 25.5}}}
    answer = recommend_from_model(model, "qa", corpus_boards=agree)
    assert not [n for n in answer.notes if n.startswith(SHOWN)]
    # nor on a metric the board ranks by its per-case mean
    plain_board = {"contains": {"nc-real": {chosen: 0.2, other: 0.9}}}
    contains = validate_training_frame(synthetic_frame()).assign(quality_metric="contains")
    answer = recommend_from_model(
        train_selector(contains, FAST).model, "qa", corpus_boards=plain_board
    )
    assert not [n for n in answer.notes if n.startswith(SHOWN)]
    assert "quality is contains, the first metric of the qa runs" in answer.notes


def test_under_limits_the_line_counts_the_configs_measured_to_meet_them(model):
    fast = recommend_from_model(model, "qa", max_latency_s=1.0)
    chosen = fast.choice.config_hash
    big = model.configs[model.configs["model"] == "big:8b"].index
    boards = {"chrf": {"nc-real": {chosen: 20.0, **dict.fromkeys(big, 60.0)}}}
    answer = recommend_from_model(model, "qa", max_latency_s=1.0, corpus_boards=boards)
    assert answer.choice.config_hash == chosen
    # every big:8b config's measured p95 is over 1 s: a reader of show counts none of them
    assert not [n for n in answer.notes if n.startswith(SHOWN)]
    loose = recommend_from_model(model, "qa", max_latency_s=2.0, corpus_boards=boards)
    (line,) = [n for n in loose.notes if n.startswith(SHOWN)]
    assert "first of the configs measured to meet the limits, by chrf's corpus value" in line
    # one the limits refuse, with its margin, though its measurement meets them: why
    table = model.configs.assign(quality=0.5)
    first = big[0]
    why = ("estimated p95 latency 2.6 s (with margin) > 2 s",)
    line = ranked_apart("chrf", boards, table, table, chosen, {first: why})
    assert line.endswith(
        f"for {params_label(table.loc[first])}, which the limits refuse here: {why[0]}"
    )


def test_the_boards_are_read_from_the_stored_aggregates(engine):
    with Session(engine) as session:
        runs = [
            Experiment(name="nc-real", suite="qa-short", task_type="qa", metrics=["chrf"]),
            Experiment(name="nc-plain", suite="qa-short", task_type="qa", metrics=["contains"]),
            Experiment(name="sum", suite="s", task_type="summarization", metrics=["chrf"]),
        ]
        session.add_all(runs)
        session.flush()
        real, plain, summary = runs
        stored(session, real, {"a": 31.5, "b": 25.5, "c": None})
        session.add(Aggregate(experiment_id=real.id, config_hash="b", metric="contains", mean=0.9))
        stored(session, plain, {"a": 0.5}, metric="contains")
        stored(session, summary, {"a": 9.0})
        session.commit()
        assert corpus_boards(session, "qa") == {"chrf": {"nc-real": {"a": 31.5, "b": 25.5}}}


def test_a_config_the_experiments_last_spec_dropped_is_on_no_board(engine, trained):
    """`show nc-real` lists the configs of the spec nc-real last ran; one an earlier spec
    of it had, scored highest, is not ranked there, so the line does not name it."""
    plain = recommend_from_model(trained.model, "qa")
    chosen = plain.choice.config_hash
    evidence = trained.model.evidence
    measured = evidence.loc[(evidence["task_type"] == "qa") & (evidence["n"] >= 10), "config_hash"]
    other, gone = sorted(set(measured) - {chosen})[:2]
    with Session(engine) as session:
        save_version(session, trained, PromotionDecision(True, "test", basis="first version"))
        run = Experiment(name="nc-real", suite="qa-a", task_type="qa", metrics=["chrf"])
        session.add(run)
        session.flush()
        stored(session, run, {chosen: 25.5, other: 31.5}, dropped={gone: 40.0})
        session.commit()
        listed = [row["config"] for row in load_leaderboard(session, "nc-real").rows]
        assert sorted(listed) == sorted([chosen, other])
        assert corpus_boards(session, "qa") == {"chrf": {"nc-real": {chosen: 25.5, other: 31.5}}}
    answer = recommend("qa", engine=engine)
    assert answer.choice.config_hash == chosen
    (line,) = [n for n in answer.notes if n.startswith(SHOWN)]
    ranked, left_out = (params_label(trained.model.configs.loc[c]) for c in (other, gone))
    assert line.startswith(f"`evalflow show nc-real` ranks {ranked} first")
    assert left_out not in line


def test_recommend_reads_the_boards_of_the_database_it_answers_from(engine, trained):
    chosen = recommend_from_model(trained.model, "qa").choice.config_hash
    other = trained.model.configs.index.difference([chosen])[0]
    with Session(engine) as session:
        save_version(session, trained, PromotionDecision(True, "test", basis="first version"))
        run = Experiment(name="nc-real", suite="qa-a", task_type="qa", metrics=["chrf"])
        session.add(run)
        session.flush()
        stored(session, run, {chosen: 25.5, other: 31.5})
        session.commit()
    answer = recommend("qa", engine=engine)
    assert answer.choice.config_hash == chosen
    (line,) = [n for n in answer.notes if n.startswith(SHOWN)]
    assert line.startswith(
        f"`evalflow show nc-real` ranks {params_label(trained.model.configs.loc[other])} first"
    )
