"""Sampled configs a llama-cpp-python server repeats: temperature > 0 without a ``seed``.
Its server draws no fresh randomness for them (a fixed chain of seeds from each model
load), so a rerun can repeat their outputs exactly (docs/running-for-real.md, Seeds).
`doctor` and `run` warn in these words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from evaluation.backends.base import ModelInfo
from evaluation.spec import Config, HostSpec
from evaluation.wording import counted

#: What llama-cpp-python's server says owns every model it lists (its ``/v1/models``).
LLAMA_CPP_PYTHON_OWNER = "me"
LLAMA_CPP_PYTHON = "llama-cpp-python"


def is_llama_cpp_python(models: Iterable[ModelInfo]) -> bool:
    """The host's listed models all say llama-cpp-python's server lists them."""
    owners = [m.owned_by for m in models]
    return bool(owners) and all(owner == LLAMA_CPP_PYTHON_OWNER for owner in owners)


def seedless_warning(configs: Sequence[Config], host: HostSpec) -> str | None:
    """The warning for ``host`` (a llama-cpp-python server) about the configs it serves
    at temperature > 0 without a seed; None where there are none."""
    seedless = [
        c
        for c in configs
        if host.serves(c.model) and (c.params.temperature or 0) > 0 and c.params.seed is None
    ]
    if not seedless:
        return None
    return (
        f"{counted(len(seedless), 'config')} at temperature > 0 without `seed`: "
        "llama-cpp-python's server restarts one fixed chain of seeds at each "
        "model load, so a rerun can repeat their outputs exactly and trends and "
        "gate see no sampling noise (docs/running-for-real.md, Seeds)"
    )
