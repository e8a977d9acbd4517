"""The terminal leaderboard fits 100 columns: ranks, short labels, rounded intervals;
``wide`` gives every column back. Table artifacts carry no 0.7777777777777778."""

from __future__ import annotations

import pandas as pd
import pytest

from evaluation.compare._leaderboard import (
    RUN_FACTS,
    Leaderboard,
    echo_flags,
    render_markdown,
    render_text,
    table_rows,
)

METRICS = ("exact_match", "contains", "rougeL", "bleu", "output_length")


def _board(n: int = 12) -> Leaderboard:
    rows = []
    for i in range(n):
        row = {
            "config": f"{i:016x}",
            "label": f"sim-model-{i % 3}:8b t=0.{i} seed=42 n=128 tpl=a-rather-long-template-{i}",
        }
        for m in METRICS:
            row |= {m: 7 / 9 - i / 100, f"{m}_ci_low": 0.6 - i / 100, f"{m}_ci_high": 0.89}
        row |= dict.fromkeys(RUN_FACTS, 1 / 3) | {"generations_ok": 36.0}
        rows.append(row)
    return Leaderboard("wide-sweep", METRICS, tuple(rows), simulated=True)


def test_the_terminal_table_fits_100_columns_and_names_what_it_leaves_out():
    text = render_text(_board())
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    assert "SIMULATED" in text
    assert lines[4].split()[0] == "#1" and lines[-5].split()[0] == "#12"
    table = "\n".join(lines[3:-4])
    assert "seed=42" not in table and "0000000000000000" not in text  # short labels, no hash
    assert "0.78 [0.60, 0.89]" in text and "0.7778" not in text
    assert lines[-4].startswith("(not shown: ") and "--wide" in lines[-4]
    assert lines[-3].startswith("Ranked by exact_match (higher is better); ties by ")
    assert lines[-1] == "Every config: seed=42 num_predict=128"  # what the labels leave out
    assert lines[3].split()[:3] == ["#", "config", "exact_match"]


def test_the_board_says_which_metric_ranks_it_and_how_ties_break():
    # A newcomer saw a config with empty outputs #1 on a tie and no word of why.
    board = _board(2)
    text = render_text(board, wide=True)
    assert (
        "Ranked by exact_match (higher is better); ties by lower median latency "
        "(a config flagged for echoing the prompt last), then label." in text
    )
    lower = Leaderboard(
        "l",
        ("latency_s",),
        tuple(
            {**r, "latency_s": 1.0, "latency_s_ci_low": 1.0, "latency_s_ci_high": 1.0}
            for r in board.rows
        ),
        True,
    )
    assert "Ranked by latency_s (lower is better); " in render_text(lower)
    assert "Ranked by exact_match (higher is better); " in render_markdown(board)
    assert "Ranked" not in render_text(Leaderboard("none", (), board.rows, True))


def test_wide_shows_every_column_full_labels_and_hashes():
    text = render_text(_board(), wide=True)
    for m in METRICS:
        assert m in text
    assert "0000000000000000" in text and "not shown" not in text
    assert "seed=42 num_predict=128" in text and " n=128" not in text  # no footer says n=


def test_table_artifact_rows_are_rounded_to_their_intervals():
    row = table_rows(_board())[0]
    assert row["exact_match"] == 0.78 and row["exact_match_ci95"] == "[0.60, 0.89]"
    assert row["latency_p50_s"] == 0.333 and row["tokens_per_s"] == 0.3
    assert row["generations_ok"] == 36 and isinstance(row["generations_ok"], int)


def test_configs_that_echo_the_prompt_are_flagged():
    from evaluation.compare._leaderboard import echo_flags

    rows = [
        {"config": "a1", "label": "gemma3-270m t=0", "echoes_prompt": 34 / 36},
        {"config": "b2", "label": "smollm2 t=0", "echoes_prompt": 0.0},
        {"config": "c3", "label": "unscored t=0", "echoes_prompt": None},
    ]
    assert echo_flags(rows) == (
        "ECHOES THE PROMPT: a1 gemma3-270m repeats its prompt in 94% of outputs; "
        "scores count only the rest of each output",
    )


