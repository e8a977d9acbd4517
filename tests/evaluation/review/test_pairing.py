"""Blinded pairs: seeded, same case on both sides, sides drawn at random."""

from __future__ import annotations

import pandas as pd
import pytest

from evaluation.errors import EvalError
from evaluation.review.pairing import default_configs, draw_pairs, resolve_configs


def _generations(configs=("x", "y", "z"), cases=12, missing=()):
    rows = []
    gid = 0
    for config in configs:
        for i in range(cases):
            gid += 1
            if (config, i) in missing:
                continue
            status = "failed" if (config, i) == ("z", 0) else "ok"
            rows.append(
                {
                    "id": gid,
                    "config_hash": config,
                    "case_uid": f"s/c{i:02d}",
                    "sample_index": 0,
                    "status": status,
                }
            )
    return pd.DataFrame(rows)


def test_pairs_are_reproducible_and_blinded_by_random_sides():
    gens = _generations()
    first = draw_pairs(gens, ["x", "y", "z"], per_pair=5, seed=7)
    assert first == draw_pairs(gens, ["x", "y", "z"], per_pair=5, seed=7)
    assert first != draw_pairs(gens, ["x", "y", "z"], per_pair=5, seed=8)
    assert len(first) == 3 * 5
    by_id = gens.set_index("id")
    for pair in first:
        a, b = by_id.loc[pair.generation_a], by_id.loc[pair.generation_b]
        assert a.case_uid == b.case_uid == pair.case_uid
        assert (a.config_hash, b.config_hash) == (pair.config_a, pair.config_b)
        assert pair.config_a != pair.config_b
    many = draw_pairs(gens, ["x", "y"], per_pair=None, seed=1)
    assert {p.config_a for p in many} == {"x", "y"}  # both configs appear on side A
    assert len({p.case_uid for p in many}) == 12


def test_only_cases_both_configs_completed_are_paired():
    gens = _generations(missing={("y", 3), ("y", 4)})
    pairs = draw_pairs(gens, ["x", "y"], per_pair=None, seed=0)
    assert {p.case_uid for p in pairs} == {f"s/c{i:02d}" for i in range(12)} - {"s/c03", "s/c04"}
    failed = draw_pairs(gens, ["x", "z"], per_pair=None, seed=0)
    assert "s/c00" not in {p.case_uid for p in failed}  # z failed case 0


def test_review_needs_two_configs():
    with pytest.raises(ValueError, match="two different configs"):
        draw_pairs(_generations(), ["x", "x"], seed=0)


def test_configs_resolve_by_hash_prefix_or_label_and_are_refused_as_compare_refuses():
    """A newcomer found review and judge refusing names in other words than compare
    ("matches no config" where compare said "fits several")."""
    configs = pd.DataFrame(
        {"hash": ["abc123", "abd456", "ffe000"], "label": ["small t=0", "big t=0", "abc"]}
    )
    chosen = resolve_configs(configs, ["abc1", "big t=0", "ffe000"], "x")
    assert chosen == ["abc123", "abd456", "ffe000"]
    with pytest.raises(EvalError, match="'ab' fits several configs of x"):
        resolve_configs(configs, ["ab"], "x")
    with pytest.raises(
        EvalError, match="'t=0' fits several configs of x: 'small t=0' \\(abc123\\)"
    ):
        resolve_configs(configs, ["t=0"], "x")
    with pytest.raises(EvalError, match="experiment x has no config 'zzz'; its configs: "):
        resolve_configs(configs, ["zzz"], "x")


def test_default_configs_are_the_best_two():
    board = pd.DataFrame({"config": ["a", "b", "c"], "acc": [0.2, 0.9, 0.5]})
    assert default_configs(board, "acc") == ["b", "c"]
    assert default_configs(board, None) == ["a", "b"]


def test_one_config_named_twice_is_refused_naming_it(tmp_path):
    """A newcomer's `review --configs 0ccaf5 0ccaf584851c1490` was refused with a Python
    list of the two equal hashes."""
    from evaluation.review.queue import prepare_queue
    from tests.support.review_db import build_review_db

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=2)
    first = db.configs[0].hash
    with pytest.raises(EvalError) as refused:
        prepare_queue(db.engine, db.experiment, "ana", configs=[first[:6], first])
    assert str(refused.value) == (
        f"side-by-side review needs two different configs; the names given all name {first}"
    )
