"""What a llama-cpp-python server (``python -m llama_cpp.server``) does that a spec can
mistake, told by its ``/v1/models``; `doctor` and `run` warn in these words:

- sampled configs it repeats: temperature > 0 without a ``seed``. It draws no fresh
  randomness for them (a fixed chain of seeds from each model load), so a rerun can
  repeat their outputs exactly (docs/running-for-real.md, Seeds);
- ``slots`` above 1: it answers one request at a time, so the others wait in its queue
  and their stored latencies are the wait (docs/running-for-real.md, Inference engines)."""

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


def one_at_a_time_warning(host: HostSpec, earlier: int | None = None) -> str | None:
    """The warning for ``host`` (a llama-cpp-python server) given more than one slot,
    with the fewer slots its ``earlier`` runs had where known (`doctor`: one line, where
    it gave two); None at ``slots: 1``. Newcomers' nctput-2: at ``slots: 4`` a stored
    latency of 24-84 s for 6-32 tokens was its queue, time-to-first-token within 3 s of it."""
    if host.slots <= 1:
        return None
    then = "" if earlier is None else f" (its earlier runs had {earlier})"
    return (
        f"slots: {host.slots}{then}, but llama-cpp-python's server answers one request at a "
        "time: the others wait in its queue, and every stored latency (which the selector "
        "learns from) counts that wait; give it slots: 1 (docs/running-for-real.md, "
        "Inference engines)"
    )
