"""`evalflow view`'s pages in real headless Chromium: filter by choosing a config (the
form applies itself), read two configs side by side with their score difference, and
open deep links to a case and to a filtered list straight from their URLs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pytest

from evaluation.labels import distinguishing_labels
from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.view.app import create_app
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = build_review_db(
        f"sqlite:///{tmp_path_factory.mktemp('view') / 'r.db'}", n_cases=6, chat=True
    )
    with serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url:
        yield db, f"{url}/e/{db.experiment}"


def _shown(db) -> dict[str, str]:
    return distinguishing_labels([c.label for c in db.configs])


def test_choosing_a_config_filters_the_list_and_the_url_keeps_it(browser, served):
    db, base = served
    page = browser.new_page()
    page.goto(base)
    assert page.inner_text("#total") == "18 matches"
    second = db.configs[1]
    with page.expect_navigation():
        page.select_option("#f-config", second.hash)
    assert page.inner_text("#total") == "6 matches"
    cells = page.locator("#rows tbody tr td:nth-child(2)").all_inner_texts()
    assert cells == [_shown(db)[second.label]] * 6  # what varies, not the whole label
    assert parse_qs(urlparse(page.url).query)["config"] == [second.hash]
    page.fill("#f-case", "c04")
    with page.expect_navigation():
        page.press("#f-case", "Enter")
    assert page.inner_text("#total") == "1 match"
    assert "Town 4" in page.inner_text("#rows tbody")  # config 1 misses even cases
    page.close()


def test_two_configs_side_by_side_with_the_score_difference(browser, served):
    db, base = served
    page = browser.new_page()
    page.goto(base + "/compare")
    with page.expect_navigation():  # each choice applies at once
        page.select_option("#f-a", db.configs[0].hash)
    with page.expect_navigation():
        page.select_option("#f-b", db.configs[1].hash)
    with page.expect_navigation():
        page.select_option("#f-metric", "exact_match")
    with page.expect_navigation():
        page.select_option("#f-sort", "|diff|")
    pairs = page.locator("article.pair")
    assert pairs.count() == 6
    first = pairs.first
    assert first.get_attribute("data-case") in ("c00", "c02", "c04")  # config 1 misses these
    assert "exact_match +1.000" in first.locator(".diff").inner_text()
    assert "City" in first.locator(".side-A pre.output").inner_text()
    assert "Town" in first.locator(".side-B pre.output").inner_text()
    # the words B wrote and A did not are highlighted, the shared number is not
    assert first.locator(".side-A mark.only-A").inner_text() == "City "
    marked = first.locator(".side-B mark.only-B").all_inner_texts()
    assert marked == ["Town ", "(by config 1)"]
    # the case-by-case summary, each case a link
    summary = page.inner_text("#pair-summary")
    # three of six cases differ, clustered by case group: no evidence at 0.05 (a clustered
    # SE of 0 read "p < 0.001" before the statistics' fix; never "p = 0.000")
    assert "A better on 3 cases, B on 0, tied 3; p = 0.155" in summary
    page.locator("#pair-summary .cases-A a").first.click()
    page.wait_for_selector("article.generation")
    assert "/cases/c0" in page.url
    page.close()


def test_deep_links_open_a_case_and_a_filtered_list(browser, served):
    db, base = served
    page = browser.new_page()
    page.goto(base + "/cases/c02")
    assert page.locator("article.generation").count() == 3
    turns = page.locator("ol.turns li")
    assert turns.count() == 4 and "geography tutor" in turns.first.inner_text()
    page.locator("article.generation h2 a").first.click()
    page.wait_for_selector("#output")
    assert "/g/" in page.url and page.inner_text("#output") == "City 2"
    assert "What is the capital of country 2?" in page.inner_text("ol.turns")

    label = db.configs[2].label
    page.goto(f"{base}?config={label}&failed=no&sort=latency&dir=desc")
    assert page.inner_text("#total") == "6 matches"
    assert page.locator("#f-config option:checked").inner_text() == _shown(db)[label]
    latencies = [
        float(t) for t in page.locator("#rows tbody td:nth-last-child(4)").all_inner_texts()
    ]
    assert latencies == sorted(latencies, reverse=True)
    page.close()


def test_the_summary_page_dark_mode_and_error_pages(browser, served):
    """The experiment page: verdict, leaderboard in the CLI's order with the configs
    within noise marked; the theme button switches to dark and the choice survives a
    reload; an unknown experiment is an HTML page leading back."""
    db, base = served
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(base + "/summary")
    assert page.inner_text("#verdict h2") == "Verdict on exact_match"
    assert "within noise of the best" in page.inner_text("#verdict") or "wins" in page.inner_text(
        "#verdict"
    )
    rows = page.locator("#leaderboard tbody tr")
    assert rows.count() == len(db.configs)
    assert rows.first.locator("td").first.inner_text() == "#1"
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("#theme")
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark != light and dark == "rgb(20, 23, 29)"
    page.reload()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark
    page.click("#theme")  # back to light for the other pages
    rows.first.locator("td a").click()
    page.wait_for_selector("#total")
    assert "config=" in page.url
    page.goto(base.rsplit("/e/", 1)[0] + "/e/no-such-experiment")
    assert page.inner_text("#error h2") == "404: not found"
    page.click("#error a")
    assert page.url.endswith("/")
    page.close()


def test_the_system_dark_preference_applies_without_a_choice(browser, served):
    _, base = served
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto(base + "/summary")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 29)"
    context.close()


def test_search_shows_input_reference_and_pass_fail_colours(browser, served):
    _, base = served
    page = browser.new_page()
    page.goto(base)
    page.fill("#f-q", "town")
    with page.expect_navigation():
        page.press("#f-q", "Enter")
    assert parse_qs(urlparse(page.url).query)["q"] == ["town"]
    rows = page.locator("#rows tbody tr")
    total = int(page.inner_text("#total").split()[0])
    assert total > 0 and rows.count() == total
    # every wrong answer: red on its row and on its exact_match cell, the input and the
    # reference beside it
    assert page.locator("#rows tbody tr.fail").count() == total
    first = rows.first
    assert "capital of country" in first.locator("td.input").inner_text()
    assert first.locator("td.reference").inner_text().startswith("City ")
    colour = first.locator("td.num.fail").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(251, 228, 228)"
    page.goto(base + "?q=City")
    assert page.locator("#rows tbody tr.pass").count() > 0
    page.close()


def test_a_flip_matrix_cell_opens_the_two_configs_side_by_side(browser, served):
    _, base = served
    page = browser.new_page()
    page.goto(base + "/matrix")
    cell = page.locator("#flips tbody tr").first.locator("td.num a").first
    count = int(cell.inner_text())
    cell.click()
    page.wait_for_selector("#pair-summary")
    assert f"A better on {count} cases" in page.inner_text("#pair-summary")
    page.goto(base + "/grid")
    with page.expect_navigation():  # choosing a parameter redraws the grid
        page.select_option("#f-y", "temperature")
    assert "over temperature × model" in page.inner_text("#grid h2")
    page.close()


def test_a_static_export_opens_from_disk_without_the_server(browser, served, tmp_path):
    from evaluation.view.static_export import export_view

    db, _ = served
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        done = pool.submit(export_view, db.engine, db.experiment, tmp_path / "export").result()
    # summary, flips, grid, one list page, generations, cases, side by side for 6 pairs
    assert done.pages == 3 + 1 + 18 + 6 + 6
    for html in (tmp_path / "export").rglob("*.html"):
        text = html.read_text()
        assert 'href="/' not in text and 'src="/' not in text, html  # nothing needs a server
    page = browser.new_page()
    page.goto((tmp_path / "export" / "summary.html").as_uri())
    assert page.inner_text("#verdict h2") == "Verdict on exact_match"
    page.click("header nav a:has-text('generations')")
    page.wait_for_selector("#rows")
    assert page.url.endswith("generations-1.html")
    page.locator("#rows tbody tr td a").first.click()
    page.wait_for_selector("#output")
    assert "/g/" in page.url and page.url.endswith(".html")
    assert page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
    page.close()
