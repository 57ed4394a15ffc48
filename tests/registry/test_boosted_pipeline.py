"""The boosted-pipeline format: preprocessing (skops) + a LightGBM/XGBoost model (native),
registered and loaded back through a real workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler

import modelworks as mw
from modelworks.errors import IntegrityError, InvalidInput
from modelworks.registry.formats import detect_format, get_format, load_model, save_model


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"size": rng.normal(10, 3, n), "colour": rng.choice(["red", "blue"], n)})
    df["label"] = ((df["size"] > 10) ^ (df["colour"] == "red")).astype(int)
    return df


def _pipeline(model: object) -> Pipeline:
    prep = ColumnTransformer([("cat", OrdinalEncoder(), ["colour"]),
                              ("num", StandardScaler(), ["size"])])
    return Pipeline([("prep", prep), ("model", model)])


def _boosters(task: str) -> list[object]:
    lgb = pytest.importorskip("lightgbm")
    xgb = pytest.importorskip("xgboost")
    if task == "classification":
        return [lgb.LGBMClassifier(n_estimators=20, verbose=-1),
                xgb.XGBClassifier(n_estimators=20)]
    return [lgb.LGBMRegressor(n_estimators=20, verbose=-1), xgb.XGBRegressor(n_estimators=20)]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_pipeline_ending_in_a_booster_round_trips_through_the_registry(
        tmp_path: Path, frame: pd.DataFrame, task: str) -> None:
    x = frame.drop(columns=["label"])
    y = frame["label"] if task == "classification" else frame["size"] * 2.0
    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        for i, booster in enumerate(_boosters(task)):
            fitted = _pipeline(booster).fit(x, y)
            version = ws.register_model(f"boosted-{i}", model=fitted, input_example=x.head())
            assert version.format == "boosted-pipeline"
            loaded = ws.load_model(version.uri)
            np.testing.assert_allclose(loaded.predict(x), fitted.predict(x), rtol=1e-6)
            if task == "classification":
                np.testing.assert_allclose(loaded.predict_proba(x), fitted.predict_proba(x),
                                           rtol=1e-6)
            else:
                assert not hasattr(loaded.model, "predict_proba")


def test_only_pipelines_ending_in_a_booster_take_the_format(frame: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = frame.drop(columns=["label"]), frame["label"]
    assert detect_format(_pipeline(LogisticRegression()).fit(x, y),
                         allow_pickle=False).name == "sklearn"
    lgb = pytest.importorskip("lightgbm")
    assert not get_format("boosted-pipeline").can_save(_pipeline(lgb.LGBMClassifier()))
    assert not get_format("boosted-pipeline").executes_code_on_load


def test_a_loaded_boosted_pipeline_cannot_be_refitted(frame: pd.DataFrame) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = frame.drop(columns=["label"]), frame["label"]
    loaded = load_model(save_model(_pipeline(lgb.LGBMClassifier(n_estimators=5,
                                                                verbose=-1)).fit(x, y)))
    with pytest.raises(InvalidInput, match="cannot be refitted"):
        loaded.fit(x, y)


def test_a_tampered_header_is_an_integrity_error(frame: pd.DataFrame) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = frame.drop(columns=["label"]), frame["label"]
    saved = save_model(_pipeline(lgb.LGBMClassifier(n_estimators=5, verbose=-1)).fit(x, y))
    head, _, body = saved.data.partition(b"\n")
    with pytest.raises(IntegrityError):
        load_model(saved.model_copy(update={"data": head + b"\n" + body[:-10]}))
    with pytest.raises(IntegrityError):
        load_model(saved.model_copy(update={"data": b"{}\n" + body}))