@pytest.mark.parametrize("column", ["output", "short_output"])
def test_empty_and_blank_outputs_are_counted_per_config(column):
    """Outputs of nothing or of white space only, counted among the successful ones
    (``short_output``: the output where short, null where long, as the aggregate task
    reads it without loading every output)."""
    from evaluation.compare._leaderboard import _fact_rows

    long = None if column == "short_output" else "a long answer " * 10
    part = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "ok", "failed"],
            column: ["", " \n\t", "Paris", long, None],
            "truncated": False,
            "latency_s": 0.1,
            "ttft_s": None,
            "tokens_per_s": None,
        }
    )
    (empty,) = [r for r in _fact_rows("h", part) if r["metric"] == "empty_outputs"]
    assert (empty["n"], empty["mean"]) == (4, 2.0)


def test_configs_with_empty_outputs_are_flagged():
    from evaluation.compare._leaderboard import empty_flags

    rows = [
        {"config": "a1", "label": "gemma3-270m t=0", "empty_outputs": 5.0},
        {"config": "b2", "label": "smollm2 t=0", "empty_outputs": 0.0},
        {"config": "c3", "label": "old t=0", "empty_outputs": None},  # aggregated before
    ]
    assert empty_flags([r | {"generations_ok": 5.0} for r in rows]) == (
        "EMPTY OUTPUTS: a1 gemma3-270m returned nothing in 5 of 5 outputs; each is "
        "scored as an empty answer",
    )


def test_a_flag_names_its_config_as_the_table_does():
    """`show`'s flags named `quiet:1b t=0 num_predict=24 seed=42 tpl=plain` under a table
    whose row read `quiet:1b`: one more spelling of the config to match by eye (newcomer
    N5). The flag's label is the table's (``Leaderboard.labels``), the settings all
    share said once under the table."""
    from evaluation.compare._leaderboard import Leaderboard, echo_flags, empty_flags

    full = {"a1": "quiet:1b t=0 n=24 seed=42 tpl=plain", "b2": "echo:1b t=0 n=24 seed=42 tpl=plain"}
    rows = [{"config": c, "label": x, "generations_ok": 5.0} for c, x in full.items()]
    board = Leaderboard("e", ("contains",), tuple(rows), False)
    (echo,) = echo_flags([rows[0] | {"echoes_prompt": 1.0}, rows[1] | {"echoes_prompt": 0.0}])
    (empty,) = empty_flags([rows[0] | {"empty_outputs": 5.0}, rows[1] | {"empty_outputs": 0.0}])
    assert board.labels["a1"] == "quiet:1b"
    assert echo.startswith(f"ECHOES THE PROMPT: a1 {board.labels['a1']} repeats")
    assert empty.startswith(f"EMPTY OUTPUTS: a1 {board.labels['a1']} returned nothing")


def test_configs_tied_on_the_mean_stand_in_one_meaningful_order_everywhere():
    """Real data: Gemma (echoing, label first alphabetically) tied SmolLM2 on contains
    and ranked #1 by label. At equal means an echo-flagged config comes after one that
    is not, then the faster first, then the label; the comparison (verdict, report)
    orders them the same way as the leaderboard (CLI, artifacts, view)."""
    from evaluation.compare._leaderboard import ranked_table
    from evaluation.statistics.analysis import analyze

    configs = {  # config: (label, echoes_prompt, latency_p50_s)
        "a1": ("gemma3-270m", 0.9, 0.2),
        "b2": ("smollm2-slow", 0.0, 0.9),
        "c3": ("smollm2-fast", 0.0, 0.4),
        "d4": ("another", 0.0, 0.1),
    }
    rows = [
        {"config": c, "label": label, "contains": 0.5 if c != "d4" else 0.25}
        | {"echoes_prompt": echo, "latency_p50_s": latency}
        for c, (label, echo, latency) in configs.items()
    ]
    board = Leaderboard("tie", ("contains", "echoes_prompt"), tuple(rows), False)
    assert list(ranked_table(board)["config"]) == ["c3", "b2", "a1", "d4"]
    scores = pd.DataFrame(
        [
            {"config": c, "case_id": f"q{i}", "sample_index": 0, "metric": "contains"}
            | {"value": float(i < (2 if c != "d4" else 1)), "group": None}
            for c in configs
            for i in range(4)
        ]
    )
    facts = pd.DataFrame(rows).drop(columns=["label", "contains"])
    report = analyze(scores, score_types={"contains": "binary"}, facts=facts)
    (comparison,) = report.comparisons
    assert [c for c, _ in comparison.ranking] == ["c3", "b2", "a1", "d4"]


