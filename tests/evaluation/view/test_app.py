"""The view app over HTTP: every page answers, untrusted text is escaped, bad query
values are refused with one line, unknown names are 404s, foreign hosts are refused."""

from __future__ import annotations

import html

import httpx
import pytest
from sqlmodel import Session

from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.storage.models import Generation
from evaluation.storage.repository import generations_frame
from evaluation.view.app import create_app
from evaluation.wording import cost_words
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    db = build_review_db(f"sqlite:///{tmp_path_factory.mktemp('viewapp') / 'r.db'}", n_cases=3)
    with Session(db.engine) as session:
        first = int(generations_frame(session, db.experiment_id).id.iloc[0])
        session.get(Generation, first).output = "<script>alert(1)</script>"
        session.commit()
    with (
        serving(create_app(db.engine, allowed_hosts=LOOPBACK_HOSTS)) as url,
        httpx.Client(base_url=url) as c,
    ):
        yield c, db, first


def test_every_page_answers_and_escapes_model_text(client):
    c, db, first = client
    e = f"/e/{db.experiment}"
    for path in ("/", e, f"{e}/summary", f"{e}/compare", f"{e}/cases/c01", f"{e}/g/{first}"):
        response = c.get(path)
        assert response.status_code == 200, path
        assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in c.get(f"{e}/g/{first}").text
    assert c.get("/static/view.css").status_code == 200
    assert c.get("/static/view.js").status_code == 200


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("min=abc", "min: expected a number, got 'abc'"),
        ("page=0", "page: expected 1 or more, got 0"),
        ("failed=maybe", "failed: expected yes, no or any, got 'maybe'"),
        ("sort=colour", "sort: expected one of"),
        ("metric=bogus&min=x", "has no metric 'bogus'; expected one of exact_match, contains"),
        ("metric=exact_match&min=x", "min: expected a number, got 'x'"),
    ],
)
def test_bad_query_values_are_refused_with_one_line(client, query, says):
    c, db, _ = client
    response = c.get(f"/e/{db.experiment}?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")  # a page, not JSON
    assert "400: bad request" in response.text
    assert says.replace("'", "&#39;") in response.text


def test_unknown_names_are_404_and_foreign_hosts_400(client):
    c, db, _ = client
    missing = c.get("/e/no-such-experiment")
    assert missing.status_code == 404 and "<h2>404: not found</h2>" in missing.text
    assert c.get("/e/no-such-experiment/summary").status_code == 404
    assert c.get(f"/e/{db.experiment}/g/not-a-number").status_code == 400
    assert c.get(f"/e/{db.experiment}/cases/no-such-case").status_code == 404
    assert c.get(f"/e/{db.experiment}/g/999999").status_code == 404
    assert c.get("/", headers={"host": "evil.example"}).status_code == 400


def test_the_summary_shows_the_reports_numbers(client):
    """Leaderboard (rank, distinguishing label, intervals), verdict and configs within
    noise of the best: what the report and the CLI compute, from the same functions."""
    from evaluation.compare._leaderboard import ranked_table
    from evaluation.report import gather

    c, db, _ = client
    page = c.get(f"/e/{db.experiment}/summary").text
    with Session(db.engine) as session:
        data = gather(session, db.experiment)
    assert html.escape(data.comparison.verdict) in page
    labels = data.board.labels
    ordered = [labels[x] for x in ranked_table(data.board)["config"]]
    positions = [page.index(f">{label}</a>") for label in ordered]
    assert positions == sorted(positions)  # the CLI's order
    assert page.count("within noise of the best</span>") == len(data.comparison.tied_at_top)
    assert 'http-equiv="refresh"' not in page  # not running


def test_the_summary_reloads_itself_while_a_run_is_going(client):
    from evaluation.storage.models import Experiment

    c, db, _ = client
    with Session(db.engine) as session:
        row = session.get(Experiment, db.experiment_id)
        before, row.status = row.status, "running"
        session.commit()
    try:
        page = c.get(f"/e/{db.experiment}/summary").text
    finally:
        with Session(db.engine) as session:
            session.get(Experiment, db.experiment_id).status = before
            session.commit()
    assert '<meta http-equiv="refresh" content="5">' in page and 'id="live"' in page


def test_scores_are_coloured_only_on_a_zero_to_one_scale_with_a_direction():
    from evaluation.view.app import score_class

    assert (score_class("exact_match", 1.0), score_class("exact_match", 0.0)) == ("pass", "fail")
    assert score_class("rougeL", 0.4) == "partial"
    assert score_class("output_length", 1.0) == ""  # descriptive: no better end
    assert score_class("output_length", 7.0) == "" and score_class("exact_match", None) == ""
    # echoing the prompt is plainly bad: lower is better, so it is coloured
    assert (score_class("echoes_prompt", 1.0), score_class("echoes_prompt", 0.0)) == (
        "fail",
        "pass",
    )


