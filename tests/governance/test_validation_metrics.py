"""The vectorised bootstrap formulas agree with scikit-learn on the same resamples."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from modelworks.governance.metrics import (
    bootstrap_counts,
    classification_metrics,
    regression_metrics,
    resampled_classification,
    resampled_regression,
    weighted_auc,
)


def _resamples(n: int, b: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The count matrix, and each row expanded back into the row indices it counts."""
    weights = np.vstack(list(bootstrap_counts(n, b, seed)))
    rows = [np.repeat(np.arange(n), w.astype(int)) for w in weights]
    return weights, rows


def test_counts_are_resamples_of_n_rows() -> None:
    weights = np.vstack(list(bootstrap_counts(500, 30, seed=3)))
    assert weights.shape == (30, 500)
    assert (weights.sum(axis=1) == 500).all()
    assert (weights >= 0).all()
    again = np.vstack(list(bootstrap_counts(500, 30, seed=3)))
    assert (weights == again).all()  # seeded
    assert not (weights == np.vstack(list(bootstrap_counts(500, 30, seed=4)))).all()
    assert list(bootstrap_counts(500, 0, seed=3)) == []


def test_binary_formulas_match_sklearn_on_each_resample() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    score = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), 2)  # rounded: ties
    proba = np.column_stack([1 - score, score])
    pred = (score > 0.5).astype(int)
    weights, rows = _resamples(n, 8, seed=1)
    got = resampled_classification(y, pred, proba, 2, weights)
    for b, idx in enumerate(rows):
        yt, yp, s = y[idx], pred[idx], score[idx]
        assert got["accuracy"][b] == pytest.approx(skm.accuracy_score(yt, yp))
        assert got["precision"][b] == pytest.approx(skm.precision_score(yt, yp))
        assert got["recall"][b] == pytest.approx(skm.recall_score(yt, yp))
        assert got["f1"][b] == pytest.approx(skm.f1_score(yt, yp))
        assert got["roc_auc"][b] == pytest.approx(skm.roc_auc_score(yt, s))
        assert got["log_loss"][b] == pytest.approx(skm.log_loss(yt, proba[idx], labels=[0, 1]))
        assert got["brier"][b] == pytest.approx(skm.brier_score_loss(yt, s))


def test_multiclass_macro_formulas_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    n, k = 300, 3
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    weights, rows = _resamples(n, 6, seed=2)
    got = resampled_classification(y, pred, proba, k, weights)
    assert "brier" not in got
    for b, idx in enumerate(rows):
        yt, yp = y[idx], pred[idx]
        assert got["f1"][b] == pytest.approx(skm.f1_score(yt, yp, average="macro"))
        assert got["precision"][b] == pytest.approx(
            skm.precision_score(yt, yp, average="macro", zero_division=0))
        assert got["recall"][b] == pytest.approx(skm.recall_score(yt, yp, average="macro"))
        assert got["roc_auc"][b] == pytest.approx(
            skm.roc_auc_score(yt, proba[idx], multi_class="ovr", average="macro"))
        assert got["log_loss"][b] == pytest.approx(skm.log_loss(yt, proba[idx], labels=[0, 1, 2]))


def test_regression_formulas_match_sklearn() -> None:
    rng = np.random.default_rng(2)
    n = 250
    y = rng.normal(50, 10, n)
    pred = y + rng.normal(0, 4, n)
    weights, rows = _resamples(n, 6, seed=3)
    got = resampled_regression(y, pred, weights)
    for b, idx in enumerate(rows):
        assert got["mae"][b] == pytest.approx(skm.mean_absolute_error(y[idx], pred[idx]))
        assert got["rmse"][b] == pytest.approx(np.sqrt(skm.mean_squared_error(y[idx], pred[idx])))
        assert got["r2"][b] == pytest.approx(skm.r2_score(y[idx], pred[idx]))
        assert got["mape"][b] == pytest.approx(
            skm.mean_absolute_percentage_error(y[idx], pred[idx]))


def test_auc_is_nan_without_both_classes() -> None:
    weights = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    auc = weighted_auc(np.array([0.2, 0.8, 0.5]), np.array([False, True, True]), weights)
    assert np.isnan(auc[0])
    assert auc[1] == pytest.approx(1.0)


def test_intervals_bracket_the_point_estimate() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    y = rng.integers(0, 2, n)
    score = np.clip(0.25 * y + rng.random(n) * 0.75, 0, 1)
    proba = np.column_stack([1 - score, score])
    result = classification_metrics(y, (score > 0.5).astype(int), proba, [0, 1],
                                    n_bootstrap=100, seed=0)
    assert set(result) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
                           "brier"}
    for name, m in result.items():
        assert m.low is not None and m.high is not None, name
        assert m.low <= m.value <= m.high, name
        assert m.high - m.low < 0.1, name  # 2,000 rows: a narrow interval
    assert result["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, score))
    bare = regression_metrics(y.astype(float), score, n_bootstrap=0, seed=0)
    assert all(m.low is None and m.high is None for m in bare.values())
