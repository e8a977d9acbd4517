"""The review app's API: blinded until the session ends (or the rater asks, after
rating), validated, history kept and blinded alike; the whole conversation shown."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlmodel import Session

from evaluation.labels import distinguishing_labels
from evaluation.review.app import LOOPBACK_HOSTS, create_app
from evaluation.review.frames import ratings_frame
from evaluation.review.schema import ReviewPair
from evaluation.review.store import AFTER_REVEAL, BLIND, CRITERIA
from evaluation.spec import PromptTemplate
from evaluation.storage.models import ConfigRow
from evaluation.storage.repository import scores_frame
from tests.support.asgi_server import serving
from tests.support.review_db import build_review_db


def _body(a=4, b=2, preference="A", notes="", criteria=BLIND):
    """A rating of the blind criteria (speed waits for the reveal) unless ``criteria``."""
    return {
        "stars": {"A": dict.fromkeys(criteria, a), "B": dict.fromkeys(criteria, b)},
        "preference": preference,
        "notes": notes,
    }


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('app') / 'results.db'}"
    return build_review_db(url, chat=True)


@pytest.fixture
def review_db(shared_db):
    return shared_db


@pytest.fixture
def client(review_db, request):
    """Each test rates as its own rater, so tests sharing the database do not meet."""
    app = create_app(
        review_db.engine,
        review_db.experiment,
        request.node.name,
        per_pair=4,
        seed=1,
        allowed_hosts=LOOPBACK_HOSTS,
    )
    with serving(app) as url, httpx.Client(base_url=url) as c:
        c.get(f"/?key={app.state.key}")  # the link `evalflow review` prints: its cookie
        c.headers.update(_from_the_page(c, url))
        yield c


def _from_the_page(c: httpx.Client, url: str) -> dict[str, str]:
    """The headers the page's script sends with a write: its origin and its token."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', c.get("/").text)
    return {"Origin": url, "X-CSRF-Token": found[1] if found else ""}


def _identities(review_db):
    out = []
    for config in review_db.configs:
        out += [config.hash, config.label, config.model]
    return out


def test_a_pair_is_blinded_until_the_session_ends_or_the_rater_asks(client, review_db):
    body = client.get("/api/next").json()
    pair = body["pair"]
    assert body["progress"] == {"rated": 0, "total": 4}
    assert pair["identities"] is None and pair["rating"] is None
    assert pair["references"] and pair["input"].startswith("What is the capital")
    # no latency while blinded: the slower output would name the bigger model
    assert {s: set(pair["outputs"][s]) for s in "AB"} == {s: {"text"} for s in "AB"}
    assert not any(name in client.get("/api/next").text for name in _identities(review_db))
    assert not any(name in client.get("/").text for name in _identities(review_db))
    pair_id = pair["pair_id"]
    assert client.post(f"/api/pairs/{pair_id}/reveal").status_code == 409  # not rated yet

    rated = client.post(f"/api/pairs/{pair_id}/rating", json=_body()).json()
    assert rated["stored"] == 7 and rated["superseded"] == 0  # 3 blind criteria x 2 + preference
    assert rated["progress"] == {"rated": 1, "total": 4}
    assert rated["pair"]["identities"] is None  # rated, but the session goes on
    assert rated["pair"]["rating"]["stars"]["A"] == dict.fromkeys(BLIND, 4)
    history = client.get("/api/history").json()
    assert history["blinded"] and {r["config"] for r in history["ratings"]} == {None}
    assert not any(name in client.get("/api/history").text for name in _identities(review_db))
    assert client.get("/api/reveal").status_code == 409

    asked = client.post(f"/api/pairs/{pair_id}/reveal").json()["pair"]["identities"]
    assert {asked["A"]["config"], asked["B"]["config"]} <= {c.hash for c in review_db.configs}
    # named as the leaderboard names them: what varies, not the whole label
    labels = set(distinguishing_labels([c.label for c in review_db.configs]).values())
    assert labels.isdisjoint(c.label for c in review_db.configs)
    assert {r["config"] for r in client.get("/api/history").json()["ratings"]} <= labels

    nxt = client.get("/api/next").json()["pair"]
    assert nxt["pair_id"] != pair_id and nxt["identities"] is None
    while nxt is not None:
        client.post(f"/api/pairs/{nxt['pair_id']}/rating", json=_body(preference="tie"))
        nxt = client.get("/api/next").json()["pair"]
    ended = client.get("/api/reveal").json()
    assert [p["position"] for p in ended["pairs"]] == [1, 2, 3, 4]
    first = next(p for p in ended["pairs"] if p["pair_id"] == pair_id)
    assert first["preference"] == "A" and first["preferred"] == first["A"]["label"]
    assert all(p["preferred"] is None for p in ended["pairs"] if p["pair_id"] != pair_id)
    last = ended["pairs"][-1]["pair_id"]
    assert client.get(f"/api/pairs/{last}").json()["pair"]["identities"] is not None
    history = client.get("/api/history").json()
    assert not history["blinded"]
    stars = [r for r in history["ratings"] if r["criterion"] != "preference"]
    assert {r["config"] for r in stars} <= labels
    ties = [r for r in history["ratings"] if r["preference"] == "tie"]
    assert ties and all(r["config"].startswith("tie: A ") and r["side"] is None for r in ties)


