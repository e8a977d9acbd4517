"""Sections run, are assembled and hash in the order written (issue 28.2); configs
stored before the order was kept keep their hash."""

from __future__ import annotations

import asyncio
import hashlib
import json

from evaluation.backends.retry import RetryPolicy
from evaluation.pipelines import PipelineSetting
from evaluation.run._pipelines import CaseRoute, run_case
from evaluation.run._work import WorkItem
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.suites import Case
from tests.evaluation.pipelines.test_runtime import SUITE, FakeBackend

WRITTEN = {"summary": "S {document} {previous}", "findings": "F {previous}", "actions": "A"}


def sections_config(sections: dict[str, str], parallel: bool = False) -> Config:
    setting = PipelineSetting.of("sections", {"sections": sections, "parallel": parallel})
    return Config("m", GenerationParams(parallel=parallel), PromptTemplate("default"), setting)


def test_sequential_sections_run_and_assemble_in_the_order_written():
    config = sections_config(WRITTEN)
    assert list(config.pipeline.params["sections"]) == ["summary", "findings", "actions"]
    work = WorkItem(config, Case("c", "Report.", ("x",), metadata={"document": "d"}), "s")
    backend = FakeBackend()
    result, _, trace = asyncio.run(run_case(work, SUITE, CaseRoute(backend, RetryPolicy())))
    assert [s.stage for s in trace.stages] == [
        "section:summary",
        "section:findings",
        "section:actions",
    ]
    # "findings" saw "summary" before it, and the report keeps the written order
    assert "## summary" in backend.requests[1].messages[-1].content
    assert result.text.index("## summary") < result.text.index("## findings")
    assert result.text.index("## findings") < result.text.index("## actions")


def test_section_order_is_part_of_the_hash():
    reordered = dict(reversed(list(WRITTEN.items())))
    assert sections_config(WRITTEN).hash != sections_config(reordered).hash


def test_configs_stored_before_the_fix_keep_their_hash():
    """Before, the setting's parameters were stored with every key sorted and the hash
    was taken over them: an alphabetical order hashes as it did."""
    alphabetical = dict(sorted(WRITTEN.items()))
    config = sections_config(alphabetical)
    old_params = json.loads(json.dumps(config.pipeline.params, sort_keys=True))
    old_payload = {
        "model": "m",
        "params": config.params.hash_payload(),
        "template": {"name": "default", "text": "{input}"},
        "pipeline": {"name": "sections", "params": old_params},
    }
    old = json.dumps(old_payload, sort_keys=True, separators=(",", ":"))
    assert config.hash == hashlib.sha256(old.encode()).hexdigest()[:16]
    # read back from a row stored then (params sorted), the config hashes the same
    stored = PipelineSetting.of("sections", old_params)
    assert stored == config.pipeline
