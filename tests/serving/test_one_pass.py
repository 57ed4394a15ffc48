"""Tree classifiers answer with class and probabilities from one pass over their trees, and the
answer is the model's own ``predict`` — ties included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelworks as mw
from modelworks.registry.loading import load
from modelworks.serving.model_cache import ServedModel

COLUMNS = ["a", "b", "c", "d"]


def frame(classes: int, n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_classification(n, 4, n_informative=3, n_redundant=0, n_classes=classes,
                               random_state=seed)
    return pd.DataFrame(x, columns=COLUMNS), np.array(["no", "yes", "maybe"])[y]


def served(tmp_path: Path, model: Any, x: pd.DataFrame) -> ServedModel:
    ws = mw.Workspace(tmp_path / "ws")
    version = ws.register_model("m", model=model, input_example=x.head(5))
    one = ServedModel(load(ws.ctx, version.uri))
    ws.close()
    return one


MODELS: dict[str, Callable[[], Any]] = {
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
    "hgb-in-pipeline": lambda: make_pipeline(
        StandardScaler(), HistGradientBoostingClassifier(max_iter=30, random_state=0)),
    "forest of 2 (tied votes)": lambda: RandomForestClassifier(n_estimators=2, random_state=0),
}


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("name", list(MODELS))
def test_one_pass_gives_predict_and_predict_proba(tmp_path: Path, name: str,
                                                  classes: int) -> None:
    x, y = frame(classes)
    model = MODELS[name]().fit(x, y)
    one = served(tmp_path, model, x)
    assert one._argmax  # the one-pass path is taken
    fresh, _ = frame(classes, n=2000, seed=1)
    rows = fresh.to_dict(orient="records")
    labels, proba = one.predict(one.inputs(rows), proba=True)
    assert labels == model.predict(fresh).tolist()
    np.testing.assert_array_equal(np.asarray(proba), model.predict_proba(fresh))


def test_a_pipeline_transforms_once_for_predictions_and_probabilities(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    x, y = frame(3)
    x["colour"] = pd.Categorical(np.where(x["a"] > 0, "red", "blue"))
    model = make_pipeline(
        ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                           ("scale", StandardScaler(), COLUMNS)]),
        LogisticRegression(max_iter=2000)).fit(x, y)
    one = served(tmp_path, model, x)
    assert one._split is not None and not one.fast  # the DataFrame path, split in two
    fresh, _ = frame(3, n=500, seed=2)
    fresh["colour"] = pd.Categorical(np.where(fresh["b"] > 0, "red", "blue"))
    labels, proba = one.predict(one.inputs(fresh.to_dict(orient="records")), proba=True)
    assert labels == model.predict(fresh).tolist()
    np.testing.assert_array_equal(np.asarray(proba), model.predict_proba(fresh))
    alone, none = one.predict(one.inputs(fresh.head(2).to_dict(orient="records")))
    assert alone == model.predict(fresh.head(2)).tolist() and none is None


def test_a_tied_top_probability_is_decided_by_predict(tmp_path: Path) -> None:
    # No split is possible on constant features, so every row gets the baseline score; a
    # baseline a hair above 0 is class "yes" for predict (score > 0) while its probability
    # rounds to exactly [0.5, 0.5], whose argmax would say "no".
    x = pd.DataFrame(np.ones((40, 4)), columns=COLUMNS)
    model = HistGradientBoostingClassifier(max_iter=3).fit(x, ["no", "yes"] * 20)
    model._baseline_prediction = np.full_like(model._baseline_prediction, 1e-18)
    assert model.predict_proba(x.head(1)).tolist() == [[0.5, 0.5]]
    assert model.predict(x.head(1)).tolist() == ["yes"]
    one = served(tmp_path, model, x)
    assert one._argmax
    labels, proba = one.predict(one.inputs(x.head(3).to_dict(orient="records")), proba=True)
    assert labels == ["yes"] * 3 and proba == [[0.5, 0.5]] * 3


def test_small_requests_to_openmp_models_run_on_one_openmp_thread(tmp_path: Path) -> None:
    from threadpoolctl import threadpool_info

    from modelworks.serving.model_cache import _one_openmp_thread

    x, y = frame(2)
    model = MODELS["hgb"]().fit(x, y)
    hgb = served(tmp_path / "a", model, x)
    forest = served(tmp_path / "b", MODELS["forest of 2 (tied votes)"]().fit(x, y), x)
    assert hgb._openmp and not forest._openmp  # only models whose predict uses OpenMP pay
    openmp = [i for i in threadpool_info() if i["user_api"] == "openmp"]
    assert openmp and all(i["num_threads"] >= 1 for i in openmp)
    with _one_openmp_thread():
        assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "openmp")
    labels, _ = hgb.predict(hgb.inputs(x.head(3).to_dict(orient="records")))
    assert labels == model.predict(x.head(3)).tolist()
