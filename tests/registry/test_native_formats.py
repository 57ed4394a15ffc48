"""Native formats for LightGBM, XGBoost and ONNX: real round trips, detection, junk bytes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelworks.errors import IntegrityError, InvalidInput
from modelworks.registry.formats import (
    _SAFE_ORDER,
    SavedModel,
    detect_format,
    get_format,
    load_model,
    save_model,
)


@pytest.fixture
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 120
    x = pd.DataFrame({"size": rng.normal(10, 3, n), "weight": rng.normal(50, 10, n)})
    y = ((x["size"] > 10) ^ (x["weight"] > 50)).to_numpy().astype(int)
    return x, y


def test_native_formats_come_before_sklearn() -> None:
    assert _SAFE_ORDER.index("sklearn") > max(
        _SAFE_ORDER.index(n) for n in ("lightgbm", "xgboost", "onnx")
    )
    assert detect_format(LogisticRegression(), allow_pickle=False).name == "sklearn"
    for name in ("lightgbm", "xgboost", "onnx"):
        assert not get_format(name).executes_code_on_load


# -- LightGBM ---------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [("no", "yes"), ("a", "b", "c")])
def test_lgbm_classifier_round_trip(
    frame: tuple[pd.DataFrame, np.ndarray], labels: tuple[str, ...]
) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = frame
    y = np.asarray(labels)[(y + (x["size"] > 12).to_numpy()) % len(labels)]
    model = lgb.LGBMClassifier(n_estimators=20, min_child_samples=5, verbose=-1).fit(x, y)

    saved = save_model(model)
    loaded = load_model(saved)

    assert saved.format == "lightgbm" and saved.library == "lightgbm"
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))


def test_lgbm_regressor_and_booster_round_trip(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, _ = frame
    target = x["size"] * 2 + x["weight"]
    model = lgb.LGBMRegressor(n_estimators=20, min_child_samples=5, verbose=-1).fit(x, target)

    loaded = load_model(save_model(model))
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    with pytest.raises(AttributeError):
        loaded.predict_proba(x)

    booster = model.booster_
    fmt = detect_format(booster, allow_pickle=False)
    raw = fmt.load(fmt.save(booster))
    assert fmt.name == "lightgbm" and isinstance(raw, lgb.Booster)
    np.testing.assert_allclose(raw.predict(x), booster.predict(x))


def test_unfitted_lgbm_is_not_native() -> None:
    lgb = pytest.importorskip("lightgbm")
    assert not get_format("lightgbm").can_save(lgb.LGBMClassifier())
    with pytest.raises(InvalidInput):
        get_format("lightgbm").save(lgb.LGBMClassifier())


# -- XGBoost ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_xgb_classifier_round_trip(frame: tuple[pd.DataFrame, np.ndarray], n_classes: int) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = frame
    y = (y + (x["size"] > 12).to_numpy()) % n_classes
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(x, y)

    saved = save_model(model)
    loaded = load_model(saved)

    assert saved.format == "xgboost" and saved.library == "xgboost"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=1e-6)


def test_xgb_early_stopping_and_booster_round_trip(
    frame: tuple[pd.DataFrame, np.ndarray],
) -> None:
    xgb = pytest.importorskip("xgboost")
    x, _ = frame
    target = x["size"] * 2 + x["weight"]
    model = xgb.XGBRegressor(n_estimators=200, early_stopping_rounds=3)
    model.fit(x[:80], target[:80], eval_set=[(x[80:], target[80:])], verbose=False)
    assert model.best_iteration < 199

    loaded = load_model(save_model(model))
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)

    booster = model.get_booster()
    fmt = detect_format(booster, allow_pickle=False)
    raw = fmt.load(fmt.save(booster))
    assert fmt.name == "xgboost" and isinstance(raw, xgb.Booster)
    np.testing.assert_allclose(
        raw.predict(xgb.DMatrix(x)), booster.predict(xgb.DMatrix(x)), rtol=1e-6
    )


# -- ONNX -------------------------------------------------------------------------------------


def test_onnx_logistic_regression_round_trip(frame: tuple[pd.DataFrame, np.ndarray]) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    x, y = frame
    model = LogisticRegression().fit(x, y)
    proto = skl2onnx.convert_sklearn(
        model, initial_types=[("input", FloatTensorType([None, x.shape[1]]))]
    )

    saved = save_model(proto)
    loaded = load_model(saved)

    assert saved.format == "onnx" and saved.library == "onnxruntime"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), atol=1e-5)


# -- junk -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "library"), [("lightgbm", "lightgbm"), ("xgboost", "xgboost")])
def test_junk_bytes_are_an_integrity_error(name: str, library: str) -> None:
    pytest.importorskip(library)
    fmt = get_format(name)
    header = json.dumps({"format": name, "kind": "estimator"}).encode()
    for data in (b"junk", header + b"\nnot a model", b"\xff\xfe\n"):
        with pytest.raises(IntegrityError) as info:
            fmt.load(data)
        assert name in str(info.value)


def test_onnx_junk_bytes_are_an_integrity_error() -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(IntegrityError) as info:
        load_model(SavedModel(format="onnx", data=b"junk", library="onnx", library_version="1"))
    assert "onnx" in str(info.value)