def test_a_wider_terminal_shows_the_metrics_100_columns_leave_out():
    """A RAG sweep's retrieval metric was left out on a 200-column terminal."""
    at_200 = render_text(_board(), columns=200)
    assert "not shown" not in at_200 and max(map(len, at_200.splitlines())) <= 200
    for m in METRICS:
        assert m in at_200
    assert render_text(_board()) == render_text(_board(), columns=100)


def test_the_cli_takes_the_terminals_width_only_on_a_terminal(monkeypatch):
    import io
    import os
    import sys

    from flows.cli._width import terminal_columns

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert terminal_columns() == 100  # a file: the width it always had

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(os, "get_terminal_size", lambda *a: os.terminal_size((200, 50)))
    assert terminal_columns() == 200


def test_the_cli_takes_columns_and_the_terminal_a_pipe_shows_in(monkeypatch, tmp_path):
    """`evalflow show NAME | less` in an 80-column terminal drew 100 columns, and the
    terminal broke every row: a pipe's output is read in the terminal of standard error
    (a file's keeps 100); $COLUMNS, where set, says the width outright."""
    import os
    import sys

    from flows.cli._width import terminal_columns

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((80, 24)))
    read_end, write_end = os.pipe()
    with open(write_end, "w") as pipe, open(read_end), open(tmp_path / "out", "w") as file:
        monkeypatch.setattr(sys, "stdout", pipe)
        assert terminal_columns() == 80
        monkeypatch.setattr(sys, "stdout", file)
        assert terminal_columns() == 100
        monkeypatch.setenv("COLUMNS", "72")
        assert terminal_columns() == 72


def test_a_label_too_long_for_the_terminal_wraps_under_itself():
    """At 80 columns a table left with one metric was 87 wide (a long config label), and
    the terminal broke every row; the flags under it were one line of 140. The label
    wraps at its spaces, the rest of its row on its first line; where the table fits it
    is drawn as before."""
    board = _board(4)
    long_label = "sim-model-0:8b t=0.3 tpl=a-rather-long-template-3 system=be-brief"
    labels = {r["config"]: r["label"] for r in board.rows} | {board.rows[3]["config"]: long_label}
    rows = tuple(
        r | {"label": labels[r["config"]], "echoes_prompt": 0.5 if i == 3 else 0.0}
        for i, r in enumerate(board.rows)
    )
    board = Leaderboard("long-labels", ("contains",), rows, False, notes=echo_flags(rows))
    text = render_text(board, columns=80)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    (row,) = [i for i, line in enumerate(lines) if line.startswith("#4 ")]
    assert lines[row].split()[1:3] == ["sim-model-0:8b", "t=0.3"]
    assert lines[row].endswith(" 0.75 [0.57, 0.89] 0.333      0     0")
    assert lines[row + 1].split() == ["a-rather-long-template-3", "system=be-brief"]
    flag = lines.index(next(line for line in lines if line.startswith("ECHOES THE PROMPT: ")))
    said = " ".join(" ".join(lines[flag:]).split())  # the flag wraps, its label as the row's
    label = board.labels[rows[3]["config"]]
    assert label == "sim-model-0:8b t=0.3 a-rather-long-template-3 system=be-brief"
    assert said.startswith(f"ECHOES THE PROMPT: {rows[3]['config']} {label} repeats")
    wide = render_text(board, columns=200).splitlines()  # fits: one line a row, as it was
    assert max(map(len, wide)) > 80 and wide[5].startswith("#4 sim-model-0:8b t=0.3 a-rather")
    assert wide[5].endswith("system=be-brief 0.75 [0.57, 0.89] 0.333      0     0")


def _aggregate(values: list[float], groups: list[str]) -> dict:
    from evaluation.statistics.intervals import mean_interval

    est = mean_interval(values, groups)
    return {"metric": "contains", "method": est.method, "note": est.note}


