"""A request that times out on a host that answered this run a moment ago: the host is
slow (llama-cpp-python finishes the request given up on before it answers anything else,
its model list too), not down. The item fails as a timeout, under the host's name, and
the chunk goes on; a host that has not answered lately is still found down, and so is
one silent since another host serving its model answered."""

from __future__ import annotations

import asyncio

from evaluation.backends import OllamaBackend
from evaluation.backends.retry import RetryPolicy
from evaluation.observability._collector import reason_class
from evaluation.run import _generate
from evaluation.run._dispatch import dispatch
from evaluation.run._generate import ChunkOutcome, run_chunk
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import load_suite
from tests.conftest import REPO
from tests.support.standin_ollama import StandInConfig, running_standin

SUITE = load_suite(REPO / "benchmarks/suites/qa-short.jsonl")
MODEL = "llama3.2:3b"
TIMEOUT_S = 0.5  # a held request never answers: the timeout fires whatever the load


def work(n: int) -> list[WorkItem]:
    config = Config(MODEL, GenerationParams(num_predict=8), PromptTemplate("default"))
    return [WorkItem(config, case, SUITE.name) for case in SUITE.cases[:n]]


async def discard(records) -> None:
    return None


def chunks_on_a_hanging_host(
    answered_first: bool, seconds_later: float = 0.0, other_answered: bool = False
):
    """On a stand-in host: first (if ``answered_first``) one item answered, then (if
    ``other_answered``) one on another host of the run serving its model, then, seen
    ``seconds_later`` by the run's clock, two items the first of which hangs past its
    timeout, with the host's model list (busy with the request given up on, as a
    one-request-at-a-time server is). Returns the two chunks' outcomes."""

    _generate._answered_at.clear()  # no answer of an earlier test's host on this port

    async def scenario():
        with running_standin(StandInConfig(models=(MODEL,))) as server:
            backend, other = (
                OllamaBackend(
                    server.host(name, slots=1),
                    timeout_s=TIMEOUT_S,
                    first_request_timeout_s=TIMEOUT_S,
                )
                for name in ("slow", "other")
            )
            hosts = [backend.host, other.host]
            policy = RetryPolicy(max_attempts=1)
            items = work(3)
            try:
                first = None
                if answered_first:
                    first = await run_chunk(
                        backend, items[:1], suite=SUITE, policy=policy, sink=discard
                    )
                if other_answered:
                    await run_chunk(other, items[:1], suite=SUITE, policy=policy, sink=discard)
                now = _generate.clock()
                _generate.clock = lambda: now + seconds_later
                server.set_fault("hang", times=1, model=MODEL)
                server.hang_listings(1)
                rest = await run_chunk(
                    backend, items[1:], suite=SUITE, policy=policy, sink=discard, others=hosts
                )
            finally:
                _generate.clock = _generate.time.monotonic
                await backend.aclose()
                await other.aclose()
            return first, rest

    return asyncio.run(scenario())


def test_a_host_that_has_not_answered_this_run_is_checked_and_found_down():
    _, outcome = chunks_on_a_hanging_host(answered_first=False)
    assert outcome.host_down and len(outcome.unfinished) == 2
    # it took the request and never answered: not "unreachable"
    assert outcome.host_down_reason == "slow not answering: no answer within 0.5 s"


def test_after_an_answer_a_timeout_is_a_timed_out_item_under_the_hosts_name():
    # A newcomer's llama-cpp (answering in more than the spec's 1 s) was called down:
    # "every host serving X is down (llama-cpp unreachable: ReadTimeout ...)", and its
    # failures labelled host="unknown", reason="other" in Prometheus.
    answered, rest = chunks_on_a_hanging_host(answered_first=True)
    assert [r.ok for r in answered.records] == [True]
    assert not rest.host_down and not rest.unfinished
    timed_out, then = rest.records
    assert then.ok  # the chunk went on
    assert then.answered_at is not None and timed_out.answered_at is None  # the ETA's
    assert timed_out.host == "slow"
    assert timed_out.error.startswith(
        "BackendTimeout: slow (model 'llama3.2:3b'): no answer within "
    )
    assert "no answer within 0.5 s" in timed_out.error
    assert reason_class(timed_out.error) == "BackendTimeout"


def test_a_host_whose_last_answer_is_old_is_still_found_down():
    _, rest = chunks_on_a_hanging_host(True, seconds_later=_generate.ANSWERED_RECENTLY_S + 1)
    assert rest.host_down and len(rest.unfinished) == 2
    assert rest.host_down_reason.startswith("slow not answering: no answer within ")


def test_a_host_silent_since_another_serving_its_model_answered_is_checked_and_found_down():
    # A newcomer's host stopped (SIGSTOP) beside a healthy one: it had answered a moment
    # before, so each of its 8 lanes failed its generation on its own and sent the next
    # (16 failed in two rounds, a rerun needed) while the healthy host served the rest.
    _, rest = chunks_on_a_hanging_host(answered_first=True, other_answered=True)
    assert rest.host_down and len(rest.unfinished) == 2 and not rest.records
    assert rest.host_down_reason == "slow not answering: no answer within 0.5 s"
    assert [a.outcome for a in rest.earlier[rest.unfinished[0].key]] == ["timeout"]


def test_items_left_by_a_down_host_are_labelled_with_it():
    async def down(host, chunk):
        return ChunkOutcome(unfinished=list(chunk), host_down_reason="a not answering: x")

    report = asyncio.run(dispatch(work(2), [HostSpec("a", "http://a")], down, chunk_size=2))
    assert [(u.host, u.reason) for u in report.unservable] == [
        ("a", f"every host serving {MODEL!r} is down (a not answering: x)")
    ] * 2
