"""Each host's Prefect global concurrency limit: its name (the host's address, not its
spec name), created or resized to the host's slots, and a warning when a running run
gives the same host name to another server."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from evaluation.backends import host_limit_name as limit_name_of_url
from evaluation.spec import HostSpec

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

logger = logging.getLogger("prefect.evalflow.host_slots")  # Prefect's get_logger's name


def host_limit_name(host: HostSpec) -> str:
    """The global concurrency limit that caps requests in flight to ``host``
    (``evaluation.backends.host_limit_name``: its address, not its spec name)."""
    return limit_name_of_url(host.url)


async def size_limits(client: PrefectClient, hosts: tuple[HostSpec, ...]) -> dict[str, str]:
    """Create or resize each host's limit to its slots."""
    names = {}
    for host in hosts:
        name = host_limit_name(host)
        await _upsert_limit(client, name, host.slots)
        names[host.name] = name
    return names


async def _upsert_limit(client: PrefectClient, name: str, slots: int) -> None:
    """Prefect's upsert reads then creates: two runs starting together can both try to
    create the limit. The loser finds it existing on its second try and resizes it."""
    from prefect.exceptions import ObjectAlreadyExists

    try:
        await client.upsert_global_concurrency_limit_by_name(name, slots)
    except ObjectAlreadyExists:
        await client.upsert_global_concurrency_limit_by_name(name, slots)


def _warn_of_namesakes(mine: Mapping[str, str], others: list[dict[str, str]]) -> None:
    """One line for each host name that a running run gives to another server: the two
    are separate hosts, each with its own slots (``host_limit_name``), whatever their
    names; said because a name that means two servers misleads whoever reads a log."""
    for name, limit in mine.items():
        elsewhere = sorted({o[name] for o in others if o.get(name, limit) != limit})
        if elsewhere:
            logger.warning(
                "host %r here (limit %s) is another server than the %r of a running run "
                "(limit %s): each has its own slots; give them different names",
                name,
                limit,
                name,
                ", ".join(elsewhere),
            )
