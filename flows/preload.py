"""Modules a flow needs only after its generations, loaded while the hosts generate.

Importing the comparison and report stages (scipy.stats, statsmodels: ~1 s of CPU)
when `evalflow run` starts put them on the critical path beside Prefect's server
start-up; during generation the process mostly waits on the hosts. A module still
loading when the flow reaches it is simply waited for (Python's import lock).
matplotlib is not among them: it loads when the report draws its figures
(``evaluation/report/html.py``), so a run does not hold its ~27 MiB through the
comparison stage, a run's highest point of memory (issue 46).
"""

from __future__ import annotations

import contextlib
import importlib
import threading


def preload(*modules: str) -> threading.Thread:
    """Import ``modules`` in a daemon thread; an import error surfaces later, where the
    flow imports the module itself."""

    def load() -> None:
        for name in modules:
            with contextlib.suppress(Exception):  # raised again where the flow imports it
                importlib.import_module(name)

    thread = threading.Thread(target=load, name="evalflow-preload", daemon=True)
    thread.start()
    return thread
