"""What a flow run says about itself in Prefect: tags a Prefect user filters by (the
experiment, its series, its task type, ``simulated``), and the run's page in the UI,
printed where a Prefect server is set (not the temporary one a CLI run starts, whose
pages are gone when the command ends)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL
from prefect.utilities.urls import url_for

from tasks.adapters.embedded_api import is_embedded_api
from tasks.adapters.prefect_client import prefect_client


def run_tags(
    *, experiment: str, series: str, task_type: str | None = None, simulated: bool = False
) -> list[str]:
    """``experiment:NAME``, ``series:NAME``, ``task:TYPE`` and ``simulated`` (where it is)."""
    tags = [f"experiment:{experiment}", f"series:{series}"]
    if task_type:
        tags.append(f"task:{task_type}")
    return [*tags, "simulated"] if simulated else tags


async def tag_flow_run(tags: Iterable[str]) -> list[str]:
    """Add ``tags`` to the flow run this code runs in (its own tags are kept); returns
    the run's tags now. Outside a flow run: nothing, and an empty list."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return []
    run = context.flow_run
    merged = sorted({*run.tags, *tags})
    if merged != sorted(run.tags):
        async with prefect_client() as client:
            await client.update_flow_run(run.id, tags=merged)
        run.tags = merged
    return merged


def flow_run_page() -> str | None:
    """The current flow run's page in the Prefect UI, where a server is set (else None)."""
    api = PREFECT_API_URL.value()
    context = FlowRunContext.get()
    if not api or is_embedded_api(api) or context is None or context.flow_run is None:
        return None
    return url_for(context.flow_run)  # the address Prefect's own "View at" line gives


def print_flow_run_page() -> None:
    """Print the page of the current flow run to the terminal, where there is one."""
    if url := flow_run_page():
        print(f"Prefect flow run: {url}", file=sys.stderr, flush=True)


async def label_flow_run(
    *,
    experiment: str,
    series: str,
    task_type: str | None = None,
    simulated: bool = False,
    extra: Iterable[str] = (),
) -> list[str]:
    """Tag the current flow run (``run_tags`` and ``extra``) and print its page."""
    tags = await tag_flow_run(
        [
            *run_tags(
                experiment=experiment, series=series, task_type=task_type, simulated=simulated
            ),
            *extra,
        ]
    )
    print_flow_run_page()
    return tags
