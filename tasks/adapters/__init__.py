"""Adapters to Prefect's own API that are not tasks: ``prefect_concurrency`` (per-host
request slots as Prefect global concurrency limits, through the lease endpoints),
``slot_holders`` (the locked files that name the slots a run holds, so a dead run's
slots are given back), ``cancellation`` (a flow run cancelled from the UI, watched by
the run itself) and ``embedded_api`` (which API URL is the embedded server)."""
