"""The quickstart's retraining entrypoints: ``fit`` (a function) and ``retraining`` (the
same as a pipeline of two steps, what the quickstart's training spec names).

A model's training spec names an importable ``module:function`` that takes the training
DataFrame (features and label) and returns a fitted model, or a ``@pipeline`` whose first
parameter takes it; the worker calls it when an alert or a schedule asks for a retrain. Both
refit the quickstart's gradient-boosting model on whatever claims they are given.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from ..errors import InvalidInput
from ..pipelines.steps import pipeline, step
from .claims_data import FEATURE_COLUMNS, LABEL_COLUMN

__all__ = ["fit", "prepare", "retraining", "train"]

_CATEGORICAL = ("region", "procedure_code", "provider_type")


def fit(df: pd.DataFrame, *, label: str = LABEL_COLUMN, seed: int = 7,
        learning_rate: float = 0.08, max_iter: int = 300) -> HistGradientBoostingClassifier:
    """Fit the claims-triage gradient-boosting classifier on ``df``'s feature columns."""
    missing = [c for c in (*FEATURE_COLUMNS, label) if c not in df.columns]
    if missing:
        raise InvalidInput(f"the training data lacks {', '.join(missing)}", field="data")
    x = df[list(FEATURE_COLUMNS)].copy()
    for column in _CATEGORICAL:  # logged inputs come back as strings: restore the dtype
        if not isinstance(x[column].dtype, pd.CategoricalDtype):
            x[column] = x[column].astype("category")
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", learning_rate=learning_rate, max_iter=max_iter,
        max_leaf_nodes=15, l2_regularization=1.0, early_stopping=True,
        validation_fraction=0.15, n_iter_no_change=15, random_state=seed)
    with threadpool_limits(limits=1):  # small data on a busy machine: threads only spin
        model.fit(x, df[label].astype(int).to_numpy())
    return model


# -- the same as a pipeline: what the quickstart's training spec names -----------------------


@step
def prepare(df: pd.DataFrame, label: str = LABEL_COLUMN) -> pd.DataFrame:
    """The feature columns and the label, categories restored (logged inputs are text)."""
    missing = [c for c in (*FEATURE_COLUMNS, label) if c not in df.columns]
    if missing:
        raise InvalidInput(f"the training data lacks {', '.join(missing)}", field="data")
    out = df[[*FEATURE_COLUMNS, label]].reset_index(drop=True)
    for column in _CATEGORICAL:
        if not isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype("category")
    return out


@step(retries=1)
def train(df: pd.DataFrame, label: str = LABEL_COLUMN, seed: int = 7
          ) -> HistGradientBoostingClassifier:
    """Fit the classifier on the prepared frame."""
    return fit(df, label=label, seed=seed)


@pipeline(name="claims-retraining")
def retraining(df: pd.DataFrame, label: str = LABEL_COLUMN, seed: int = 7) -> Any:
    """``modelworks.quickstart.training:retraining``: prepare, then train; each step a
    tracked, cached run."""
    return train(prepare(df, label=label), label=label, seed=seed)