def test_the_history_names_the_config_the_rater_preferred(client, review_db):
    """A preference for B was shown with A's config (the rating row's own)."""
    pair_id = client.get("/api/next").json()["pair"]["pair_id"]
    client.post(f"/api/pairs/{pair_id}/rating", json=_body(preference="B"))
    who = client.post(f"/api/pairs/{pair_id}/reveal").json()["pair"]["identities"]
    assert who["A"]["label"] != who["B"]["label"]
    rows = client.get("/api/history").json()["ratings"]
    preference = next(r for r in rows if r["pair_id"] == pair_id and r["criterion"] == "preference")
    assert (preference["side"], preference["config"]) == ("B", who["B"]["label"])


def test_a_pair_shows_the_system_prompt_and_every_turn(client):
    pair = client.get("/api/next").json()["pair"]
    n = int(pair["case_id"].removeprefix("c"))
    assert pair["system"] == f"You are a geography tutor for case {n}."
    assert [t["role"] for t in pair["turns"]] == ["user", "assistant", "user"]
    assert pair["turns"][0]["content"] == f"I am studying country {n}."


def test_a_pair_shows_the_prompt_the_models_received_with_the_template(tmp_path):
    """Both configs applied the template "Answer in a few words.": the rater reads the
    prompt as the models did, not the case's raw input."""
    db = build_review_db(
        f"sqlite:///{tmp_path / 'r.db'}",
        template=PromptTemplate("concise", "Answer in a few words.\n\n{input}"),
    )
    app = create_app(db.engine, db.experiment, "tpl", per_pair=2, allowed_hosts=LOOPBACK_HOSTS)
    with serving(app) as url, httpx.Client(base_url=url) as c:
        c.get(f"/?key={app.state.key}")
        pair = c.get("/api/next").json()["pair"]
    n = int(pair["case_id"].removeprefix("c"))
    assert pair["turns"] == [
        {
            "role": "user",
            "content": f"Answer in a few words.\n\nWhat is the capital of country {n}?",
        }
    ]
    assert pair["input_note"] == ""


def test_a_pair_whose_configs_differ_in_template_shows_the_case_and_says_why(tmp_path):
    """Each side's prompt would tell the configs apart: the case's own input, noted."""
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}")
    with Session(db.engine) as session:
        for config in db.configs[1:]:
            row = session.get(ConfigRow, config.hash)
            row.template_name, row.template_text = "terse", "Be terse.\n\n{input}"
            session.add(row)
        session.commit()
    app = create_app(db.engine, db.experiment, "tpl", per_pair=2, allowed_hosts=LOOPBACK_HOSTS)
    with serving(app) as url, httpx.Client(base_url=url) as c:
        c.get(f"/?key={app.state.key}")
        pair = c.get("/api/next").json()["pair"]
    assert pair["turns"] == [{"role": "user", "content": pair["input"]}]
    assert "different prompt templates" in pair["input_note"]


def test_fast_mode_stores_the_preference_alone(client):
    pair_id = client.get("/api/next").json()["pair"]["pair_id"]
    saved = client.post(f"/api/pairs/{pair_id}/rating", json={"preference": "B"}).json()
    assert saved["stored"] == 1 and saved["pair"]["rating"]["preference"] == "B"
    assert saved["pair"]["rating"]["stars"] == {"A": {}, "B": {}}
    rows = client.get("/api/history").json()["ratings"]
    assert [r["criterion"] for r in rows] == ["preference"]


