"""Fairness across sensitive features, with fairlearn's MetricFrame.

For each sensitive feature: per-group count and metrics (classification: selection rate,
accuracy, recall, false positive rate; regression: MAE), the demographic parity difference
and ratio, and (binary classification) the equalized odds difference. Multiclass models get
per-group counts and accuracy only: selection rate and the parity measures need one
positive class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

__all__ = ["FeatureFairness", "GroupMetrics", "fairness_report"]


class GroupMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    group: str
    count: int
    metrics: dict[str, float | None]


class FeatureFairness(BaseModel):
    """Fairness of the model's predictions across the groups of one sensitive feature."""

    model_config = ConfigDict(frozen=True)

    feature: str
    groups: list[GroupMetrics]
    demographic_parity_difference: float | None = None
    demographic_parity_ratio: float | None = None
    equalized_odds_difference: float | None = None


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _groups(frame: pd.DataFrame) -> list[GroupMetrics]:
    out = []
    for group, row in frame.iterrows():
        values = {str(k): _num(v) for k, v in row.items() if k != "count"}
        out.append(GroupMetrics(group=str(group), count=int(row["count"]), metrics=values))
    return out


def fairness_report(
    y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame, *, task: str,
    binary: bool,
) -> list[FeatureFairness]:
    """One entry per column of ``sensitive`` (already checked to exist).

    For classification ``y_true``/``y_pred`` are class indices and, when ``binary``, 1 is
    the positive class.
    """
    import fairlearn.metrics as flm
    from sklearn.metrics import accuracy_score, mean_absolute_error, recall_score

    def count(y_t: Any, y_p: Any) -> int:
        return len(y_t)

    metrics: dict[str, Any] = {"count": count}
    if task == "regression":
        metrics["mae"] = mean_absolute_error
    else:
        if binary:
            metrics["selection_rate"] = flm.selection_rate
        metrics["accuracy"] = accuracy_score
        if binary:
            metrics["recall"] = lambda t, p: recall_score(t, p, zero_division=0)
            metrics["false_positive_rate"] = flm.false_positive_rate
    out = []
    for column in sensitive.columns:
        # Groups as strings: missing values form their own group instead of vanishing.
        feature = sensitive[column].astype("object").where(sensitive[column].notna(), "<NA>")
        feature = feature.astype(str).to_numpy()
        frame = flm.MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred,
                                sensitive_features=pd.Series(feature, name=str(column)))
        entry: dict[str, Any] = {"feature": str(column), "groups": _groups(frame.by_group)}
        if task != "regression" and binary:
            entry["demographic_parity_difference"] = _num(flm.demographic_parity_difference(
                y_true, y_pred, sensitive_features=feature))
            entry["demographic_parity_ratio"] = _num(flm.demographic_parity_ratio(
                y_true, y_pred, sensitive_features=feature))
            entry["equalized_odds_difference"] = _num(flm.equalized_odds_difference(
                y_true, y_pred, sensitive_features=feature))
        out.append(FeatureFairness(**entry))
    return out

