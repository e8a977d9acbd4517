"""The slots of runs that died given back (``give_back_dead``): what their holder files
(``slot_holders``) still list, written back to the server as those runs would have."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx

from evaluation.wording import counted
from tasks.adapters.slot_errors import SlotUnavailable
from tasks.adapters.slot_holders import HolderFile
from tasks.adapters.slot_leases import _give_back_call, _groups

logger = logging.getLogger("prefect.evalflow.host_slots")  # Prefect's get_logger's name


async def give_back_dead(
    client,
    write: Callable[[Callable[[], Awaitable[httpx.Response]]], Awaitable[httpx.Response]],
    dead: list[HolderFile],
    *,
    by_count: bool,
) -> int:
    """Give back what dead runs' files still list, one write per limit (by count)
    or per lease; a file is removed once empty. Each slot is marked given back
    before the call, as its run would have done. Returns how many slots it gave back."""
    freed = 0
    for record in dead:
        try:
            for key, group in _groups(record.held(), by_count=by_count).items():
                record.giving_back(*(held.lease_id for held in group))
                try:
                    await write(
                        lambda key=key, group=group: _give_back_call(
                            client, key, group, by_count=by_count
                        )
                    )
                except BaseException:
                    record.took_all(group)  # still to give back
                    raise
                freed += len(group)
        except (httpx.HTTPError, SlotUnavailable) as exc:
            logger.warning("could not give back a dead run's slots: %s", exc)
            record.leave()
            continue
        record.close()
    if freed:
        logger.info(
            "gave back %s held by %s",
            counted(freed, "host slot"),
            counted(len(dead), "dead run"),
        )
    return freed
