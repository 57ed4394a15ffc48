"""The NumPy preprocessing of Pipeline(ColumnTransformer, final): identical answers, or not
used at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import modelworks as mw
from modelworks.registry.loading import load
from modelworks.serving.model_cache import ServedModel

REGIONS = ["north", "south", "east", "west"]


def claims(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "region": pd.Categorical(rng.choice(REGIONS, n), categories=REGIONS),
        "kind": pd.Categorical(rng.choice(["a", "b", "c"], n), categories=["a", "b", "c"]),
        "amount": rng.normal(100, 30, n),
        "age": rng.integers(18, 90, n).astype(float),
        "prior": rng.integers(0, 5, n),
    })
    df.loc[rng.random(n) < 0.1, "amount"] = np.nan  # the imputer has work to do
    df["y"] = (df["amount"].fillna(100) + 20 * (df["region"] == "west") > 110).astype(int)
    df["cost"] = df["amount"].fillna(100) * 2 + df["prior"] * 10
    return df


X = ["region", "kind", "amount", "age", "prior"]


def preprocess(**onehot: Any) -> ColumnTransformer:
    return ColumnTransformer([
        ("cats", OneHotEncoder(handle_unknown="ignore", **onehot), ["region", "kind"]),
        ("money", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         ["amount"]),
        ("age", StandardScaler(), ["age"]),
    ], remainder="passthrough")


def served(tmp_path: Path, model: Any, train: pd.DataFrame) -> ServedModel:
    ws = mw.Workspace(tmp_path / "ws")
    example = train[X].head(5).copy()
    example.loc[example.index[0], "amount"] = np.nan  # amounts may be missing
    version = ws.register_model("m", model=model, input_example=example)
    one = ServedModel(load(ws.ctx, version.uri))
    ws.close()
    return one


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame[X].to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and np.isnan(v) else v)
                    for k, v in row.items()})
    return out


@pytest.mark.parametrize("final, label", [
    (LogisticRegression(max_iter=2000), "y"),
    (HistGradientBoostingClassifier(max_iter=20, random_state=0), "y"),
    (Ridge(), "cost"),
])
def test_compiled_answers_are_the_pipelines(tmp_path: Path, final: Any, label: str) -> None:
    train = claims(600, seed=0)
    model = make_pipeline(preprocess(), final).fit(train[X], train[label])
    one = served(tmp_path, model, train)
    assert one._compiled is not None and not one.fast
    fresh = claims(700, seed=1)
    data = one.inputs(rows_of(fresh))
    labels, proba = one.predict(data, proba=hasattr(model, "predict_proba"))
    expected = model.predict(fresh[X])
    if label == "cost":
        np.testing.assert_allclose(labels, expected, rtol=1e-12, atol=1e-9)
    else:
        assert labels == expected.tolist()
        np.testing.assert_allclose(proba, model.predict_proba(fresh[X]), rtol=0, atol=1e-12)
    single, _ = one.predict(one.inputs(rows_of(fresh.head(1))))
    assert np.allclose(single, expected[:1])


@pytest.mark.parametrize("make", [
    lambda: make_pipeline(ColumnTransformer([("cats", OneHotEncoder(handle_unknown="error"),
                                              ["region", "kind"])], remainder="passthrough"),
                          LogisticRegression(max_iter=2000)),
    lambda: make_pipeline(ColumnTransformer([("cats", OneHotEncoder(handle_unknown="ignore"),
                                              ["region", "kind"]),
                                             ("log", FunctionTransformer(np.log1p), ["age"])],
                                            remainder=SimpleImputer()),
                          LogisticRegression(max_iter=2000)),
])
def test_other_pipelines_keep_scikit_learn(tmp_path: Path, make: Any) -> None:
    train = claims(300, seed=2).fillna({"amount": 100.0})
    model = make().fit(train[X], train["y"])
    one = served(tmp_path, model, train)
    assert one._compiled is None
    fresh = claims(50, seed=3).fillna({"amount": 100.0})
    labels, _ = one.predict(one.inputs(rows_of(fresh)))
    assert labels == model.predict(fresh[X]).tolist()


def test_a_missing_number_the_pipeline_does_not_impute_is_its_own_error(tmp_path: Path) -> None:
    train = claims(300, seed=4).fillna({"amount": 100.0})
    model = make_pipeline(
        ColumnTransformer([("cats", OneHotEncoder(handle_unknown="ignore"), ["region"]),
                           ("nums", StandardScaler(), ["amount", "age"])]),
        LogisticRegression(max_iter=2000)).fit(train[X], train["y"])
    one = served(tmp_path, model, train)
    assert one._compiled is not None
    row = rows_of(train.head(1))[0]
    with pytest.raises(ValueError, match="NaN"):  # scikit-learn's own message
        one.predict(one.inputs([{**row, "amount": None}]))
