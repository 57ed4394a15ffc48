"""Task metrics with bootstrap confidence intervals, computed for all resamples at once.

The resamples are drawn once as an index matrix (``n_bootstrap x n``) and turned into a
count matrix ``W`` (how often each row appears in each resample). Every metric is then a
function of weighted sums, ``W @ v`` for a per-row vector ``v`` — one matrix product for
all resamples instead of one scikit-learn call per resample. ROC AUC is rank based: with
the rows sorted by score once, each resample's AUC is the weighted Mann-Whitney statistic
(ties counted one half), from cumulative sums over the distinct scores.

Point estimates come from scikit-learn on the full data; intervals are the 2.5th and 97.5th
percentiles of the resampled values (resamples where a metric is undefined, e.g. AUC
without both classes, are left out).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "MetricValue",
    "bootstrap_counts",
    "classification_metrics",
    "regression_metrics",
    "resampled_classification",
    "resampled_regression",
    "weighted_auc",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
                          "brier")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
_EPS = 1e-15  # probabilities are clipped so that log loss stays finite
_BLOCK_CELLS = 4_000_000  # count-matrix cells per block: bounds memory at ~32 MB a block


class MetricValue(BaseModel):
    """A metric's point estimate and its 95% bootstrap interval (``None`` without one)."""

    model_config = ConfigDict(frozen=True)

    value: float | None
    low: float | None = None
    high: float | None = None


def bootstrap_counts(n: int, n_bootstrap: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of the count matrix: row ``b`` counts how often each of ``n`` rows is drawn.

    The index matrix is drawn once, with one generator, so the result does not depend on the
    block size.
    """
    if n_bootstrap == 0 or n == 0:
        return
    rng = np.random.default_rng(seed)
    dtype = np.int32 if n < 2**31 else np.int64
    idx = rng.integers(0, n, size=(n_bootstrap, n), dtype=dtype)
    step = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_bootstrap, step):
        block = idx[start:start + step]
        rows = block.shape[0]
        offsets = (np.arange(rows, dtype=np.int64) * n)[:, None]
        counts = np.bincount((block + offsets).ravel(), minlength=rows * n)
        yield counts.reshape(rows, n).astype(np.float64)


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` for each row of ``weights`` (``B x n``); NaN without both classes.

    AUC = P(score of a positive > score of a negative) + P(equal) / 2, with every row counted
    as often as its weight says — the rank (Mann-Whitney) form, so no curve is built.
    """
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    pos = positive[order].astype(np.float64)
    w = weights[:, order]
    pos_w = np.add.reduceat(w * pos, starts, axis=1)  # B x distinct scores
    neg_w = np.add.reduceat(w * (1.0 - pos), starts, axis=1)
    neg_below = np.cumsum(neg_w, axis=1) - neg_w
    n_pos = pos_w.sum(axis=1)
    n_neg = neg_w.sum(axis=1)
    wins = (pos_w * (neg_below + 0.5 * neg_w)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's ``zero_division`` default)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _interval(samples: list[np.ndarray]) -> tuple[float | None, float | None]:
    if not samples:
        return None, None
    values = np.concatenate(samples)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _collect(
    point: dict[str, float], batch: Callable[[np.ndarray], dict[str, np.ndarray]],
    n: int, n_bootstrap: int, seed: int,
) -> dict[str, MetricValue]:
    samples: dict[str, list[np.ndarray]] = {name: [] for name in point}
    for weights in bootstrap_counts(n, n_bootstrap, seed):
        for name, values in batch(weights).items():
            samples[name].append(values)
    out = {}
    for name, value in point.items():
        low, high = _interval(samples[name])
        out[name] = MetricValue(value=_finite(value), low=low, high=high)
    return out


def resampled_classification(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int,
    weights: np.ndarray, *, names: Collection[str] = CLASSIFICATION_METRICS,
) -> dict[str, np.ndarray]:
    """The classification metrics of each resample (row of ``weights``), one array each."""
    labels = range(n_classes)
    binary = n_classes == 2
    w = weights
    total = w.sum(axis=1)
    eye = np.eye(n_classes, dtype=np.float64)
    true_1h, pred_1h = eye[y_true], eye[y_pred]
    out = {"accuracy": (w @ (y_true == y_pred).astype(np.float64)) / total}
    tp, pp, ap = w @ (true_1h * pred_1h), w @ pred_1h, w @ true_1h  # B x K
    precision, recall = _ratio(tp, pp), _ratio(tp, ap)
    f1 = _ratio(2 * tp, pp + ap)
    if binary:
        out.update(precision=precision[:, 1], recall=recall[:, 1], f1=f1[:, 1])
    else:
        # macro over the labels present in the resample (true or predicted), as sklearn
        seen = (pp + ap) > 0
        count = np.maximum(seen.sum(axis=1), 1)
        out.update(precision=(precision * seen).sum(axis=1) / count,
                   recall=(recall * seen).sum(axis=1) / count,
                   f1=(f1 * seen).sum(axis=1) / count)
    if proba is not None:
        if "roc_auc" in names:
            if binary:
                out["roc_auc"] = weighted_auc(proba[:, 1], y_true == 1, w)
            else:
                per_class = [weighted_auc(proba[:, c], y_true == c, w) for c in labels]
                out["roc_auc"] = np.mean(per_class, axis=0)
        if "log_loss" in names:
            p_true = np.clip(proba, _EPS, 1 - _EPS)[np.arange(len(y_true)), y_true]
            out["log_loss"] = (w @ -np.log(p_true)) / total
        if binary and "brier" in names:
            out["brier"] = (w @ (proba[:, 1] - (y_true == 1)) ** 2) / total
    return {k: v for k, v in out.items() if k in names}


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any],
    *, n_bootstrap: int, seed: int,
) -> dict[str, MetricValue]:
    """Accuracy, precision, recall, F1, ROC AUC, log loss and (binary) Brier score.

    ``y_true`` and ``y_pred`` are class indices into ``classes``; ``proba`` is ``n x K``
    (columns in ``classes`` order) or ``None`` (then no AUC, log loss or Brier score).
    Binary: precision/recall/F1 of the positive class (``classes[1]``). Multiclass: macro
    averages over the classes present, one-vs-rest macro ROC AUC, no Brier score. ROC AUC is
    left out when the data lacks one of the classes.
    """
    from sklearn import metrics as skm

    k = len(classes)
    labels = list(range(k))
    point: dict[str, float] = {"accuracy": skm.accuracy_score(y_true, y_pred)}
    average = "binary" if k == 2 else "macro"
    point["precision"] = skm.precision_score(y_true, y_pred, average=average, zero_division=0)
    point["recall"] = skm.recall_score(y_true, y_pred, average=average, zero_division=0)
    point["f1"] = skm.f1_score(y_true, y_pred, average=average, zero_division=0)
    if proba is not None:
        if len(np.unique(y_true)) == k:
            point["roc_auc"] = (skm.roc_auc_score(y_true, proba[:, 1]) if k == 2 else
                                skm.roc_auc_score(y_true, proba, multi_class="ovr",
                                                  average="macro", labels=labels))
        point["log_loss"] = skm.log_loss(y_true, proba, labels=labels)
        if k == 2:
            point["brier"] = skm.brier_score_loss(y_true, proba[:, 1])

    def batch(w: np.ndarray) -> dict[str, np.ndarray]:
        return resampled_classification(y_true, y_pred, proba, k, w, names=point.keys())

    return _collect(point, batch, len(y_true), n_bootstrap, seed)


