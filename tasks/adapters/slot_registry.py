"""Where the runs that share a Prefect server's limits record the slots they hold
(``Registry``: a folder of holder files, tasks/adapters/slot_holders.py), and how a dead
run's slots are given back there: per API URL under the evalflow home for a server, next
to its database for the embedded server."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.settings import evalflow_home
from tasks.adapters.embedded_api import is_embedded_api

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient


@dataclass(frozen=True)
class Registry:
    """Where the runs sharing this Prefect server record their slots (``folder``).

    ``by_count``: leases live in each process's own embedded API server, so a dead
    run's slots are given back by count, not by lease. ``zero_when_alone``: the
    counter lives in one SQLite file on this machine, so a run that finds no other
    live run there may zero it (slots a killed request took without recording them)."""

    folder: Path
    by_count: bool = False
    zero_when_alone: bool = False


def registry_for(client: PrefectClient) -> Registry:
    """The registry of the server ``client`` talks to: per API URL for a server, next
    to the database for the embedded server (its port changes with every process):
    Prefect's own ephemeral server, or the one `evalflow run` starts (flows/embedded_server)."""
    from prefect.client.base import ServerType

    return registry_at(str(client.api_url), ephemeral=client.server_type == ServerType.EPHEMERAL)


def registry_at(api_url: str, *, ephemeral: bool = False) -> Registry:
    """The registry of the server at ``api_url`` (``registry_for``), under this process's
    Prefect settings (the embedded server's database)."""
    from prefect.settings import get_current_settings
    from sqlalchemy.engine import make_url

    if not (ephemeral or is_embedded_api(api_url)):
        return Registry(_home_folder(api_url))
    secret = get_current_settings().server.database.connection_url
    url = make_url(secret.get_secret_value()) if secret is not None else None
    database = url.database if url is not None else None
    if url is None or not url.drivername.startswith("sqlite") or not database:
        return Registry(_home_folder(str(url)), by_count=True)
    if database.startswith("file:") or ":memory:" in database:
        return Registry(_home_folder(database), by_count=True)
    db = Path(database)
    return Registry(db.with_name(db.name + ".slot-holders"), by_count=True, zero_when_alone=True)


def _home_folder(key: str) -> Path:
    return evalflow_home() / "slot-holders" / hashlib.sha256(key.encode()).hexdigest()[:16]
