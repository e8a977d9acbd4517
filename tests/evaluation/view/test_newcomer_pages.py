"""What a newcomer found in the pages (issue 44 §6), each checked over HTTP: a generation
links its neighbours, the list documents its keys, the side-by-side page opens on #1 vs
#2 with the case's input and reference, the flip matrix is coloured, a config within
noise ranked below a significantly worse one says why, and zero is never -0.000."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session, select

from evaluation.compare._text import _diff
from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.statistics.precision import fixed, rounded
from evaluation.storage.db import make_engine
from evaluation.storage.models import Generation
from evaluation.view.app import create_app
from evaluation.view.matrix import flip_shade
from tests.support.asgi_server import serving
from tests.support.results_db import add_experiment, make_config, make_suite
from tests.support.review_db import build_review_db


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = build_review_db(f"sqlite:///{tmp_path_factory.mktemp('newcomer') / 'r.db'}", n_cases=4)
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        yield c, db


def test_a_generation_page_links_the_previous_and_the_next(client):
    c, db = client
    with Session(db.engine) as session:
        ids = list(
            session.exec(
                select(Generation.id)
                .where(Generation.experiment_id == db.experiment_id)
                .order_by(Generation.id)
            )
        )
    e = f"/e/{db.experiment}"
    first, middle, last = (c.get(f"{e}/g/{i}").text for i in (ids[0], ids[1], ids[-1]))
    assert 'id="g-previous"' not in first and f'href="{e}/g/{ids[1]}" rel="next"' in first
    assert f'href="{e}/g/{ids[0]}" rel="prev"' in middle
    assert f'href="{e}/g/{ids[2]}" rel="next"' in middle
    assert 'id="g-next"' not in last
    listing = c.get(e).text
    assert "<kbd>j</kbd> / <kbd>k</kbd> move down / up the rows" in listing
    assert "<kbd>Enter</kbd> opens the current one" in listing


def test_side_by_side_opens_on_the_top_two_with_input_and_reference(client):
    c, db = client
    page = c.get(f"/e/{db.experiment}/compare").text
    assert 'id="opened-on-top"' in page
    summary = c.get(f"/e/{db.experiment}/summary").text
    top = [summary.split(f'?config={h}">')[1].split("<")[0] for h in _ranked(summary)[:2]]
    a_is = page.split("A is <b>")[1].split("</b>")[0]
    b_is = page.split("B is <b>")[1].split("</b>")[0]
    assert (a_is, b_is) == tuple(top)
    # every card has the case's input and its reference
    assert page.count('class="case-input"') == page.count('class="pair"') > 0
    assert "What is the capital of country 0?" in page and "City 0" in page
    # a pick by hand is not overridden
    chosen = c.get(f"/e/{db.experiment}/compare", params={"a": _ranked(summary)[1]}).text
    assert 'id="opened-on-top"' not in chosen


def _ranked(summary: str) -> list[str]:
    """Config hashes in leaderboard order, read from the summary's links."""
    board = summary.split('id="leaderboard"')[1]
    return [part.split('"')[0] for part in board.split("?config=")[1:]]


def test_the_flip_matrix_is_coloured_by_how_one_sided_a_pair_is(client):
    assert flip_shade(0, 0) == (0.0, 0.0)
    assert flip_shade(3, 3) == (0.0, 0.0)
    assert flip_shade(4, 0) == (1.0, 0.0)
    assert flip_shade(1, 3) == (0.0, 0.5)
    c, db = client
    page = c.get(f"/e/{db.experiment}/matrix").text
    assert page.count('class="num flip-cell"') == len(db.configs) * (len(db.configs) - 1)
    assert 'style="--win: ' in page and 'id="flip-legend"' in page


def test_zero_is_written_0_000_never_minus_zero():
    assert fixed(-0.0004) == "0.000" and fixed(-0.0004, signed=True) == "0.000"
    assert fixed(0.0004, signed=True) == "0.000"
    assert fixed(-0.0006, signed=True) == "-0.001" and fixed(0.25, 2, signed=True) == "+0.25"
    assert str(rounded(-0.0001, 3)) == "0.0"
    shown = _diff({"diff": -0.0001, "diff_ci_low": -0.02, "diff_ci_high": 0.02}, 3)
    assert "-0.000" not in shown and shown.startswith("0.000 [")


def test_within_noise_below_a_significantly_worse_config_says_why(tmp_path):
    """#3 within noise of the best ranked below #2, significantly worse, read as a bug:
    each is tested against the best on its own paired differences (McNemar here)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    best, steady, noisy = (make_config(m) for m in ("best:8b", "steady:3b", "noisy:1b"))
    n = 40
    scores = {
        best: [1.0 if i < 28 else 0.0 for i in range(n)],  # 0.70
        steady: [1.0 if 8 <= i < 28 else 0.0 for i in range(n)],  # 0.50: loses 8, wins 0
        noisy: [1.0 if i >= 22 else 0.0 for i in range(n)],  # 0.45: loses 22, wins 12
    }
    with Session(engine) as session:
        add_experiment(
            session, "order", make_suite(n), {c: {"exact_match": v} for c, v in scores.items()}
        ).status = "completed"
        session.commit()
    with serving(create_app(engine, allowed_hosts=LOOPBACK_HOSTS)) as url:
        page = httpx.get(f"{url}/e/order/summary", timeout=60).text
    board = page.split('id="leaderboard"')[1].split("</table>")[0]
    rows = board.split("<tr")[2:]
    assert ">steady:3b<" not in rows[0] and "significantly worse than the best" in rows[1]
    assert "within noise of the best" in rows[2]
    why = rows[2].split('class="why-order muted">')[1].split("</p>")[0]
    assert why.startswith("Ranked below #2, which is significantly worse")
    assert f"/e/order/compare?a={best.hash}&amp;b={noisy.hash}&amp;metric=exact_match" in why
