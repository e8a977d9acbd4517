"""A host's key: its spec names the environment variable that holds it (``api_key_env``,
as promptfoo's ``apiKeyEnvar`` and litellm's ``os.environ/NAME``), and the key is read
from the environment when the host's backend is built and sent as ``Authorization:
Bearer`` to that host only. The key itself is in no spec, HostSpec, stored row, log or
message: what is said and stored is the variable's name (``$VLLM_KEY``). It is read
here, where a host asks for it, because lane worker processes and Prefect's flow
runs build their backends themselves from the spec (they inherit the environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from evaluation.errors import SpecError
from evaluation.spec import HostSpec, SweepSpec


def api_key(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The key in ``variable`` (surrounding whitespace dropped: a key pasted with its
    newline), None when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(variable, "").strip()
    return value or None


def unset(variable: str) -> str:
    """Why a named variable gives no key, in words."""
    return f"environment variable {variable} is not set (or is empty)"


def auth_headers(host: HostSpec) -> dict[str, str]:
    """The headers that carry ``host``'s key (none without ``api_key_env``); SpecError
    naming the variable when it is unset."""
    if host.api_key_env is None:
        return {}
    key = api_key(host.api_key_env)
    if key is None:
        raise SpecError(f"host '{host.name}': {unset(host.api_key_env)}", field="api_key_env")
    return {"Authorization": f"Bearer {key}"}


def credentials_sent(host: HostSpec) -> str:
    """What a refusal (401/403) says was sent: ``the key from $VLLM_KEY``, ``the user
    and password of its url``, or "" (nothing)."""
    if host.api_key_env is not None:
        return f"the key from ${host.api_key_env}"
    parts = urlsplit(host.url)
    return "the user and password of its url" if parts.username or parts.password else ""


def check_api_keys(spec: SweepSpec, environ: Mapping[str, str] | None = None) -> None:
    """Refuse, before any host is asked, a spec whose host names a variable that holds
    no key: SpecError at that host's ``api_key_env`` (file, line, field)."""
    from evaluation.spec._fields import FieldReader  # the spec file, read only to refuse

    for i, host in enumerate(spec.hosts):
        if host.api_key_env is not None and api_key(host.api_key_env, environ) is None:
            reader = FieldReader(str(spec.path) if spec.path is not None else None)
            raise reader.error(f"hosts[{i}].api_key_env", unset(host.api_key_env))