def test_intervals_on_few_case_groups_say_so_under_the_board():
    """Newcomer's `--limit 5`: 4 cases of apollo-11 and 1 of marie-curie gave
    `0.80 [0.02, 1.00]` and only the export's notes said why (t on 1 df)."""
    from evaluation.compare._leaderboard import groups_note

    limited = _aggregate([1, 1, 1, 0, 1], ["apollo-11"] * 4 + ["marie-curie"])
    note = groups_note([limited, _aggregate([1, 0, 1, 0, 1, 1], list("aabbcc"))])
    assert note.startswith("Intervals rest on only 2 to 3 case groups (clustered by group: t on")
    assert "1 to 2 df" in note
    board = Leaderboard("nc-real", METRICS, _board(2).rows, simulated=False, groups_note=note)
    text = render_text(board)
    assert "Intervals rest on only 2 to 3 case groups" in text.replace("\n", " ")
    assert max(map(len, text.splitlines())) <= 100
    assert note in render_markdown(board)
    smoke = _aggregate([1, 0, 1], ["apollo-11"] * 3)
    assert groups_note([smoke]).startswith("Every case run is from one case group")
    many = _aggregate([1, 0] * 10, [str(i // 2) for i in range(20)])
    assert groups_note([many]) == "" and groups_note([]) == ""


def test_the_few_groups_line_names_the_configs_it_is_about_where_others_have_more_groups():
    """An interrupted run: t=0.7's 16 cases came from 4 groups, t=0's 33 from 9, and the
    board said "Intervals rest on only 4 case groups" as if of every config."""
    from evaluation.compare._leaderboard import groups_note

    short = _aggregate([1, 0] * 8, [f"g{i % 4}" for i in range(16)]) | {"config_hash": "b"}
    long = _aggregate([1, 0, 1] * 11, [f"g{i % 9}" for i in range(33)]) | {"config_hash": "a"}
    note = groups_note([long, short], {"a": "t=0 n=32", "b": "t=0.7 n=32"})
    assert note.startswith("Intervals of t=0.7 n=32 rest on only 4 case groups"), note
    both = groups_note([short, short | {"config_hash": "a"}], {"a": "t=0", "b": "t=0.7"})
    assert both.startswith("Intervals rest on only 4 case groups")  # every config's


def test_the_few_groups_line_reaches_show_the_report_and_the_view(database_url):
    """From a stored run of 5 cases in 2 groups (the newcomer's `--limit 5`): the stored
    aggregates' methods give the line, and every leaderboard shows it."""
    from evaluation.compare._leaderboard import load_leaderboard
    from evaluation.report import build_report
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.view.summary import experiment_summary
    from tests.support.results_db import add_experiment, make_config, make_suite

    suite = make_suite(5, groups=["apollo-11"] * 4 + ["marie-curie"])
    scores = {
        make_config(temperature=0.0): {"exact_match": [1.0, 1.0, 1.0, 0.0, 1.0]},
        make_config(temperature=0.7): {"exact_match": [0.0, 1.0, 1.0, 0.0, 0.0]},
    }
    with session_scope(make_engine(database_url)) as session:
        add_experiment(session, "limited", suite, scores)
        board = load_leaderboard(session, "limited")
        summary = experiment_summary(session, "limited")
        html = build_report(session, "limited")
    # Newcomer N12: on 2 groups (t on 1 df) the interval is noise ("0.75 [0.01, 1.00]"):
    # the board shows none and says why.
    assert board.groups_note.startswith("Intervals are not shown: the cases run are from only 2")
    assert "t on 1 df" in board.groups_note
    assert all(r["exact_match_ci_low"] is None is r["exact_match_ci_high"] for r in board.rows)
    text = render_text(board, wide=True)
    assert board.groups_note in text and "[–, –]" in text
    assert summary.groups_note == board.groups_note
    assert "Intervals are not shown" in html


def test_output_length_interval_stops_at_num_predict(database_url):
    """Newcomer N12: output_length "16 [0, 889]" with num_predict=32: no mean of a config's
    words passes the tokens it may generate; a config without that bound keeps its
    interval, and a share's stays on [0, 1]."""
    from evaluation.compare._leaderboard import load_leaderboard
    from evaluation.spec import Config, GenerationParams, PromptTemplate
    from evaluation.storage.db import make_engine, session_scope
    from tests.support.results_db import add_experiment, make_suite

    suite = make_suite(6, groups=["a", "a", "b", "b", "c", "c"])
    short = Config("m:1b", GenerationParams(num_predict=32), PromptTemplate("default"))
    lengths = [1.0, 2.0, 30.0, 31.0, 1.0, 3.0]
    scores = {short: {"exact_match": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0], "output_length": lengths}}
    with session_scope(make_engine(database_url)) as session:
        add_experiment(session, "short", suite, scores)
        board = load_leaderboard(session, "short")
    (row,) = board.rows
    assert row["output_length_ci_high"] == 32.0 and 0 <= row["output_length_ci_low"] < 11.4
    assert 0 <= row["exact_match_ci_low"] <= row["exact_match_ci_high"] <= 1


def test_a_label_wraps_at_spaces_only_never_at_a_hyphen():
    """Newcomer F13: at 60 columns `smollm2-135m-instruct t=0` wrapped as `smollm2-135m-`
    / `instruct t=0`, and a copied name was two. A word stays whole."""
    board = _board(4)
    models = ("smollm2-135m-instruct", "gemma3-270m-it")
    labels = [f"{models[i % 2]} t=0.{i} tpl=a-template-{i}" for i in range(len(board.rows))]
    rows = tuple(r | {"label": label} for r, label in zip(board.rows, labels, strict=True))
    text = render_text(Leaderboard("hyphens", ("contains",), rows, False), columns=60)
    assert "smollm2-135m-instruct" in text
    assert not [line for line in text.splitlines() if line.rstrip().endswith("-")]


def test_a_block_under_the_board_names_its_configs_as_the_board_does():
    """Newcomer N12: under a board saying 'num_predict=24' (`show --wide`'s labels, the
    report's and the view's 'Every config:') the block of the cases run said 'n=24':
    its rows take the board's names (``label_names``), in the board's order."""
    from evaluation.compare._leaderboard import label_names
    from evaluation.itembank import named_estimates

    full = {"a1": "small:1b t=0 n=24 seed=7", "b2": "large:8b t=0 n=24 seed=7"}
    rows = [
        {"config": c, "label": x, "contains": mean, "contains_ci_low": 0.0}
        | {"contains_ci_high": 1.0, **dict.fromkeys(RUN_FACTS, 1.0)}
        for (c, x), mean in zip(full.items(), (0.25, 0.5), strict=True)
    ]
    board = Leaderboard("e", ("contains",), tuple(rows), False)
    block = [(full["a1"], "0.250 [0.1, 0.5]", ""), (full["b2"], "0.500 [0.2, 0.8]", "")]
    short = named_estimates(block, label_names(board))
    assert [label for label, _, _ in short] == ["large:8b", "small:1b"]  # ranked, as #1, #2
    wide = named_estimates(block, label_names(board, wide=True))
    spelled = [label for label, _, _ in wide]
    assert spelled == ["large:8b t=0 num_predict=24 seed=7", "small:1b t=0 num_predict=24 seed=7"]
    table = render_text(board, wide=True, columns=300)
    assert all(label in table for label in spelled) and "n=24" not in table
    assert [x for x, _, _ in named_estimates(block, label_names(board, ["a1", "b2"]))] == [
        "small:1b",
        "large:8b",
    ]


def test_the_few_groups_line_names_its_metrics_where_a_corpus_interval_is_shown():
    """Recheck NEW-4: `show nc-real` (8 cases, 2 groups) printed chrf's `34 [15, 56]` and
    then "Intervals are not shown": chrf's case bootstrap is not clustered by group."""
    from evaluation.compare._leaderboard import groups_note

    contains = _aggregate([1, 1, 1, 0, 1], ["apollo-11"] * 4 + ["marie-curie"])
    exact = contains | {"metric": "exact_match"}
    chrf = {
        "metric": "chrf",
        "method": "bootstrap (BCa, 1000 resamples, seed 0)",
        "ci_low": 15.0,
        "ci_high": 56.0,
    }
    note = groups_note([contains, exact, chrf])
    assert note.startswith("The contains, exact_match intervals are not shown: the cases run"), note
    assert note.endswith(
        "chrf's are not clustered by case group (a bootstrap over the cases), so they are shown."
    )
    assert groups_note([contains, exact]).startswith("Intervals are not shown")
