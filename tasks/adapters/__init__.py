"""Adapters to Prefect's own API that are not tasks, one concept a module.

Every Prefect client evalflow makes comes from ``prefect_client`` (a busy server's
answers sent again within a tenth of a second, not Prefect's 2 s then 4 s).

Per-host request slots, as Prefect global concurrency limits through the lease
endpoints: ``host_slots`` (``HostSlots``: taking, handing over and giving back slots),
``lane_slot`` (one lane's hold on a slot for a chunk), ``spare_slots`` (slots for a
pipeline's parallel calls), ``host_limits`` (each host's limit: its name, its size),
``slot_api`` (the slot calls without Prefect's client, for lane workers, which import
no Prefect), ``slot_writes`` (a run's slot writes, one at a time), ``slot_errors``,
``slot_leases`` (the slots a run holds and the writes that took them),
``slot_registry`` (where the runs sharing a server record their slots), ``slot_holders``
(the locked files that name the slots a run holds), ``dead_run_slots`` (a dead run's
slots given back), ``slots_at_exit`` (given back from an interrupt's thread) and
``slot_readings`` (the limits read for the metrics endpoint). Besides: ``cancellation``
(a flow run cancelled from the UI, watched by the run itself), ``crashed_runs``,
``deployment_runs``, ``run_labels`` and ``embedded_api`` (which API URL is the embedded
server)."""