def test_a_pair_rated_in_fast_mode_takes_its_speed_alone_once_revealed(client):
    """A pair rated in fast mode (the preference alone) took speed stars only with every
    blind criterion's: 422 "missing stars for A.accuracy, ...". Speed alone is stored
    now; blind stars are still all or none."""
    pair_id = client.get("/api/next").json()["pair"]["pair_id"]
    client.post(f"/api/pairs/{pair_id}/rating", json={"preference": "B"})
    client.post(f"/api/pairs/{pair_id}/reveal")
    speed = {"stars": {"A": {"speed": 2}, "B": {"speed": 5}}, "preference": "B"}
    saved = client.post(f"/api/pairs/{pair_id}/rating", json=speed)
    assert saved.status_code == 200, saved.text
    assert saved.json()["stored"] == 2 and saved.json()["unchanged"] == 1
    assert saved.json()["pair"]["rating"]["stars"] == {"A": {"speed": 2}, "B": {"speed": 5}}
    some = {"stars": {"A": {"speed": 2, "accuracy": 4}, "B": {"speed": 5}}, "preference": "B"}
    refused = client.post(f"/api/pairs/{pair_id}/rating", json=some)
    assert refused.status_code == 422 and "missing stars for A.completeness" in refused.text


def test_speed_is_rated_only_once_the_pair_is_revealed(client):
    """Latency (what speed is judged on) is hidden until the reveal: asking for a speed
    rating before it asked the rater to guess, or to judge by the output's length."""
    pair_id = client.get("/api/next").json()["pair"]["pair_id"]
    early = client.post(f"/api/pairs/{pair_id}/rating", json=_body(criteria=CRITERIA))
    assert early.status_code == 422
    assert "speed is rated once the pair is revealed" in early.json()["detail"]
    assert client.get("/api/history").json()["ratings"] == []
    client.post(f"/api/pairs/{pair_id}/rating", json=_body())
    revealed = client.post(f"/api/pairs/{pair_id}/reveal").json()["pair"]
    assert all("latency_s" in revealed["outputs"][s] for s in "AB")
    later = client.post(f"/api/pairs/{pair_id}/rating", json=_body(criteria=CRITERIA)).json()
    assert later["stored"] == 2  # the speed of A and of B; the rest unchanged
    assert set(later["pair"]["rating"]["stars"]["B"]) == {*BLIND, *AFTER_REVEAL}
    page = client.get("/").text
    assert "data-after-reveal='[\"speed\"]'" in page


def test_changing_a_rating_is_reported_and_kept_in_the_history(client, review_db):
    pair_id = client.get("/api/next").json()["pair"]["pair_id"]
    client.post(f"/api/pairs/{pair_id}/rating", json=_body(notes="first"))
    client.post(f"/api/pairs/{pair_id}/reveal")  # speed is rated once revealed
    first = client.post(
        f"/api/pairs/{pair_id}/rating", json=_body(notes="first", criteria=CRITERIA)
    )
    assert first.json()["stored"] == 2  # the two speeds
    changed = client.post(
        f"/api/pairs/{pair_id}/rating", json=_body(b=5, preference="B", criteria=CRITERIA)
    )
    assert changed.json()["superseded"] == 5  # four stars of B and the preference
    history = client.get("/api/history").json()
    assert history["rater"] == "test_changing_a_rating_is_reported_and_kept_in_the_history"
    rows = history["ratings"]
    assert len(rows) == 9 + 5
    replaced = [r for r in rows if r["superseded_by"] is not None]
    assert len(replaced) == 5
    assert {r["criterion"] for r in replaced} == {*CRITERIA, "preference"}
    assert all(r["side"] == "B" for r in replaced if r["criterion"] != "preference")
    # the app keeps the human_* scores in step with the current ratings of every rater
    with Session(review_db.engine) as session:
        generation_b = session.get(ReviewPair, pair_id).generation_b
        ratings = ratings_frame(session, review_db.experiment_id)
        scores = scores_frame(session, review_db.experiment_id)
    stars = ratings[(ratings.generation_id == generation_b) & (ratings.criterion == "speed")]
    assert 5 in set(stars.stars)
    score = scores[(scores.generation_id == generation_b) & (scores.metric == "human_speed")]
    assert score.value.item() == pytest.approx((stars.stars.mean() - 1) / 4)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["stars"]["A"].update(accuracy=6),
        # J2: pydantic's lax mode took JSON true as 1 star and "4" as 4
        lambda b: b["stars"]["A"].update(accuracy=True),
        lambda b: b["stars"]["A"].update(completeness="4"),
        lambda b: b["stars"]["B"].update(relevance=2.5),
        lambda b: b["stars"]["B"].pop("accuracy"),
        lambda b: b.update(preference="C"),
        lambda b: b["stars"].pop("B"),
    ],
)
def test_invalid_ratings_are_refused_with_422(client, change):
    pair_id = client.get("/api/next").json()["pair"]["pair_id"]
    body = _body()
    change(body)
    assert client.post(f"/api/pairs/{pair_id}/rating", json=body).status_code == 422
    assert client.get("/api/history").json()["ratings"] == []


