"""Training entrypoints for the retraining tests: ``module:function`` taking a DataFrame."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelworks.quickstart.claims_data import FEATURE_COLUMNS, LABEL_COLUMN

FEATURES = list(FEATURE_COLUMNS)
CATEGORICAL = ["region", "procedure_code", "provider_type"]
NUMERIC = ["claim_amount", "prior_claims", "days_since_last_claim", "in_network"]
NOT_CALLABLE = 3


def fit(df: pd.DataFrame, *, max_iter: int = 200, C: float = 1.0) -> Pipeline:
    """A logistic regression on the claims features (sensitive columns left out); the
    categories are one-hot encoded, so logged JSON inputs (plain strings) work as well."""
    prep = ColumnTransformer([
        ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         NUMERIC)])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=max_iter, C=C))])
    return model.fit(df[FEATURES], df[LABEL_COLUMN])


def not_a_model(df: pd.DataFrame) -> dict[str, Any]:
    return {"rows": len(df)}


def broken(df: pd.DataFrame) -> Any:
    raise RuntimeError("the training code crashed")


# -- a pipeline as the training entrypoint: its first parameter takes the training frame ------

import modelworks as mw  # noqa: E402


@mw.step
def prepare(df: pd.DataFrame) -> pd.DataFrame:
    return df[[*FEATURES, LABEL_COLUMN]].reset_index(drop=True)


@mw.step
def train_step(df: pd.DataFrame, C: float = 1.0) -> Pipeline:
    return fit(df, C=C)


@mw.pipeline
def training(df: pd.DataFrame, C: float = 1.0) -> Any:
    return train_step(prepare(df), C=C)
