"""What a flow run says about itself in Prefect: tags added to the running flow run (read
back from the Prefect API), and its page printed where a server is set but not for the
temporary server a CLI run starts for itself. (The evaluate flow's own tags are checked
in tests/flows/test_evaluate.py.)"""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow, tags
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL

from tasks.adapters.embedded_api import EMBEDDED_API_ENV
from tasks.adapters.run_labels import flow_run_page, label_flow_run, run_tags

pytestmark = pytest.mark.usefixtures("prefect_harness")


@flow(name="labelled")
async def labelled() -> tuple[str, list[str]]:
    added = await label_flow_run(
        experiment="exp-1", series="qa-nightly", task_type="qa", simulated=True
    )
    return flow_run.get_id(), added


async def _stored_tags(flow_run_id: str) -> list[str]:
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).tags


def test_tags_are_added_to_the_flow_run_and_its_page_printed(capsys):
    with tags("evalflow"):  # as a deployment's runs carry it
        flow_run_id, added = asyncio.run(labelled())
    stored = asyncio.run(_stored_tags(flow_run_id))
    wanted = ["evalflow", "experiment:exp-1", "series:qa-nightly", "task:qa", "simulated"]
    assert sorted(stored) == sorted(added) == sorted(wanted)  # the run's own tag kept
    server = PREFECT_API_URL.value().removesuffix("/api")
    printed = f"Prefect flow run: {server}/runs/flow-run/{flow_run_id}\n"
    assert printed in capsys.readouterr().err


def test_no_page_for_the_temporary_server_of_a_cli_run(capsys, monkeypatch):
    monkeypatch.setenv(EMBEDDED_API_ENV, PREFECT_API_URL.value())
    asyncio.run(labelled())
    assert "Prefect flow run" not in capsys.readouterr().err


def test_outside_a_flow_run_nothing_is_tagged_or_printed():
    assert flow_run_page() is None
    assert run_tags(experiment="e", series="s", task_type="code") == [
        "experiment:e",
        "series:s",
        "task:code",
    ]
