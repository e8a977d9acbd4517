"""The view's keys in real headless Chromium: on a generation's page j / k open the next
and the previous generation (the list's order), as the list's own hint says."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.storage.models import Generation
from evaluation.view.app import create_app
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db

pytestmark = pytest.mark.integration


def test_j_and_k_step_through_generations(browser, tmp_path):
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=2)
    with Session(db.engine) as session:
        first, second = session.exec(select(Generation.id).order_by(Generation.id).limit(2)).all()
    with serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url:
        page = browser.new_page()
        base = f"{url}/e/{db.experiment}"
        page.goto(f"{base}/g/{first}")
        page.keyboard.press("j")
        page.wait_for_url(f"{base}/g/{second}")
        page.keyboard.press("k")
        page.wait_for_url(f"{base}/g/{first}")
        page.keyboard.press("k")  # the first has no previous: it stays
        assert page.locator("#g-previous").count() == 0 and page.url == f"{base}/g/{first}"
        page.close()
