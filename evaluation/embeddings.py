"""Embeddings for scoring: vectors from a named embedding model on the sweep's hosts,
each (model, text) asked for once per ``Embedder`` (one per scoring run), so a suite's
references are embedded once however many configs are scored against them.

Scoring is synchronous and may run inside a flow's event loop, so ``vectors`` does its
HTTP work on a private event loop in a worker thread, with backends it opens and closes
there. Texts go in batches of ``batch_size``, as many batches at once as the host has
slots, each retried as a generation is (``embed_with_retries``). The first host that
serves the model answers; a host that stays unreachable hands over to the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from evaluation.backends import RetryPolicy, embed_with_retries, make_backend
from evaluation.errors import BackendError, BackendUnavailable
from evaluation.spec import HostSpec, Limits

DEFAULT_BATCH_SIZE = 64


class Embedder:
    """``Embedder(hosts, limits)``: ``vectors(model, texts)`` gives unit-length rows
    (a zero vector stays zero), fetched once per (model, text)."""

    def __init__(
        self,
        hosts: Sequence[HostSpec],
        limits: Limits | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.hosts = tuple(hosts)
        self.limits = limits or Limits()
        self.batch_size = batch_size
        self.requests = 0  # embedding calls made (batches, retries not counted)
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self._simulated: dict[str, bool] = {}

    def vectors(self, model: str, texts: Sequence[str]) -> np.ndarray:
        """One unit row per text, in order; BackendError when no host could embed."""
        missing = list(dict.fromkeys(t for t in texts if (model, t) not in self._cache))
        if missing:
            with ThreadPoolExecutor(1, thread_name_prefix="embed") as pool:
                fetched = pool.submit(asyncio.run, self._fetch(model, missing)).result()
            for text, vector in zip(missing, fetched, strict=True):
                self._cache[(model, text)] = _unit(vector)
        if not texts:
            return np.zeros((0, 0))
        return np.stack([self._cache[(model, text)] for text in texts])

    def simulated(self, model: str) -> bool:
        """Whether ``model``'s vectors came from a simulated host (SIMULATED)."""
        return self._simulated.get(model, False)

    async def _fetch(self, model: str, texts: list[str]) -> list[list[float]]:
        serving = [h for h in self.hosts if h.serves(model)]
        if not serving:
            names = ", ".join(h.name for h in self.hosts) or "none"
            raise BackendUnavailable(
                f"no host serves embedding model '{model}' (hosts: {names}); add it to a "
                "host's models, or leave that host's models out",
                model=model,
            )
        for host in serving[:-1]:
            try:
                return await self._fetch_from(host, model, texts)
            except BackendError as exc:
                if not exc.retryable:
                    raise
        return await self._fetch_from(serving[-1], model, texts)

    async def _fetch_from(self, host: HostSpec, model: str, texts: list[str]) -> list[list[float]]:
        backend = make_backend(host, self.limits)
        policy = RetryPolicy(max_attempts=self.limits.max_attempts)
        slots = asyncio.Semaphore(max(1, host.slots))

        async def batch(part: list[str]) -> list[list[float]]:
            self.requests += 1
            vectors, _ = await embed_with_retries(
                backend, model, part, policy=policy, slot=lambda: slots
            )
            return vectors

        size = self.batch_size
        try:
            parts = await asyncio.gather(
                *(batch(texts[i : i + size]) for i in range(0, len(texts), size))
            )
        finally:
            await backend.aclose()
        self._simulated[model] = host.kind == "simulated"
        return [vector for part in parts for vector in part]


def _unit(vector: Sequence[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def stored_hosts(summary: Mapping[str, Any]) -> tuple[HostSpec, ...]:
    """The hosts of an experiment's stored spec summary (``Experiment.spec``), so that
    ``rescore`` embeds where the run did."""
    hosts = []
    for raw in summary.get("hosts") or ():
        models = raw.get("models")
        hosts.append(
            HostSpec(
                name=raw["name"],
                url=raw["url"],
                slots=int(raw.get("slots", 1)),
                kind=raw.get("kind", "ollama"),
                models=tuple(models) if models is not None else None,
                api_key_env=raw.get("api_key_env"),  # the variable's name: rescore sends the key
            )
        )
    return tuple(hosts)