def test_side_by_side_names_the_test_and_never_prints_p_as_zero(client):
    """It printed `clustered paired t p = 0.000`: neither a p-value a reader can use
    nor a word on whether it was adjusted."""
    from evaluation.view.app import p_value_text

    assert p_value_text(0.0000042) == "p < 0.001"
    assert p_value_text(0.0123) == "p = 0.012"
    assert p_value_text(None) == "p –"
    c, db, _ = client
    with Session(db.engine) as session:
        a, b = sorted(set(generations_frame(session, db.experiment_id).config_hash))[:2]
    page = c.get(f"/e/{db.experiment}/compare", params={"a": a, "b": b}).text
    assert "p = 0.000" not in page and "not adjusted for multiple comparisons" in page
    # the pair's interval is shown, and said to be unadjusted like its p (compare's
    # table puts an adjusted p beside the same interval)
    assert "[95% CI " in page and "p and interval not adjusted" in page


def test_prompt_tokens_the_server_did_not_report_say_so(tmp_path):
    """Issue 27: `tokens None in / 10 out` where prompt_eval_count was not reported
    (stored NULL)."""
    from fastapi.testclient import TestClient

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=2)
    with Session(db.engine) as session:
        generation = session.get(
            Generation, int(generations_frame(session, db.experiment_id).id.iloc[0])
        )
        generation.prompt_eval_count, generation.eval_count = None, 10
        session.commit()
        generation_id = generation.id
    client = TestClient(create_app(db.engine))
    page = client.get(f"/e/{db.experiment}/g/{generation_id}").text
    assert "tokens in: not reported / 10 out" in page and "None" not in page


def test_the_pipeline_run_reads_in_words_not_python_values(tmp_path):
    """The block showed `meta` as a Python dict, raw column names, a time with
    microseconds and `TTFT – s`."""
    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from evaluation.storage.models import CaseRun

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=2)
    with Session(db.engine) as session:
        generation = session.get(
            Generation, int(generations_frame(session, db.experiment_id).id.iloc[0])
        )
        generation.ttft_s = None
        key = {k: getattr(generation, k) for k in ("experiment_id", "config_hash", "case_uid")}
        session.add(
            CaseRun(
                **key,
                pipeline="rag",
                wall_s=1.5,
                calls=2,
                context_truncated_calls=1,
                meta={"retrieved_chunk_ids": ["d1#0", "d2#3"], "empty_hits": []},
                created_at=datetime(2026, 11, 24, 2, 17, 35, 383066, tzinfo=UTC),
            )
        )
        session.commit()
        generation_id = generation.id
    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/g/{generation_id}").text
    block = page[page.index('id="pipeline-run"') :]
    assert "{'" not in block and "wall_s" not in block and "context_truncated_calls" not in block
    assert "2026-11-24 02:17:35<" in block and "383066" not in block
    assert "<td>retrieved chunk ids</td><td>d1#0, d2#3</td>" in block
    assert "<td>empty hits</td><td>none</td>" in block
    assert "TTFT: not measured" in page and "TTFT – s" not in page
    # the case's bare question is not what the pipeline's calls received (their prompts
    # carry the retrieved context): it claimed "Input, as the model received it"
    assert "as the model received it" not in page and "<h2>Case input (the question)</h2>" in page
    assert "did not store the prompts it sent" in page  # no call prompts in this database
    plain = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/g/{generation_id + 1}")
    assert "<h2>Input, as the model received it</h2>" in plain.text


def test_side_by_side_with_one_config_on_both_sides_is_a_400_page(client):
    """It crashed with a 500 (`must be real number, not Series`) in the pair's ranking."""
    c, db, _ = client
    with Session(db.engine) as session:
        a = sorted(set(generations_frame(session, db.experiment_id).config_hash))[0]
    response = c.get(f"/e/{db.experiment}/compare", params={"a": a, "b": a})
    assert response.status_code == 400 and "400: bad request" in response.text
    assert "pick two different configs" in response.text


def test_side_by_side_says_which_side_names_no_config(client):
    """A newcomer's side-by-side error did not say whether `a` or `b` was wrong."""
    c, db, _ = client
    with Session(db.engine) as session:
        a = sorted(set(generations_frame(session, db.experiment_id).config_hash))[0]
    for params, side in (({"a": a, "b": "nope"}, "b"), ({"a": "nope", "b": a}, "a")):
        response = c.get(f"/e/{db.experiment}/compare", params=params)
        assert response.status_code == 404
        assert f"{side}: experiment {db.experiment!r} has no config 'nope'" in html.unescape(
            response.text
        )


