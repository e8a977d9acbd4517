"""Matching the models a sweep names against what a host has, before any generation."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from evaluation.backends.base import ModelInfo
from evaluation.errors import ModelNotFound
from evaluation.spec import HostSpec

_OLLAMA_DEFAULT_PREFIXES = ("registry.ollama.ai/", "library/")


def ollama_name_key(name: str) -> str:
    """Ollama's identity of a model name: case-insensitive, ``:latest`` when no tag,
    default registry and namespace dropped ("llama3" == "library/llama3:latest")."""
    key = name.strip().lower()
    for prefix in _OLLAMA_DEFAULT_PREFIXES:
        key = key.removeprefix(prefix)
    _, colon, tag = key.rpartition(":")
    if not colon or "/" in tag:
        key += ":latest"
    return key


def exact_name_key(name: str) -> str:
    return name


# How a missing model is fixed where it is one of the spec's models (a check that knows
# it is an embedding model a metric or the pipeline needs says how to fix that instead).
FIX_MODELS = "fix the spec's models"


def match_models(
    host: HostSpec,
    wanted: Iterable[str],
    have: list[ModelInfo],
    key: Callable[[str], str] = exact_name_key,
) -> dict[str, ModelInfo]:
    """Each wanted name → the host's ModelInfo; ModelNotFound lists what the host has."""
    by_key = {key(info.name): info for info in have}
    found: dict[str, ModelInfo] = {}
    missing: list[str] = []
    for name in wanted:
        info = by_key.get(key(name))
        if info is None:
            missing.append(name)
        else:
            found[name] = info
    if missing:
        available = sorted(info.name for info in have)
        names = ", ".join(f"'{m}'" for m in missing)
        listing = ", ".join(available) if available else "no models"
        fix = (
            f"; pull it (`ollama pull {missing[0]}`) or {FIX_MODELS}"
            if host.kind == "ollama"
            else f"; {FIX_MODELS}"
        )
        raise ModelNotFound(
            f"host '{host.name}' ({host.shown_url}) does not have {names}; it has: {listing}{fix}",
            available=available,
            detail=f"does not have {names}{fix}",
            host=host.name,
            model=missing[0],
        )
    return found
