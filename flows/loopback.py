"""This machine's loopback is reached directly, never through a proxy from the
environment: Prefect's API on 127.0.0.1 (the embedded server, Prefect's temporary server
of `serve`, a `prefect server start` named by PREFECT_API_URL) and the processes the
command starts."""

from __future__ import annotations

import os

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def bypass_proxies_for_loopback() -> None:
    """Add 127.0.0.1, localhost and ::1 to NO_PROXY and no_proxy (keeping what the user
    set there) in this process's environment, which its children inherit.

    Prefect's client (httpx) and urllib send through HTTP_PROXY/HTTPS_PROXY/ALL_PROXY
    every request to a host that NO_PROXY does not name, loopback included: with a
    proxy for the web in the environment, and a dead one for certain, a run's every
    call to its embedded server on 127.0.0.1 failed, and the run gave up after a minute
    ("did not answer within 60 s"). Nothing on this machine's loopback is behind a proxy.
    """
    for name, other in (("no_proxy", "NO_PROXY"), ("NO_PROXY", "no_proxy")):
        value = os.environ.get(name, os.environ.get(other, ""))
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        missing = [host for host in LOOPBACK_HOSTS if host not in entries]
        if missing or name not in os.environ:
            os.environ[name] = ",".join([*entries, *missing])
