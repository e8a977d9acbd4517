"""Generations cut by the context window are flagged from what the server reports
(issue 28.3, issue 27.3), against stand-in servers that cut as Ollama and llama.cpp do."""

from __future__ import annotations

import asyncio

from evaluation.backends import OllamaBackend
from evaluation.backends.openai_compat import OpenAICompatBackend
from evaluation.backends.retry import RetryPolicy
from evaluation.run._pipelines import CaseRoute, run_case
from evaluation.run._truncation import ServerCounts, context_cut
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case
from tests.evaluation.pipelines.test_runtime import SUITE
from tests.support.standin_ollama import StandInConfig, running_standin

MODEL = "llama3:latest"


def single(words: int, **params) -> WorkItem:
    config = Config(MODEL, GenerationParams(**params), PromptTemplate("default"))
    return WorkItem(config, Case("c", " ".join(["revenue"] * words), ("x",)), "s")


def run(backend, work: WorkItem):
    async def main():
        try:
            return await run_case(work, SUITE, CaseRoute(backend, RetryPolicy()))
        finally:
            await backend.aclose()

    return asyncio.run(main())


def test_ollama_cut_when_words_fit_and_tokens_do_not():
    """1,500 words fit num_ctx 2048; at two tokens a word they do not: Ollama evaluates
    2,048 tokens (its own sign) and the stage is flagged."""
    with running_standin(StandInConfig(models=(MODEL,), tokens_per_word=2.0)) as standin:
        backend = OllamaBackend(HostSpec("o", standin.url, 1))
        result, _, trace = run(backend, single(1500, num_ctx=2048, num_predict=8))
        assert result.prompt_eval_count == 2048
        assert trace.stages[0].context_truncated and trace.context_truncated_calls == 1
        fits = OllamaBackend(HostSpec("o", standin.url, 1))
        _, _, trace = run(fits, single(900, num_ctx=2048, num_predict=8))
        assert not trace.stages[0].context_truncated


def test_llama_cpp_trimming_max_tokens_is_a_context_cut_not_a_length_stop():
    """llama.cpp's server with a 2,048-token context: 2,030 prompt tokens and
    max_tokens 64 give 18 tokens, finish_reason "length"."""
    config = StandInConfig(models=(MODEL,), n_ctx=2048)
    with running_standin(config) as standin:
        backend = OpenAICompatBackend(HostSpec("l", standin.url, 1, kind="openai"))
        result, _, trace = run(backend, single(2030, num_predict=64))
        assert (result.done_reason, result.eval_count) == ("length", 18)
        assert trace.stages[0].context_truncated
        # an ordinary length stop (the output reached num_predict) is not a cut
        backend = OpenAICompatBackend(HostSpec("l", standin.url, 1, kind="openai"))
        result, _, trace = run(backend, single(100, num_predict=16))
        assert (result.done_reason, result.eval_count) == ("length", 16)
        assert not trace.stages[0].context_truncated


def test_prompt_and_output_reaching_the_servers_context_is_a_cut():
    counts = ServerCounts(
        prompt_tokens=4000, output_tokens=96, done_reason="length", num_predict=None
    )
    assert context_cut(counts, context=4096, words_estimate=3000)
    assert not context_cut(counts, context=8192, words_estimate=3000)
    assert not context_cut(counts, context=None, words_estimate=3000)


def test_an_unreported_prompt_count_is_unknown_not_an_empty_prompt():
    """llama-cpp-python streams no usage: the prompt's count is None. What else the
    server said still decides; nothing is concluded from a count it never gave."""
    unknown = ServerCounts(
        prompt_tokens=None, output_tokens=18, done_reason="length", num_predict=64
    )
    assert context_cut(unknown, context=2048, words_estimate=1500)  # trimmed max_tokens
    assert context_cut(unknown, context=2048, words_estimate=3000)  # surely longer than n_ctx
    full = ServerCounts(prompt_tokens=None, output_tokens=64, done_reason="length", num_predict=64)
    assert not context_cut(full, context=2048, words_estimate=1500)