def test_a_page_past_the_last_is_a_404_linking_the_last_page(client):
    """`?page=999` answered 200 with an empty "page 999 of 1"."""
    c, db, _ = client
    response = c.get(f"/e/{db.experiment}", params={"q": "City", "page": 999})
    assert response.status_code == 404
    assert "page 999 is past the last page (1)" in response.text
    assert 'href="?q=City&amp;page=1" id="last-page"' in response.text
    assert c.get(f"/e/{db.experiment}", params={"page": 1, "q": "no such text"}).status_code == 200
    with Session(db.engine) as session:
        a, b = sorted(set(generations_frame(session, db.experiment_id).config_hash))[:2]
    pairs = c.get(f"/e/{db.experiment}/compare", params={"a": a, "b": b, "page": 999})
    assert pairs.status_code == 404 and 'id="last-page"' in pairs.text


def test_side_by_side_refuses_an_unknown_metric(client):
    """`compare…&metric=bogus` silently dropped the case-by-case summary."""
    c, db, _ = client
    with Session(db.engine) as session:
        a, b = sorted(set(generations_frame(session, db.experiment_id).config_hash))[:2]
    response = c.get(f"/e/{db.experiment}/compare", params={"a": a, "b": b, "metric": "bogus"})
    assert response.status_code == 400
    assert "has no metric &#39;bogus&#39;; expected one of exact_match, contains" in response.text


def test_the_summary_shows_every_metrics_pareto_front_as_the_report_does(client):
    """The view listed only the first metric's fronts, the report one per quality metric;
    the leaderboard's "on front" did not say on which metric's front."""
    from evaluation.report import gather
    from evaluation.report.html import _leaderboard

    c, db, _ = client
    page = c.get(f"/e/{db.experiment}/summary").text
    with Session(db.engine) as session:
        data = gather(session, db.experiment)
    pareto = page[page.index('id="pareto"') :].split("</section>")[0]
    assert {f.quality for f in data.fronts} == {"exact_match", "contains"}
    for front in data.fronts:
        head = f'<p data-metric="{front.quality}"><b>{front.quality}</b> against '
        head += f"{cost_words(front.cost)}:"
        line = pareto[pareto.index(head) :].split("</p>")[0]
        assert line.count("</a>") == len(front.configs)
    on_both = [
        x
        for x in data.board.labels
        if all(x in f.configs for f in data.fronts if f.cost == "latency_p95_s")
    ]
    assert on_both and "Pareto front: exact_match, contains</span>" in page
    cells = [cell for row in _leaderboard(data).blocks[0].rows for cell in row]
    assert "on front: exact_match, contains" in cells and "on front" not in cells


def test_a_url_names_a_config_as_every_other_output_does():
    """A newcomer found ?config= refusing a label written before num_predict was shown
    (compare and the spec take it), and calling a name that fits two configs unknown."""
    from evaluation.view.app import UnknownConfig, _config
    from evaluation.view.queries import ExperimentFacts

    full = {"aaaa1111": "m:1b t=0 n=16", "bbbb2222": "m:1b t=0 n=64", "cccc3333": "m:1b t=0.7"}
    facts = ExperimentFacts(
        configs=[{"hash": h} for h in full],
        groups=[],
        metrics=[],
        labels={"aaaa1111": "t=0 n=16", "bbbb2222": "t=0 n=64", "cccc3333": "t=0.7"},
        full_labels=full,
    )
    for name, expected in [
        ("aaaa1111", "aaaa1111"),
        ("bbbb", "bbbb2222"),
        ("t=0 n=64", "bbbb2222"),
        ("m:1b t=0 n=16", "aaaa1111"),
        ("m:1b t=0.7", "cccc3333"),
    ]:
        assert _config(name, facts, "x") == expected, name
    with pytest.raises(UnknownConfig, match="config: 'm:1b t=0' fits 2 configs of experiment 'x'"):
        _config("m:1b t=0", facts, "x")
    with pytest.raises(UnknownConfig) as caught:  # part of two labels: as the CLI says
        _config("n=", facts, "x", "b")
    assert caught.value.detail == "b: 'n=' fits 2 configs of experiment 'x'"
    assert [label for label, _ in caught.value.choices] == ["t=0 n=16", "t=0 n=64"]
    with pytest.raises(UnknownConfig, match="'x' has no config 'zz'"):
        _config("zz", facts, "x")
