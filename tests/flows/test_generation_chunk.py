"""A chunk that fails otherwise than by a generation (a write, no slot in time) is tried
once more, without what the first attempt stored; a second failure is the run's."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

import tasks.generation as generation
from evaluation.run._generate import ChunkOutcome
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, HostSpec, PromptTemplate
from evaluation.suites import Case

HOST = HostSpec("a", "http://a", slots=1)
ITEMS = [
    WorkItem(
        Config("m", GenerationParams(), PromptTemplate("default")), Case(f"c{i}", "q", ("a",)), "s"
    )
    for i in range(4)
]


def _patched(monkeypatch, failures: int) -> list[list[WorkItem]]:
    calls: list[list[WorkItem]] = []

    async def attempt(host, items, context, watch=None):
        calls.append(list(items))
        if len(calls) <= failures:
            raise RuntimeError("database is locked")
        return ChunkOutcome()

    monkeypatch.setattr(generation, "_generate", attempt)
    stored = {ITEMS[0].key, ITEMS[1].key}
    monkeypatch.setattr(generation, "_stored_keys", lambda engine, experiment: stored)
    monkeypatch.setattr(generation, "get_run_logger", lambda: logging.getLogger("test"))
    return calls


def test_a_failed_chunk_is_tried_once_more_without_what_it_stored(monkeypatch):
    calls = _patched(monkeypatch, failures=1)
    context = SimpleNamespace(engine=None, experiment_id=1)
    asyncio.run(generation.generate_chunk(HOST, ITEMS, context))
    assert [len(c) for c in calls] == [4, 2]
    assert calls[1] == ITEMS[2:]


def test_a_chunk_failing_twice_fails(monkeypatch):
    _patched(monkeypatch, failures=2)
    context = SimpleNamespace(engine=None, experiment_id=1)
    with pytest.raises(RuntimeError, match="database is locked"):
        asyncio.run(generation.generate_chunk(HOST, ITEMS, context))
