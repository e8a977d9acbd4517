"""A pipeline generation's transcript in real headless Chromium: every model call in
order with its wait and service time, the shared embedding marked, the retrieved chunks
with their similarity, a long prompt folded until the reader opens it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.view.app import create_app
from tests.evaluation.pipelines.test_transcript import QUESTION, store_rag_traces
from tests.support.asgi_server import serving

pytestmark = pytest.mark.integration


def test_the_transcript_shows_every_call_and_folds_long_prompts(browser, tmp_path):
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        db, generations = pool.submit(store_rag_traces, tmp_path).result()
    with serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/e/{db.experiment}/g/{generations[0]}")
        calls = page.locator("#transcript li.call")
        assert [calls.nth(i).get_attribute("data-stage") for i in range(3)] == [
            "embed",
            "retrieve",
            "answer",
        ]
        assert calls.nth(0).locator(".shared-tag").is_visible()
        assert calls.nth(1).locator(".shared-tag").count() == 0
        answer = calls.nth(2)
        timing = answer.locator(".timing").inner_text()
        assert "waited " in timing and "service " in timing and "output tokens" in timing
        assert answer.locator(".timebar .t-service").bounding_box()["width"] > 0
        # the retrieved chunks, best first, with their similarity
        similarities = [float(s) for s in answer.locator("td.similarity").all_inner_texts()]
        assert len(similarities) == 2 and similarities == sorted(similarities, reverse=True)
        assert answer.locator("table.retrieved td").first.inner_text().startswith("d0#")
        # the question embedded for retrieval is short: shown; the answer's prompt is long:
        # folded until opened
        assert calls.nth(1).locator("details pre").inner_text() == QUESTION
        prompt = answer.locator(".call-prompt details")
        assert not prompt.locator("pre").is_visible()
        prompt.locator("summary").click()
        assert prompt.locator("pre").is_visible()
        assert prompt.locator("pre").inner_text().endswith(f"Q: {QUESTION}")
        assert answer.locator(".call-output pre").inner_text().startswith("saw ")
        # the second case used the run's embedding: no embed call of its own
        page.goto(f"{url}/e/{db.experiment}/g/{generations[1]}")
        stages = page.locator("#transcript li.call").evaluate_all(
            "calls => calls.map(c => c.dataset.stage)"
        )
        assert stages == ["retrieve", "answer"]
        page.close()
