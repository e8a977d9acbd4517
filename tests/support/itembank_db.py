"""A results database for item bank tests: a toy suite of ``n_cases`` run in full by
``n_configs`` configs of one family (0/1 scores from a one-factor probit world, as the
simulated backend draws them), and an experiment ``sub`` whose configs ran a few cases."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from evaluation.storage.db import make_engine, session_scope
from tests.support.results_db import MISSING, add_experiment, make_config, make_suite


def world(n_configs: int, n_cases: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """0/1 scores (configs × cases) and each config's true quality."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n_cases)
    quality = rng.uniform(0.3, 0.9, n_configs)
    latent = np.sqrt(0.5) * z + np.sqrt(0.5) * rng.standard_normal((n_configs, n_cases))
    return (latent < norm.ppf(quality)[:, None]).astype(float), quality


def build(
    url: str,
    *,
    n_configs: int = 10,
    n_cases: int = 60,
    sub_models: Sequence[str] = ("m99:1b",),
    sub_cases: Sequence[int] = tuple(range(0, 60, 6)),
    family: str = "m",
) -> np.ndarray:
    """The database at ``url``; returns every config's scores (the bank's configs, named
    ``<family><j>:1b``, then ``sub``'s, whose full row is the truth its estimate is held
    against)."""
    y, _ = world(n_configs + len(sub_models), n_cases)
    suite = make_suite(n_cases)
    engine = make_engine(url)
    with session_scope(engine) as session:
        full = {
            make_config(f"{family}{j}:1b"): {"exact_match": list(y[j])} for j in range(n_configs)
        }
        add_experiment(session, "history", suite, full)
        keep = set(sub_cases)
        sub = {
            make_config(model): {
                "exact_match": [
                    y[n_configs + k, i] if i in keep else MISSING for i in range(n_cases)
                ]
            }
            for k, model in enumerate(sub_models)
        }
        add_experiment(session, "sub", suite, sub)
    engine.dispose()
    return y
