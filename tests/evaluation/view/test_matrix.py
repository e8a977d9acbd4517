"""Across all configs: the flip matrix counts, for each ordered pair, the cases where
one is better than the other (and the cases only one config gets best); the grid shows
the first metric over two chosen parameters with each cell's interval."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session

from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.view.app import ahead_first, create_app, pair_sort_names
from evaluation.view.matrix import Grid, GridCell, flip_matrix, quality_grid, varied_parameters
from evaluation.view.stored import flips_page
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db, output_for

N = 6


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build_review_db(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'r.db'}", n_cases=N)


def _right(config: int) -> set[int]:
    return {i for i in range(N) if output_for(config, i).startswith("City")}


def test_the_flip_matrix_counts_the_cases_each_config_wins_over_each_other(db):
    hashes = [c.hash for c in db.configs]
    with Session(db.engine) as session:
        flips = flip_matrix(session, db.experiment_id, "exact_match", hashes)
    assert flips.configs == tuple(hashes) and flips.cases == N
    for i in range(3):
        for j in range(3):
            expected = 0 if i == j else len(_right(i) - _right(j))
            assert flips.better[i][j] == expected, (i, j)
    # a case only config 0 gets right is its alone
    alone = {f"c{i:02d}" for i in _right(0) - _right(1) - _right(2)}
    assert set(flips.only_best[hashes[0]]) == alone


def test_the_grid_shows_each_cell_with_its_interval(db):
    with Session(db.engine) as session:
        varied = varied_parameters(session, db.experiment_id)
        grid = quality_grid(session, db.experiment, "temperature", "model")
        assert quality_grid(session, db.experiment, "model", "model") is None
    assert varied == ["model", "temperature"]
    assert grid.x_values == ("0", "0.7", "1") and len(grid.cells) == 3
    cell = grid.cells[("0", "alpha:1b")]
    assert cell.note == "95% CI" and cell.mean == pytest.approx(1.0)
    assert cell.low is not None and cell.low <= cell.mean <= cell.high


def test_the_page_links_every_cell(db):
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url) as client,
    ):
        page = client.get(f"/e/{db.experiment}/matrix").text
        grid = client.get(f"/e/{db.experiment}/grid").text
        bad = client.get(f"/e/{db.experiment}/grid?x=colour")
    a, b = db.configs[0].hash, db.configs[1].hash
    assert f"/compare?a={a}&amp;b={b}&amp;metric=exact_match&amp;sort=diff" in page
    assert f"?config={a}" in grid and "95% CI" in grid
    assert 'id="grid"' not in page and 'id="flips"' not in grid  # each page draws its own
    assert bad.status_code == 400


def test_the_flip_matrix_shows_a_window_of_ranks_and_pages_to_the_rest(db):
    """Two configs at a time of three: ranks 1-2 link to the next window, which ends at
    the last rank (2-3); the cases a config alone gets best count against all three."""
    with Session(db.engine) as session:
        flips = flips_page(session, db.experiment)  # in leaderboard order
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url) as client,
    ):
        first = client.get(f"/e/{db.experiment}/matrix?top=2").text
        last = client.get(f"/e/{db.experiment}/matrix?top=2&start=3").text
        bad = client.get(f"/e/{db.experiment}/matrix?top=none")
    order = list(flips.configs)

    def pairs(page: str) -> set[tuple[str, str]]:
        return {(a, b) for a in order for b in order if f"/compare?a={a}&amp;b={b}&" in page}

    assert pairs(first) == {(order[0], order[1]), (order[1], order[0])}
    assert "ranks 1–2 of 3" in first and "?top=2&amp;start=3" in first and 'id="prev"' not in first
    assert pairs(last) == {(order[1], order[2]), (order[2], order[1])}
    assert "ranks 2–3 of 3" in last and 'id="next"' not in last and "start=1" in last
    for case_id in flips.only_best[order[2]]:
        assert f"/cases/{case_id}" in last
    assert bad.status_code == 400


def test_side_by_side_sorts_are_named_for_the_metrics_direction(db):
    """Sorting by A − B largest first puts A ahead on a higher-is-better metric and B
    ahead on a lower-is-better one (latency, echoing); a descriptive metric has no ahead.
    The flip matrix links a cell to the sort that puts its row's config ahead."""
    assert dict(pair_sort_names("exact_match"))["diff"] == "A ahead first"
    assert dict(pair_sort_names("latency_s"))["diff"] == "B ahead first"
    assert dict(pair_sort_names("latency_s"))["-diff"] == "A ahead first"
    assert dict(pair_sort_names("output_length"))["diff"] == "A higher first"
    assert (ahead_first("contains"), ahead_first("echoes_prompt")) == ("diff", "-diff")
    a, b = db.configs[0].hash, db.configs[1].hash
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url) as client,
    ):
        page = client.get(f"/e/{db.experiment}/compare?a={a}&b={b}&metric=exact_match").text
    assert '<option value="diff" >A ahead first</option>' in page


def test_the_grid_colours_span_the_values_present_best_greenest(db):
    """Close means (0.61 vs 0.64) must not look alike on a fixed 0–1 scale: the colour
    runs from the worst cell to the best; on a lower-is-better metric the lowest is best."""
    cells = {
        ("a", "y"): GridCell(("c1",), 0.61, 0.5, 0.7, "95% CI"),
        ("b", "y"): GridCell(("c2",), 0.64, 0.5, 0.7, "95% CI"),
        ("c", "y"): GridCell(("c3",), 0.625, 0.5, 0.7, "95% CI"),
    }
    grid = Grid("contains", "x", "y", ("a", "b", "c"), ("y",), cells)
    assert grid.span == (0.61, 0.64)
    assert (grid.shade(0.61), grid.shade(0.64)) == (0.0, 1.0)
    assert grid.shade(0.625) == pytest.approx(0.5)
    latency = Grid("latency_s", "x", "y", ("a", "b", "c"), ("y",), cells, higher_is_better=False)
    assert (latency.shade(0.61), latency.shade(0.64)) == (1.0, 0.0)
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url) as client,
    ):
        page = client.get(f"/e/{db.experiment}/grid").text
    assert "Colour: from the worst cell" in page and "--q: 1.000" in page


def test_the_grid_shows_no_interval_on_two_case_groups(tmp_path):
    """As the leaderboard (newcomer N12): on 2 case groups (t on 1 df) a cell's interval
    is noise, "0.75 [0.01, 1.00]"; the grid shows the mean alone."""
    from evaluation.storage.db import make_engine, session_scope
    from tests.support.results_db import add_experiment, make_config, make_suite

    suite = make_suite(5, groups=["a"] * 4 + ["b"])
    scores = {
        make_config("m:1b", 0.0): {"exact_match": [1.0, 1.0, 1.0, 0.0, 1.0]},
        make_config("m:1b", 0.7): {"exact_match": [0.0, 1.0, 1.0, 0.0, 0.0]},
    }
    with session_scope(make_engine(f"sqlite:///{tmp_path / 'r.db'}")) as session:
        add_experiment(session, "few", suite, scores)
        grid = quality_grid(session, "few", "temperature", "model")
    cell = grid.cells[("0", "m:1b")]
    assert cell.mean == pytest.approx(0.8) and cell.low is None and cell.high is None
