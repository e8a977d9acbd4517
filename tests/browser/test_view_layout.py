"""The view's pages in real headless Chromium at a phone's width and with a human
rating stored: the page itself never scrolls sideways (a wide table scrolls in its own
box), the browser finds the icon, and an unknown config is an error page that links
to the experiment's configs."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.review.schema import Rating
from evaluation.storage.models import Generation
from evaluation.view.app import create_app
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db

pytestmark = pytest.mark.integration

PAGES = ("", "/summary", "/matrix", "/grid", "/compare?a={a}&b={b}", "/cases/c01", "/g/{g}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = build_review_db(
        f"sqlite:///{tmp_path_factory.mktemp('layout') / 'r.db'}", n_cases=6, chat=True
    )
    with Session(db.engine) as session:  # one human rating: a human_correctness column
        first = session.exec(select(Generation).order_by(Generation.id)).first()
        session.add(Rating(rater="ann", generation_id=first.id, criterion="correctness", stars=4))
        session.commit()
        generation = first.id
    with serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url:
        yield db, f"{url}/e/{db.experiment}", generation


def _page_overflow(page) -> int:
    """How far the page scrolls sideways (0: not at all)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


def test_one_human_rating_does_not_widen_the_list_past_the_window(browser, served):
    _, base, _ = served
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(base)
    assert "human correctness" in page.inner_text("#rows thead")
    assert _page_overflow(page) == 0
    # nor past its own box: the whole table is in view at a laptop's width
    assert page.evaluate("document.querySelector('.scroll').scrollWidth") <= page.evaluate(
        "document.querySelector('.scroll').clientWidth"
    )
    page.close()


@pytest.mark.parametrize("path", PAGES)
def test_no_page_scrolls_sideways_on_a_phone(browser, served, path):
    db, base, generation = served
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(base + path.format(a=db.configs[0].hash, b=db.configs[1].hash, g=generation))
    assert page.locator("main").count() == 1
    assert _page_overflow(page) == 0, path
    page.close()


def test_the_icon_is_found(browser, served):
    _, base, _ = served
    page = browser.new_page()
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(base + "/summary")
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert page.request.get(icon).status == 200
    assert page.request.get(base.split("/e/")[0] + "/favicon.ico").status == 200
    assert missing == []
    page.close()


def test_an_unknown_config_says_so_and_links_to_the_real_ones(browser, served):
    db, base, _ = served
    page = browser.new_page()
    response = page.goto(base + "?config=zzzz")
    assert response.status == 404
    assert page.inner_text("#error h2") == "404: not found"
    assert "has no config 'zzzz'" in page.inner_text("#error")
    assert page.locator("#choices a").count() == len(db.configs)
    page.locator("#choices a").nth(1).click()
    page.wait_for_selector("#total")
    assert page.inner_text("#total") == "6 matches"
    page.close()