def test_pairs_outside_the_review_and_foreign_hosts_are_refused(client, review_db):
    assert client.get("/api/pairs/9999").status_code == 404
    assert client.post("/api/pairs/9999/rating", json=_body()).status_code == 404
    assert client.get("/api/next", headers={"host": "evil.example"}).status_code == 400


def test_a_write_from_another_page_or_without_the_token_is_refused(client, review_db):
    """S6: the reveal, a body-less POST (a "simple" request any web page open in the
    rater's browser may send), answered one from http://evil.example with the pair's
    identities; pair ids are sequential. Each write now comes from the page's origin
    with the token it was served with, as the monitor's writes do; else 403."""
    pair_id = client.get("/api/next").json()["pair"]["pair_id"]
    assert client.post(f"/api/pairs/{pair_id}/rating", json=_body()).status_code == 200
    token = client.headers["X-CSRF-Token"]
    reveal = f"/api/pairs/{pair_id}/reveal"
    for headers in (
        {"Origin": "http://evil.example"},  # another site, with the right token
        {"Origin": "null", "Referer": ""},
        {"X-CSRF-Token": "guessed"},  # the page's origin, a wrong token
        {"X-CSRF-Token": ""},
    ):
        refused = client.post(reveal, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["detail"].startswith("refused: ")
        assert (
            client.post(f"/api/pairs/{pair_id}/rating", json=_body(), headers=headers).status_code
            == 403
        )
    assert client.get(f"/api/pairs/{pair_id}").json()["pair"]["identities"] is None
    shown = client.post(reveal, headers={"X-CSRF-Token": token})  # the page's own
    assert shown.status_code == 200 and shown.json()["pair"]["identities"] is not None


def test_the_pages_are_templates_with_their_scripts_and_styles_served_alongside(client):
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="static/review.js"' in page.text and 'href="static/review.css"' in page.text
    assert "test_the_pages_are_templates" in page.text  # the rater's name
    for path in ("static/review.js", "static/review.css", "static/history.js"):
        assert client.get(f"/{path}").status_code == 200
    assert "test_the_pages_are_templates" in client.get("/history").text


def test_without_the_link_printed_nobody_reads_or_writes_the_session(review_db):
    """ncedge-E1: on a shared machine another local user GET the page, read its token
    from it and rated as the reviewer, and revealed pairs: the Origin, Host and token
    checks all pass for any local process. Now every page but the static files needs
    the session's key, a cookie set by the link `evalflow review` prints."""
    app = create_app(
        review_db.engine, review_db.experiment, "e1-rater", per_pair=2, allowed_hosts=LOOPBACK_HOSTS
    )
    with serving(app) as url, httpx.Client(base_url=url) as other:
        for path in ("/", "/history", "/api/next", "/api/history", "/api/reveal"):
            refused = other.get(path)
            assert refused.status_code == 403, path
            assert "open that link" in refused.text and "csrf" not in refused.text
        pair_id = app.state.queue.pair_ids[0]
        headers = {"Origin": url, "X-CSRF-Token": "read from a page it cannot read"}
        for write in ("rating", "reveal"):
            forged = other.post(f"/api/pairs/{pair_id}/{write}", json=_body(), headers=headers)
            assert forged.status_code == 403
        assert other.get("/?key=guessed").status_code == 403
        assert other.get("/static/review.js").status_code == 200
        # the link sets the cookie and leads to the page without the key in its address
        opened = other.get(f"/?key={app.state.key}")
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        assert "httponly" in opened.headers["set-cookie"].lower()
        assert "samesite=strict" in opened.headers["set-cookie"].lower()
        headers = _from_the_page(other, url)
        assert other.post(f"/api/pairs/{pair_id}/rating", json=_body(), headers=headers).json()[
            "stored"
        ] == 1 + 2 * len(BLIND)
    with Session(review_db.engine) as session:
        frame = ratings_frame(session, review_db.experiment_id, rater="e1-rater")
    assert len(frame) == 1 + 2 * len(BLIND)
