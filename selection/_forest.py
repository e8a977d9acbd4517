"""A fitted gradient-boosted regressor as plain arrays, so it can be stored without pickle.

``HistGradientBoostingRegressor`` predicts by walking each tree's node table (a numpy
structured array) from the root. ``Trees`` keeps exactly that: the baseline, every
tree's nodes and categorical bitsets, and the known-category bitsets; prediction runs
scikit-learn's own tree walker (``TreePredictor``) on those arrays, so it matches the
estimator bit for bit. ``check`` validates arrays read from storage before they reach
that compiled walker: indices in range and children after their parent (no cycles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.errors import EvalError


class SelectorFormatError(EvalError, ValueError):
    """A stored selector is not in a form this version can load safely."""


@dataclass
class Trees:
    """One ensemble member: predict(x) = baseline + Σ tree(x)."""

    baseline: float
    nodes: list[np.ndarray]
    bitsets: list[np.ndarray]
    known_cat_bitsets: np.ndarray
    f_idx_map: np.ndarray

    @classmethod
    def from_estimator(cls, estimator) -> Trees:
        """The arrays of a fitted single-output ``HistGradientBoostingRegressor``."""
        known, f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
        trees = [predictors[0] for predictors in estimator._predictors]
        return cls(
            baseline=float(np.asarray(estimator._baseline_prediction).ravel()[0]),
            nodes=[tree.nodes for tree in trees],
            bitsets=[tree.raw_left_cat_bitsets for tree in trees],
            known_cat_bitsets=np.ascontiguousarray(known),
            f_idx_map=np.ascontiguousarray(f_idx_map),
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        data = np.ascontiguousarray(x, dtype=np.float64)
        out = np.full(len(data), self.baseline)
        for nodes, bitsets in zip(self.nodes, self.bitsets, strict=True):
            tree = TreePredictor(nodes, bitsets, bitsets)
            out += tree.predict(data, self.known_cat_bitsets, self.f_idx_map, 1)
        return out

    def check(self, n_features: int) -> None:
        """Raise SelectorFormatError unless every array is safe to hand to the walker."""
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

        if not np.isfinite(self.baseline):
            raise SelectorFormatError("a stored tree ensemble has a non-finite baseline")
        known, f_map = self.known_cat_bitsets, self.f_idx_map
        if known.dtype != np.uint32 or known.ndim != 2 or known.shape[1] != 8:
            raise SelectorFormatError("stored category bitsets have the wrong shape or type")
        if f_map.dtype != np.uint32 or f_map.shape != (n_features,):
            raise SelectorFormatError("stored feature map has the wrong shape or type")
        if len(known) and f_map.max(initial=0) >= len(known):
            raise SelectorFormatError("stored feature map points past the category bitsets")
        for nodes, bitsets in zip(self.nodes, self.bitsets, strict=True):
            if nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.ndim != 1 or len(nodes) == 0:
                raise SelectorFormatError(
                    "stored tree nodes do not have this scikit-learn's layout; retrain"
                )
            if bitsets.dtype != np.uint32 or bitsets.ndim != 2 or bitsets.shape[1] != 8:
                raise SelectorFormatError("stored split bitsets have the wrong shape or type")
            inner = nodes[nodes["is_leaf"] == 0]
            own = np.flatnonzero(nodes["is_leaf"] == 0)
            size = len(nodes)
            bad = (
                (inner["left"] <= own)
                | (inner["right"] <= own)
                | (inner["left"] >= size)
                | (inner["right"] >= size)
                | (inner["feature_idx"] < 0)
                | (inner["feature_idx"] >= n_features)
                | ((inner["is_categorical"] != 0) & (inner["bitset_idx"] >= len(bitsets)))
            )
            if bad.any():
                raise SelectorFormatError("a stored tree has node links out of range")
