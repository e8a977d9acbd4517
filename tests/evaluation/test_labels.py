"""Config labels people can tell apart: for every bundled sweep, each config's label is
unique, shows every parameter that varies whole (never cut mid-parameter, as rag-presets'
`chunk=2048 retrieve=20 minsim…` was), and reads the same in the terminal leaderboard,
the report's plot labels and the artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.compare._leaderboard import (
    PIPELINE_FACTS,
    RUN_FACTS,
    Leaderboard,
    render_markdown,
    render_text,
    table_rows,
)
from evaluation.labels import configs_named, distinguishing_labels, legacy_label, shared_settings
from evaluation.run._sweep import prepare_sweep
from tests.conftest import REPO

SWEEPS = sorted((REPO / "benchmarks" / "sweeps").glob("*.yaml"))


def _configs(path):
    return prepare_sweep(path).configs


def _board(configs) -> Leaderboard:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "config": [c.hash for c in configs],
            "label": [c.label for c in configs],
            "model": [c.model for c in configs],
        }
    )
    mean = rng.uniform(0.3, 0.9, len(configs))
    table["exact_match"] = mean
    table["exact_match_ci_low"] = mean - 0.1
    table["exact_match_ci_high"] = mean + 0.1
    for fact in (*RUN_FACTS, *PIPELINE_FACTS):
        table[fact] = 1.0
    return Leaderboard("x", ("exact_match",), tuple(table.to_dict("records")), simulated=True)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_bundled_sweep_has_unique_whole_labels(path):
    configs = _configs(path)
    full = [c.label for c in configs]
    short = distinguishing_labels(full)
    assert len(set(short.values())) == len(configs)
    shared = set(shared_settings(full).split())
    for label in full:
        assert "…" not in short[label]
        # every word shown is a whole parameter of the full label (tpl= read as its name)
        words = {w.removeprefix("tpl=") for w in label.split()}
        assert set(short[label].split()) <= words
        # and nothing but what every config shares was left out
        assert words - set(short[label].split()) <= shared


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_the_terminal_leaderboard_and_artifacts_show_each_label_whole(path):
    board = _board(_configs(path))
    text = render_text(board)
    markdown = render_markdown(board)
    rows = table_rows(board)
    labels = board.labels
    assert "…" not in text
    for label in labels.values():
        assert label in text and label in markdown
    assert {r["label"] for r in rows} == set(labels.values())


def test_rag_presets_labels_name_the_parameter_that_differs():
    board = _board(_configs(REPO / "benchmarks" / "sweeps" / "rag-presets.yaml"))
    labels = set(board.labels.values())
    assert "chunk=2048 retrieve=10 minsim=0.05" in labels
    assert "chunk=2048 retrieve=10 minsim=0.15" in labels
    assert "rag" in board.shared and "embed=nomic-embed-text" in board.shared


def test_the_report_plots_name_configs_by_rank_and_distinguishing_label():
    from evaluation.report.html import _label_names

    configs = _configs(REPO / "benchmarks" / "sweeps" / "rag-presets.yaml")
    board = _board(configs)
    order = tuple(c.hash for c in configs)

    class Data:  # what _label_names reads of ReportData
        pass

    data = Data()
    data.board, data.order = board, order
    data.names = {c: f"#{i}" for i, c in enumerate(order, start=1)}
    names = _label_names(data)
    assert len(set(names.values())) == len(configs)
    assert all(len(n) < 45 for n in names.values())  # fits a plot's margin


def test_configs_differing_only_in_num_predict_read_apart_and_old_names_still_work():
    """Three newcomers took two configs that differ only in num_predict for one: their
    labels, shown and whole, were the same. A name written before num_predict was shown
    (a script's --config, an old spec) still finds the config when it names one."""
    hashes = ["aaaa1111", "bbbb2222", "cccc3333"]
    labels = ["m:1b t=0 n=16 tpl=plain", "m:1b t=0 n=64 tpl=plain", "m:1b t=0.7 n=64 tpl=plain"]
    shown = distinguishing_labels(labels)
    assert len(set(shown.values())) == 3 and shown[labels[0]] == "t=0 n=16"
    assert legacy_label(labels[0]) == "m:1b t=0 tpl=plain"
    assert configs_named("m:1b t=0.7 tpl=plain", hashes, labels) == ["cccc3333"]
    assert configs_named("m:1b t=0 tpl=plain", hashes, labels) == ["aaaa1111", "bbbb2222"]
    assert configs_named(labels[1], hashes, labels) == ["bbbb2222"]


def test_a_label_without_n_says_what_it_generates_where_others_show_it():
    """A newcomer could not tell from any output that a label without "n=" means the
    default num_predict, beside labels that show it."""
    from evaluation.spec import DEFAULT_NUM_PREDICT, Config, GenerationParams, PromptTemplate

    configs = [
        Config(
            "m:1b",
            GenerationParams(temperature=0.0, num_predict=n, seed=42),
            PromptTemplate("default"),
        )
        for n in (16, DEFAULT_NUM_PREDICT)
    ]
    text, markdown = render_text(_board(configs)), render_markdown(_board(configs))
    said = (
        "Every config: m:1b t=0 seed=42; n= is num_predict, the most tokens an output may "
        f"have ({DEFAULT_NUM_PREDICT} where no n= is shown)"
    )
    assert said in " ".join(text.split()) and said in markdown  # the text wraps at 100
    assert "where no n= is shown" not in render_text(_board(configs[:1]))


def test_the_line_under_the_leaderboard_never_says_n_for_num_predict_alone():
    """A newcomer read "Every config: t=0 n=24" under the leaderboard as 24 cases (it
    was num_predict): shared, it is spelled out; shown in the labels, it is explained."""
    from evaluation.spec import Config, GenerationParams, PromptTemplate

    def config(t: float, n: int) -> Config:
        return Config("m:1b", GenerationParams(temperature=t, num_predict=n), PromptTemplate("x"))

    shared = render_text(_board([config(0.0, 24), config(0.7, 24)])).splitlines()[-1]
    assert shared == "Every config: m:1b num_predict=24 x"
    varying = render_text(_board([config(0.0, 24), config(0.0, 64)])).splitlines()[-1]
    assert varying == (
        "Every config: m:1b t=0 x; n= is num_predict, the most tokens an output may have"
    )
    alone = render_text(_board([config(0.0, 24)]))
    # one config's label is shown whole: no setting is left to say of "every config"
    assert alone.splitlines()[-1] == "n= is num_predict, the most tokens an output may have"
    assert "Every config" not in alone + render_markdown(_board([config(0.0, 24)]))


def test_a_name_of_words_all_in_one_label_names_that_config():
    """A newcomer's names refused although each named one config: the shown label with a
    shared word put back ("sim-large:8b t=0.7 n=64 plain" where every config has n=64,
    so show leaves it out), the model and template of a one-model experiment, and what
    another experiment's output calls it ("sim-large:8b n=64")."""
    hashes = ["aaaa", "bbbb", "cccc"]
    labels = [
        "sim-large:8b t=0.7 n=64 seed=42 tpl=plain",
        "sim-large:8b t=0 n=64 seed=42 tpl=plain",
        "sim-large:8b t=0.7 n=64 seed=42 tpl=concise",
    ]
    assert configs_named("sim-large:8b t=0.7 n=64 plain", hashes, labels) == ["aaaa"]
    assert configs_named("t=0  plain", hashes, labels) == ["bbbb"]
    assert configs_named("concise", hashes, labels) == ["cccc"]
    assert configs_named("sim-large:8b n=64", hashes, labels) == hashes  # fits all three
    assert configs_named("t=0.70 plain", hashes, labels) == []  # words, not parts of words


def test_a_copied_name_with_spaces_around_or_an_upper_case_hash_names_its_config():
    """A newcomer's names copied with a space around them (a shell's quotes, a table's
    cell) and a hash in upper case were refused as no config."""
    hashes = ["ab12cd34ef56", "ab99cd34ef56"]
    labels = ["m:1b t=0 n=16 tpl=plain", "m:1b t=0.7 n=16 tpl=plain"]
    assert configs_named(" m:1b t=0 n=16 tpl=plain ", hashes, labels) == ["ab12cd34ef56"]
    assert configs_named("m:1b  t=0.7 n=16 tpl=plain", hashes, labels) == ["ab99cd34ef56"]
    assert configs_named("AB12CD34EF56", hashes, labels) == ["ab12cd34ef56"]
    assert configs_named(" AB99 ", hashes, labels) == ["ab99cd34ef56"]
    assert configs_named("  ", hashes, labels) == []


def test_a_refusal_that_lists_some_configs_says_how_many_more():
    """A newcomer's typo of a config's name was refused with 20 of 24 configs listed, the
    one meant among the 4 left out, without a word that there were more."""
    from evaluation.errors import EvalError
    from evaluation.labels import MAX_LISTED, config_named

    hashes = [f"{i:04x}" for i in range(MAX_LISTED + 4)]
    labels = [f"m t={i}" for i in range(MAX_LISTED + 4)]
    with pytest.raises(EvalError, match=r"; 4 more \(`evalflow show qa --wide`\)$"):
        config_named("zz", hashes, labels, "qa")