def resampled_regression(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray
                         ) -> dict[str, np.ndarray]:
    """MAE, RMSE, R² and MAPE of each resample (row of ``weights``)."""
    y = y_true.astype(np.float64)
    err = y - y_pred.astype(np.float64)
    centred = y - y.mean()  # sums of squares about the full mean keep their precision
    ape = np.abs(err) / np.maximum(np.abs(y), np.finfo(np.float64).eps)
    w = weights
    total = w.sum(axis=1)
    ss_res = w @ err**2
    mean_c = (w @ centred) / total
    ss_tot = w @ centred**2 - total * mean_c**2
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.nan)
    return {"mae": (w @ np.abs(err)) / total, "rmse": np.sqrt(ss_res / total), "r2": r2,
            "mape": (w @ ape) / total}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, *, n_bootstrap: int,
                       seed: int) -> dict[str, MetricValue]:
    """MAE, RMSE, R² and MAPE (scikit-learn's definition: relative to ``max(|y|, eps)``)."""
    from sklearn import metrics as skm

    y = y_true.astype(np.float64)
    p = y_pred.astype(np.float64)
    point = {
        "mae": skm.mean_absolute_error(y, p),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "r2": skm.r2_score(y, p),
        "mape": skm.mean_absolute_percentage_error(y, p),
    }
    return _collect(point, lambda w: resampled_regression(y, p, w), len(y), n_bootstrap,
                    seed)
