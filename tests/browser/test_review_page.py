"""The review page end to end in real headless Chromium (Debian's `chromium` package,
driven by Playwright): load it, rate a pair, reload, find the rating stored; change it
and find the old rating kept in the history; rate a session by keyboard alone and see
who wrote what revealed at its end."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from evaluation.labels import distinguishing_labels
from evaluation.review.app import LOOPBACK_HOSTS, create_app
from evaluation.review.frames import ratings_frame
from evaluation.review.store import BLIND, CRITERIA
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db

pytestmark = pytest.mark.integration


def test_rate_a_pair_reload_and_find_it_stored(browser, database_url):
    db = build_review_db(database_url, n_cases=6)
    app = create_app(
        db.engine, db.experiment, "ann", per_pair=3, seed=2, allowed_hosts=LOOPBACK_HOSTS
    )
    shown = distinguishing_labels([c.label for c in db.configs])  # the leaderboard's names
    identities = [name for c in db.configs for name in (c.label, shown[c.label], c.hash)]
    with serving(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/?key={app.state.key}")  # the printed link
        page.wait_for_selector("#pair", state="visible")
        assert page.inner_text("#progress") == "0 of 3 pairs rated"
        body = page.inner_text("body")
        assert not any(name in body for name in identities)  # blinded
        assert page.is_hidden("#identity-A") and page.is_hidden("#identity-B")
        # no latency while blinded (it would name the bigger model), only a word on why
        assert "latency" not in page.inner_text(".outputs").lower()
        assert page.inner_text("#latency-A") == "rated once revealed (latency hidden until then)"
        assert page.is_disabled('input[name="A-speed"][value="3"]')  # speed: after the reveal
        assert page.input_value("#notes") == ""

        for criterion in BLIND:
            page.check(f'input[name="A-{criterion}"][value="5"]')
            page.check(f'input[name="B-{criterion}"][value="2"]')
        page.check('input[name="preference"][value="A"]')
        page.fill("#notes", "A names the right city")
        page.click("#submit")
        page.wait_for_selector("#status:has-text('Saved')")
        assert page.is_hidden("#identity-A")  # rated, but the session goes on
        assert not any(name in page.inner_text("body") for name in identities)
        page.click("#reveal-pair")  # the rater asks for this pair
        page.wait_for_selector("#identity-A", state="visible")
        revealed = page.inner_text("#identity-A")
        assert any(shown[c.label] in revealed for c in db.configs)
        assert page.inner_text("#latency-A").endswith(" s")  # latency once revealed
        assert page.is_enabled('input[name="A-speed"][value="3"]')  # and speed to rate
        pair_url = page.url
        assert "?pair=" in pair_url

        page.reload()
        page.wait_for_selector("#identity-A", state="visible")
        assert page.url == pair_url
        assert page.inner_text("#progress") == "1 of 3 pairs rated"
        for criterion in BLIND:
            assert page.is_checked(f'input[name="A-{criterion}"][value="5"]')
            assert page.is_checked(f'input[name="B-{criterion}"][value="2"]')
        assert page.is_checked('input[name="preference"][value="A"]')
        assert page.input_value("#notes") == "A names the right city"
        assert page.inner_text("#identity-A") == revealed

        with Session(db.engine) as session:
            stored = ratings_frame(session, db.experiment_id, rater="ann")
        assert len(stored) == 7
        pref = stored[stored.criterion == "preference"].iloc[0]
        assert (pref.preference, pref.notes) == ("A", "A names the right city")
        assert sorted(stored.stars.dropna().astype(int)) == [2] * 3 + [5] * 3

        page.check('input[name="A-speed"][value="3"]')  # revealed: speed can be rated now
        page.check('input[name="B-speed"][value="4"]')
        page.click("#submit")
        page.wait_for_selector("#status:has-text('Saved.')")
        page.check('input[name="B-speed"][value="5"]')
        page.click("#submit")
        page.wait_for_selector("#status:has-text('replaces your earlier rating')")
        page.goto(url + "/history")
        page.wait_for_selector("#rows tr")
        assert page.locator("#rows tr").count() == 10
        struck = page.locator("#rows tr.superseded")
        assert struck.count() == 1
        assert "speed" in struck.inner_text() and "replaced by #" in struck.inner_text()
        page.close()


def test_a_session_by_keyboard_alone_reveals_who_wrote_what_at_its_end(browser, database_url):
    db = build_review_db(database_url, n_cases=4, chat=True)
    app = create_app(db.engine, db.experiment, "kim", per_pair=2, seed=3)
    labels = set(distinguishing_labels([c.label for c in db.configs]).values())
    with serving(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/?key={app.state.key}")  # the printed link
        page.wait_for_selector("#pair", state="visible")
        # the whole conversation: system prompt, the earlier exchange, the question
        assert page.locator("#turns li").count() == 4
        assert "geography tutor" in page.inner_text("#turns li.system")
        assert page.inner_text("#progress") == "0 of 2 pairs rated"
        first = page.url
        for _ in CRITERIA:  # criterion by criterion: A's stars, then B's (speed: not yet)
            page.keyboard.press("4")
            page.keyboard.press("2")
        page.keyboard.press("b")
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")  # twice (J1's addendum): one save, one move on
        page.wait_for_function(f"location.href !== {first!r}")
        page.wait_for_selector("#progress:has-text('1 of 2')")
        assert not any(name in page.inner_text("body") for name in labels)

        page.check("#fast")  # the preference alone
        assert page.is_hidden("#criteria-box")
        page.keyboard.press("t")
        page.keyboard.press("Enter")
        page.wait_for_selector("#done", state="visible")
        rows = page.locator("#reveal tbody tr")
        assert rows.count() == 2
        text = page.inner_text("#reveal")
        assert any(label in text for label in labels) and "tie" in text
        # J3: at the session's end every pair is revealed, and its speed may be rated:
        # the table had no way to it (no stars, rows not links)
        page.uncheck("#fast")
        assert page.inner_text("#reveal tbody tr:first-child .rate-speed") == "rate speed"
        page.click("#reveal tbody tr:first-child .rate-speed")
        page.wait_for_selector("#pair", state="visible")
        assert page.is_enabled('input[name="A-speed"][value="3"]')
        assert page.inner_text("#latency-A").startswith("latency")
        page.keyboard.press("3")  # the keys start at speed: A, then B
        page.keyboard.press("5")
        page.keyboard.press("Enter")
        page.wait_for_selector("#done", state="visible")
        speed = page.inner_text("#reveal tbody tr:first-child .rate-speed")
        assert speed == "A 3\u2605, B 5\u2605 (change)"
        # the pair rated in fast mode takes its speed alone, in fast mode too (it took
        # speed only with every blind criterion's stars)
        page.click("#reveal tbody tr:nth-child(2) .rate-speed")
        page.wait_for_selector("#pair", state="visible")
        page.check("#fast")
        assert page.is_visible("#cell-A-speed") and page.is_hidden("#cell-A-accuracy")
        page.keyboard.press("4")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        page.wait_for_selector("#done", state="visible")
        speed = page.inner_text("#reveal tbody tr:nth-child(2) .rate-speed")
        assert speed == "A 4\u2605, B 1\u2605 (change)"
        page.close()

    with Session(db.engine) as session:
        stored = ratings_frame(session, db.experiment_id, rater="kim")
    prefs = stored[stored.criterion == "preference"].sort_values("pair_id")
    assert sorted(prefs.preference) == ["B", "tie"]
    assert len(stored) == 6 + 2 + 4  # blind stars of the first pair only, two preferences
    assert sorted(stored[stored.criterion == "speed"].stars.astype(int)) == [1, 3, 4, 5]
    assert sorted(stored.stars.dropna().astype(int)) == [1] + [2] * 3 + [3] + [4] * 4 + [5]


def test_the_review_page_does_not_scroll_sideways_on_a_phone(browser, database_url):
    """At 390 px the page was 605 px wide: a reader had to scroll sideways to rate."""
    db = build_review_db(database_url, n_cases=4)
    app = create_app(
        db.engine, db.experiment, "ann", per_pair=2, seed=2, allowed_hosts=LOOPBACK_HOSTS
    )
    with serving(app) as url:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{url}/?key={app.state.key}")  # the printed link
        page.wait_for_selector("#pair", state="visible")
        overflow = page.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth"
        )
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
            ".right > document.documentElement.clientWidth + 1).map(e => e.tagName + '#' + e.id"
            " + '.' + e.className).slice(0, 12)"
        )
        page.close()
    assert overflow == 0, wide
