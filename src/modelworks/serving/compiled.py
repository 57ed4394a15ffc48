"""NumPy-only predictors for fitted linear scikit-learn models, verified before use.

Used only on the serving fast path, where the input matrix is already checked (types,
finiteness, column order). A compiled predictor is returned only when it reproduces the
estimator's ``predict`` exactly and ``predict_proba`` to 1e-12 on probe rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit, softmax

__all__ = ["compile_linear"]

Predictors = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray] | None]

_TOLERANCE = 1e-12


def _probes(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The example rows plus perturbed copies, so a lucky match on five rows is not enough."""
    rng = np.random.default_rng(seed)
    scale = np.where(np.std(x, axis=0) > 0, np.std(x, axis=0), np.abs(x).mean(axis=0) + 1.0)
    noisy = x[rng.integers(0, len(x), 64)] + rng.normal(0, 1, (64, x.shape[1])) * scale
    return np.vstack([x, noisy])


def _classifier(model: Any) -> Predictors | None:
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    classes = np.asarray(model.classes_)
    if coef.shape[0] == 1:  # binary: one decision column

        def predict(x: np.ndarray) -> np.ndarray:
            return classes[(x @ coef[0] + intercept[0] > 0).astype(np.intp)]

        def proba(x: np.ndarray) -> np.ndarray:
            p1 = expit(x @ coef[0] + intercept[0])
            return np.column_stack([1.0 - p1, p1])

        return predict, proba

    def predict_multi(x: np.ndarray) -> np.ndarray:
        return classes[np.argmax(x @ coef.T + intercept, axis=1)]

    def proba_multi(x: np.ndarray) -> np.ndarray:
        return softmax(x @ coef.T + intercept, axis=1)

    return predict_multi, proba_multi


def _regressor(model: Any) -> Predictors | None:
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.ndim != 1:
        return None

    def predict(x: np.ndarray) -> np.ndarray:
        return x @ coef + intercept

    return predict, None


def compile_linear(model: Any, probe: np.ndarray) -> Predictors | None:
    """Compiled (predict, predict_proba) for a linear model, or None."""
    try:
        from sklearn.linear_model import (
            ElasticNet,
            Lasso,
            LinearRegression,
            LogisticRegression,
            Ridge,
            RidgeClassifier,
        )
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None
    kind = type(model)
    if kind is LogisticRegression:
        compiled = _classifier(model)
    elif kind in (LinearRegression, Ridge, Lasso, ElasticNet):
        compiled = _regressor(model)
    elif kind is RidgeClassifier:
        predictors = _classifier(model)
        compiled = None if predictors is None else (predictors[0], None)
    else:
        return None
    if compiled is None:
        return None
    predict, proba = compiled
    x = _probes(np.asarray(probe, dtype=np.float64))
    try:
        if not np.array_equal(predict(x), np.asarray(model.predict(x))):
            return None
        if proba is not None and not np.allclose(proba(x), model.predict_proba(x),
                                                 rtol=0, atol=_TOLERANCE):
            return None
    except Exception:  # anything unexpected: keep scikit-learn's own path
        return None
    return predict, proba
