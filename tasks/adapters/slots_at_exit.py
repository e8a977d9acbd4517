"""The slots this process's runs hold, given back from an interrupt's thread just before
the process exits (``give_back_on_exit``: flows/run_control.py, on Ctrl-C or SIGTERM).
``HostSlots`` lists each run's holder file here while it is open."""

from __future__ import annotations

import contextlib

from tasks.adapters.slot_holders import HolderFile
from tasks.adapters.slot_leases import _give_back_call, _groups

# this process's runs' records, until closed: each with its registry's ``by_count``
_OPEN_RECORDS: dict[HolderFile, bool] = {}
#: How long a give-back at exit waits out a busy Prefect API (its caller bounds it too).
BUSY_BUDGET_S = 1.5  # flows/run_control.GIVE_BACK_S


def give_back_on_exit() -> int:
    """Give back every slot this process's runs still hold, from the thread of an
    interrupt (Ctrl-C, SIGTERM), just before the process exits without closing its
    ``HostSlots``: else the next run finds them held by a dead run. Blocking and best
    effort: a slot that cannot be given back stays listed for the next run, and the
    others are still tried (the caller bounds the time). Returns how many were given
    back. Where none holds a slot it makes no Prefect client: signalled before the
    command had pointed Prefect at its server (``use_api``), Prefect's client would start
    a temporary server of its own, which the exit then left running (an orphan uvicorn).
    """
    if not _OPEN_RECORDS:
        return 0
    from tasks.adapters.prefect_client import prefect_client

    freed = 0
    with prefect_client(sync=True, budget_s=BUSY_BUDGET_S) as client:
        for record, by_count in list(_OPEN_RECORDS.items()):
            try:
                listed = record.hand_over()  # the run's loop gives none of them back now
            except OSError:  # closed meanwhile: everything it listed was given back
                continue
            for key, group in _groups(listed, by_count=by_count).items():
                try:
                    _give_back_call(client, key, group, by_count=by_count)
                except Exception:
                    with contextlib.suppress(OSError):
                        record.took_all(group)  # still to give back
                    continue
                freed += len(group)
    return freed
