"""Telling Prefect that a run's process died: its flow run would say Running forever.

A run killed with ``kill -9`` (or by the OOM killer, a power cut) records nothing, and
Prefect's server has no way to notice a flow run's process is gone (no heartbeat for a
flow run started outside a worker). evalflow notices when the next run of the same
experiment takes over the dead run's claim (``claim_experiment`` returns it); that run
marks the old flow run Crashed here, so the UI says what ``evalflow experiments`` says.
"""

from __future__ import annotations

import logging
from uuid import UUID

from prefect.client.schemas.objects import StateType
from prefect.states import Crashed

from evaluation.storage.runs import DeadRun
from tasks.adapters.prefect_client import prefect_client

log = logging.getLogger(__name__)
#: How long marking a dead run waits out a busy Prefect API (best effort: the run goes on).
BUSY_BUDGET_S = 10.0
STILL_OPEN = (StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED, StateType.CANCELLING)


def mark_crashed(dead: DeadRun | None) -> bool:
    """Set the dead run's flow run Crashed, if it recorded one and it is still open
    (best effort: a flow run on another Prefect server, or one already ended, is left
    as it is). Returns whether it was marked."""
    if dead is None or dead.flow_run_id is None:
        return False
    try:
        flow_run_id = UUID(dead.flow_run_id)
        with prefect_client(sync=True, budget_s=BUSY_BUDGET_S) as client:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is None or flow_run.state.type not in STILL_OPEN:
                return False
            client.set_flow_run_state(
                flow_run_id, Crashed(message=f"evalflow: {dead.reason}"), force=True
            )
    except Exception as exc:
        log.warning("could not mark flow run %s crashed: %s", dead.flow_run_id, exc)
        return False
    log.info("flow run %s marked Crashed: %s", dead.flow_run_id, dead.reason)
    return True
