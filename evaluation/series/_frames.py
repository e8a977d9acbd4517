"""Each night's per-case values of every stream of a series (``_Frames``), read from
the stored scores and generations once per night."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlmodel import Session

from evaluation.storage.repository import generations_frame, scores_frame

TOKENS_SPREAD = 4.0
"""A case's tokens/s counts at most this factor from its config's median case that night
(in log units, ± log 4): one model's decode speed on one host differs by case far less
(a newcomer's llama.cpp nights: 0.5-2.5 times the median), so a case beyond it is an
outlier of the server's timing, not the night's speed, and moves the night's geometric
mean by at most log(4) / cases. A slowdown of the whole host moves the median with it."""


class _Frames:
    """Each experiment's scores and generations, read once, and its per-case values of
    every stream grouped once (filtering the whole frame per config and metric was most
    of the watch's time: 480 filters on 30 nights of 4 configs)."""

    def __init__(self, session: Session, experiments: Sequence) -> None:
        self._session = session
        self._ids = {e.name: e.id for e in experiments}
        self._scores: dict[str, pd.DataFrame] = {}
        self._generations: dict[str, pd.DataFrame] = {}
        self._streams: dict[str, dict[tuple[str, str], pd.Series]] = {}

    def scores(self, name: str) -> pd.DataFrame:
        if name not in self._scores:
            self._scores[name] = scores_frame(self._session, self._ids[name])
        return self._scores[name]

    def generations(self, name: str) -> pd.DataFrame:
        if name not in self._generations:
            self._generations[name] = generations_frame(self._session, self._ids[name])
        return self._generations[name]

    def per_case(self, name: str, config: str, metric: str) -> pd.Series:
        """Per case id: the night's value of ``metric`` for ``config`` (samples averaged;
        empty where it has none)."""
        if name not in self._streams:
            self._streams[name] = self._grouped(name)
        found = self._streams[name].get((config, metric))
        return found if found is not None else pd.Series(dtype=float)

    def _grouped(self, name: str) -> dict[tuple[str, str], pd.Series]:
        """Every (config, metric) of the night: its per-case means, the quality metrics
        from the scores, ``OPERATIONAL`` from the generations (failure: the share not
        ok; latency, log tokens/s: of those ok)."""
        s, g = self.scores(name), self.generations(name)
        ok = g[g["status"] == "ok"]
        tokens = pd.to_numeric(ok["tokens_per_s"], errors="coerce")
        means = {
            metric: values.groupby([frame[config], frame["case_id"]]).mean()
            for metric, values, frame, config in (
                ("failure_rate", (g["status"] != "ok").astype(float), g, "config_hash"),
                ("latency_p95", pd.to_numeric(ok["latency_s"], errors="coerce"), ok, "config_hash"),
                ("tokens_per_s", np.log(tokens.where(tokens > 0)), ok, "config_hash"),
            )
        }
        out = {
            (config, metric): part.droplevel(0)
            for metric, grouped in means.items()
            for config, part in grouped.groupby(level=0)
        }
        spread = np.log(TOKENS_SPREAD)
        for key, part in out.items():
            if key[1] == "tokens_per_s" and part.notna().any():
                middle = part.median()
                out[key] = part.clip(middle - spread, middle + spread)
        quality = pd.to_numeric(s["value"], errors="coerce")
        grouped = quality.groupby([s["config"], s["metric"], s["case_id"]]).mean()
        for (config, metric), part in grouped.groupby(level=[0, 1]):
            out[(config, metric)] = part.droplevel([0, 1])
        return out
