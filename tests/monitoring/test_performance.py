"""Window performance: exact against scikit-learn, additive over chunks, CBPE estimates,
baselines from a real validation report, and probabilities logged by a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import modelworks as mw
from modelworks.config import Settings
from modelworks.errors import InvalidInput, NotFound
from modelworks.monitoring.performance import (
    AUC_EDGES,
    PerformanceAccumulator,
    PerformanceResult,
    accumulator_for,
    performance_baseline,
)
from modelworks.registry.loading import load
from modelworks.serving.app import create_app
from modelworks.serving.prediction_reader import read_predictions
from serving.conftest import start as serve  # the real uvicorn server of the serving tests

EXACT = 1e-12


def _cancer() -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, y


@pytest.fixture(scope="module")
def binary() -> dict[str, Any]:
    x, y = _cancer()
    model = LogisticRegression(C=0.05, max_iter=5000).fit(x.iloc[::2], y.iloc[::2])
    proba = model.predict_proba(x)
    return {"y": y.to_numpy(), "pred": model.predict(x), "proba": proba,
            "classes": model.classes_.tolist()}


def _frame(pred: Any, proba: Any = None, label: Any = None) -> pd.DataFrame:
    out = pd.DataFrame({"prediction": pd.Series(list(pred), dtype=object)})
    if proba is not None:
        out["proba"] = pd.Series([list(p) for p in proba], dtype=object)
    if label is not None:
        out["label"] = pd.Series(list(label), dtype=object)
    return out


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def _same(a: PerformanceResult, b: PerformanceResult) -> None:
    """Equal, but for float sums added in another order (to 1e-12)."""
    left, right = a.model_dump(), b.model_dump()
    assert left.keys() == right.keys()
    for key, value in left.items():
        if isinstance(value, dict) and value and isinstance(next(iter(value.values())), float):
            assert value == pytest.approx(right[key], abs=EXACT), key
        else:
            assert value == right[key], key


def _feed(acc: PerformanceAccumulator, frame: pd.DataFrame, size: int = 100
          ) -> PerformanceResult:
    for chunk in _chunks(frame, size):
        acc.add(chunk)
    return acc.result()


# -- exactness ------------------------------------------------------------------------------


def test_binary_metrics_match_scikit_learn(binary: dict[str, Any]) -> None:
    y, pred, proba = binary["y"], binary["pred"], binary["proba"]
    result = _feed(PerformanceAccumulator("classification", binary["classes"]),
                   _frame(pred, proba, y), size=97)
    m = result.metrics
    assert result.rows == result.labelled_rows == len(y) and result.positive_label == 1
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=EXACT)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred), abs=EXACT)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred), abs=EXACT)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred), abs=EXACT)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba), abs=EXACT)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]), abs=EXACT)
    bound = result.error_bounds["roc_auc"]
    exact = skm.roc_auc_score(y, proba[:, 1])
    assert abs(m["roc_auc"] - exact) <= bound + EXACT and 0 < bound < 0.005
    assert result.confusion_matrix == skm.confusion_matrix(y, pred).tolist()
    assert result.classes == [0, 1]
    assert result.positive_rate == pytest.approx(np.mean(pred == 1), abs=EXACT)


def test_roc_auc_bound_holds_where_scores_pile_up() -> None:
    """Scores near 0 and 1 and exact ties: the binned AUC stays within its stated bound."""
    rng = np.random.default_rng(3)
    n = 20_000
    y = rng.integers(0, 2, n)
    raw = rng.normal(2.5 * y - 1.25, 3.0)
    p1 = np.round(1 / (1 + np.exp(-raw)), 3)  # piles at 0, 1 and on the bin edges
    p1[:500] = 0.5
    proba = np.c_[1 - p1, p1]
    result = _feed(PerformanceAccumulator("classification", [0, 1]),
                   _frame((p1 > 0.5).astype(int), proba, y), size=4_096)
    exact = skm.roc_auc_score(y, p1)
    assert abs(result.metrics["roc_auc"] - exact) <= result.error_bounds["roc_auc"] + EXACT
    assert result.error_bounds["roc_auc"] < 0.01
    # the tails are split further, so confident scores are told apart
    assert (AUC_EDGES[:3] == [0, 1e-12, 1e-11]).all() and len(AUC_EDGES) == 1019


def test_multiclass_macro_metrics_match_scikit_learn() -> None:
    x, y_idx = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    y = names[y_idx]
    model = LogisticRegression(C=0.02, max_iter=2000).fit(x, y)
    pred, proba = model.predict(x), model.predict_proba(x)
    result = _feed(PerformanceAccumulator("classification", model.classes_.tolist()),
                   _frame(pred, proba, y), size=40)
    m = result.metrics
    assert result.positive_label is None
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):
        assert m[name] == pytest.approx(fn(y, pred, average="macro", zero_division=0),
                                        abs=EXACT), name
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=EXACT)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=model.classes_),
                                          abs=EXACT)
    exact = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert abs(m["roc_auc"] - exact) <= result.error_bounds["roc_auc"] + EXACT
    assert "brier" not in m and result.positive_rate is None


def test_labels_match_classes_by_value_or_text() -> None:
    """Feedback labels arrive as JSON: "1", 1.0 and 1 are all the class 1."""
    pred = [1, 0, 1, 1, 0, 0]
    label = ["1", 0.0, 1.0, "0", 0, 1]
    result = PerformanceAccumulator("classification", [0, 1]).add(
        _frame(pred, label=label)).result()
    assert result.labelled_rows == 6 and result.classes == [0, 1]
    ints = [int(v) for v in [1, 0, 1, 0, 0, 1]]
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(ints, pred))
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(ints, pred))


def test_unknown_labels_and_missing_labels() -> None:
    frame = _frame(["a", "b", "a", "b"], label=["a", "c", None, np.nan])
    result = PerformanceAccumulator("classification", ["a", "b"]).add(frame).result()
    assert result.rows == 4 and result.labelled_rows == 2
    assert result.classes == ["a", "b", "c"]
    assert result.confusion_matrix == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]
    assert result.metrics["accuracy"] == 0.5
    assert any("not one of the model's classes" in n for n in result.notes)


def test_regression_metrics_match_scikit_learn() -> None:
    x, y = load_diabetes(return_X_y=True)
    y = y + 10_000.0  # far from zero: the sums about a pivot keep R² exact
    pred = LinearRegression().fit(x[::2], y[::2]).predict(x)
    label = pd.Series(y, dtype=object)
    label[::7] = None  # no feedback yet for these
    result = _feed(PerformanceAccumulator("regression"), _frame(pred, label=label), size=50)
    keep = label.notna().to_numpy()
    yt, yp = y[keep], pred[keep]
    m = result.metrics
    assert result.labelled_rows == keep.sum() and result.rows == len(y)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(yt, yp), abs=EXACT)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yt, yp)), abs=EXACT)
    assert m["r2"] == pytest.approx(skm.r2_score(yt, yp), abs=EXACT)
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(yt, yp), abs=EXACT)
    assert result.estimated == {} and result.confusion_matrix is None


def test_regression_leaves_out_labels_that_are_not_numbers() -> None:
    frame = _frame([1.0, 2.0, 3.0, 4.0], label=[1.5, "oops", [1], 3.0])
    result = PerformanceAccumulator("regression").add(frame).result()
    assert result.labelled_rows == 2
    assert result.metrics["mae"] == pytest.approx(0.75)
    assert any("2 labelled rows were left out" in n for n in result.notes)
    constant = PerformanceAccumulator("regression").add(
        _frame([0.1, 0.1, 0.1], label=[0.1, 0.1, 0.1])).result()
    assert constant.metrics["r2"] == skm.r2_score([0.1] * 3, [0.1] * 3) == 1.0


# -- additivity -----------------------------------------------------------------------------


def test_two_chunks_equal_one_frame(binary: dict[str, Any]) -> None:
    label = pd.Series(binary["y"], dtype=object)
    label[::3] = None
    proba: list[list[float] | None] = [list(p) for p in binary["proba"]]
    for i in range(0, len(proba), 5):
        proba[i] = None  # logged before probabilities were: no estimate for these rows
    frame = _frame(binary["pred"], label=label)
    frame["proba"] = pd.Series(proba, dtype=object)
    one = PerformanceAccumulator("classification", binary["classes"]).add(frame).result()
    chunked = PerformanceAccumulator("classification", binary["classes"])
    chunked.add(frame.iloc[:200]).add(frame.iloc[200:])
    _same(chunked.result(), one)
    left = PerformanceAccumulator("classification", binary["classes"]).add(frame.iloc[:321])
    right = PerformanceAccumulator("classification", binary["classes"]).add(frame.iloc[321:])
    _same(left.merge(right).result(), one)
    assert one.estimated_rows == len(frame) - len(range(0, len(proba), 5))
    assert any("estimate covers" in n for n in one.notes)

    _, y = load_diabetes(return_X_y=True)
    reg = _frame(y * 0.9 + 3, label=y)
    whole = PerformanceAccumulator("regression").add(reg).result()
    parts = PerformanceAccumulator("regression").add(reg.iloc[:100])
    merged = parts.merge(PerformanceAccumulator("regression").add(reg.iloc[100:])).result()
    for name in ("mae", "rmse", "r2", "mape"):
        assert merged.metrics[name] == pytest.approx(whole.metrics[name], abs=EXACT)


# -- confidence-based estimation ------------------------------------------------------------


def test_cbpe_estimates_the_accuracy_of_a_calibrated_model() -> None:
    """Labels drawn from the probabilities: the estimate is within 4 standard errors."""
    rng = np.random.default_rng(7)
    n = 200_000
    p1 = rng.beta(0.7, 0.9, n)
    y = (rng.random(n) < p1).astype(int)
    pred = (p1 > 0.5).astype(int)
    proba = np.c_[1 - p1, p1]
    unlabelled = _feed(PerformanceAccumulator("classification", [0, 1]),
                       _frame(pred, proba), size=65_536)
    assert unlabelled.metrics == {} and unlabelled.labelled_rows == 0
    assert "no labels yet: only the estimate" in unlabelled.notes
    assert unlabelled.estimate_method is not None and "calibrated" in unlabelled.estimate_method
    est = unlabelled.estimated
    correct = np.maximum(p1, 1 - p1)  # P(the prediction is right)
    se = np.sqrt((correct * (1 - correct)).sum()) / n
    assert est["accuracy"] == pytest.approx(correct.mean(), abs=EXACT)
    assert abs(est["accuracy"] - skm.accuracy_score(y, pred)) < 4 * se
    assert abs(est["precision"] - skm.precision_score(y, pred)) < 0.01
    assert abs(est["recall"] - skm.recall_score(y, pred)) < 0.01
    assert abs(est["f1"] - skm.f1_score(y, pred)) < 0.01
    assert abs(est["roc_auc"] - skm.roc_auc_score(y, p1)) < 0.01
    assert unlabelled.error_bounds["estimated.roc_auc"] < 0.005
    # labels change the real metrics, never the estimate
    labelled = _feed(PerformanceAccumulator("classification", [0, 1]),
                     _frame(pred, proba, y), size=65_536)
    assert labelled.estimated == est
    assert labelled.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_cbpe_is_wrong_for_an_overconfident_model_as_documented() -> None:
    """The estimate assumes calibration: with sharpened probabilities it is too optimistic."""
    rng = np.random.default_rng(8)
    n = 50_000
    p1 = rng.beta(0.7, 0.9, n)
    y = (rng.random(n) < p1).astype(int)
    sharp = np.clip((p1 - 0.5) * 3 + 0.5, 0, 1)
    result = PerformanceAccumulator("classification", [0, 1]).add(
        _frame((sharp > 0.5).astype(int), np.c_[1 - sharp, sharp], y)).result()
    assert result.estimated["accuracy"] > result.metrics["accuracy"] + 0.05


def test_no_probabilities_means_no_estimate(binary: dict[str, Any]) -> None:
    result = PerformanceAccumulator("classification", binary["classes"]).add(
        _frame(binary["pred"])).result()
    assert result.estimated == {} and result.metrics == {}
    assert "probabilities not logged: no estimate" in result.notes
    assert "no labels yet: no metrics" in result.notes
    assert PerformanceAccumulator("classification").result().notes == [
        "no rows in this window"]


# -- baseline and drop ----------------------------------------------------------------------


def test_drop_is_the_worsening_for_scores_and_errors(binary: dict[str, Any]) -> None:
    base = {"accuracy": 0.99, "f1": 0.5, "log_loss": 0.01, "roc_auc": 1.0, "other": 3.0}
    result = PerformanceAccumulator("classification", binary["classes"], baseline=base).add(
        _frame(binary["pred"], binary["proba"], binary["y"])).result()
    m = result.metrics
    assert result.drop["accuracy"] == pytest.approx(0.99 - m["accuracy"])
    assert result.drop["f1"] == pytest.approx(0.5 - m["f1"]) and result.drop["f1"] < 0
    assert result.drop["log_loss"] == pytest.approx(m["log_loss"] - 0.01)
    assert set(result.drop) == {"accuracy", "f1", "log_loss", "roc_auc"}
    assert set(result.estimated_drop) == {"accuracy", "f1", "roc_auc"}
    flat = result.flat()
    assert flat["performance.accuracy.drop"] == result.drop["accuracy"]
    assert flat["performance.estimated.f1"] == result.estimated["f1"]
    assert flat["performance.labelled_rows"] == len(binary["y"])
    reg = PerformanceAccumulator("regression", baseline={"mae": 1.0, "r2": 0.9}).add(
        _frame([1.0, 2.0], label=[2.0, 4.0])).result()
    assert reg.drop == {"mae": pytest.approx(0.5), "r2": pytest.approx(0.9 - reg.metrics["r2"])}


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("build", "field"), [
    (lambda: PerformanceAccumulator("ranking"), "task"),  # type: ignore[arg-type]
    (lambda: PerformanceAccumulator("regression", ["a", "b"]), "classes"),
    (lambda: PerformanceAccumulator("classification", ["a", "a"]), "classes"),
    (lambda: PerformanceAccumulator("classification", []), "classes"),
    (lambda: PerformanceAccumulator("classification", [0, 1], positive_label=2),
     "positive_label"),
    (lambda: PerformanceAccumulator("classification", [0, 1]).add(
        _frame([0, 1], [[0.4, 0.6], [0.1, 0.2, 0.7]])), "proba"),
    (lambda: PerformanceAccumulator("classification", [0, 1]).add(
        _frame([0], [[1.5, -0.5]])), "proba"),
    (lambda: PerformanceAccumulator("classification", [0, 1]).add(
        _frame([0], [["x", "y"]])), "proba"),
    (lambda: PerformanceAccumulator("classification").add(_frame([0], [[0.5, 0.5]])),
     "classes"),
    (lambda: PerformanceAccumulator("classification").add(pd.DataFrame({"y": [1]})),
     "prediction"),
])
def test_bad_input_names_the_field(build: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        build()
    assert err.value.field == field


def test_a_bad_chunk_changes_nothing() -> None:
    acc = PerformanceAccumulator("classification", [0, 1]).add(
        _frame([1], [[0.2, 0.8]], [1]))
    before = acc.result()
    with pytest.raises(InvalidInput, match="3 values in row 1"):
        acc.add(_frame([0, 1], [[0.4, 0.6], [0.1, 0.2, 0.7]], [0, 1]))
    assert acc.result() == before


# -- the baseline from a stored validation report --------------------------------------------


@pytest.fixture
def perf_ws(db_location: tuple[str, str], tmp_path: Path) -> Iterator[mw.Workspace]:
    location, artifacts = db_location
    settings = Settings(prediction_log_dir=str(tmp_path / "journal"),
                        prediction_log_fsync_seconds=0)
    ws = mw.Workspace(location, artifacts=artifacts, user="alice", settings=settings)
    x, y = _cancer()
    ws.register_model("bc", model=LogisticRegression(max_iter=5000).fit(x, y),
                      input_example=x.head())
    try:
        yield ws
    finally:
        ws.close()


def test_baseline_is_the_latest_validation_report(perf_ws: mw.Workspace) -> None:
    assert performance_baseline(perf_ws.ctx, "bc", 1) == {}
    x, y = _cancer()
    data = x.assign(target=y)
    perf_ws.validate("models:/bc/1", data=data.iloc[:300], label="target", n_bootstrap=0,
                     explain_sample=0)
    latest = perf_ws.validate("models:/bc/1", data=data.iloc[300:], label="target",
                              n_bootstrap=0, explain_sample=0)
    baseline = performance_baseline(perf_ws.ctx, "bc", 1)
    assert baseline == {k: v.value for k, v in latest.metrics.items()}
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
            "brier"} <= set(baseline)
    acc = accumulator_for(perf_ws.ctx, load(perf_ws.ctx, "models:/bc/1"))
    assert acc.task == "classification" and acc.classes == [0, 1] and acc.baseline == baseline
    with pytest.raises(NotFound):
        performance_baseline(perf_ws.ctx, "bc", 9)


# -- the server logs probabilities without being asked --------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("log_probabilities", [True, False])
def test_server_logs_probabilities_the_client_did_not_ask_for(
        perf_ws: mw.Workspace, tmp_path: Path, log_probabilities: bool) -> None:
    x, y = _cancer()
    journal = tmp_path / "journal"
    perf_ws.settings.serve_log_probabilities = log_probabilities
    srv = serve(create_app(perf_ws, models=["bc/1"], journal_dir=journal))
    rows = x.iloc[:40].to_dict(orient="records")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            plain = client.post("/v1/models/bc/predict", json={"instances": rows[:30]}).json()
            asked = client.post("/v1/models/bc/predict",
                                json={"instances": rows[30:], "probabilities": True}).json()
            assert "probabilities" not in plain and "classes" not in plain
            assert len(asked["probabilities"]) == 10
            ids = [f"{plain['request_id']}:{i}" for i in range(30)]
            got = client.post("/v1/feedback", json={"feedback": [
                {"prediction_id": pid, "label": int(y.iloc[i])}
                for i, pid in enumerate(ids)]})
            assert got.json() == {"recorded": 30}
    finally:
        srv.stop()
    log = read_predictions(perf_ws.ctx, model="bc", journal_dir=journal, with_feedback=True)
    assert len(log) == 40
    model = load(perf_ws.ctx, "models:/bc/1").model
    plain_rows = log[log["request_id"] == plain["request_id"]].sort_values("row")
    if log_probabilities:
        expected = model.predict_proba(x.iloc[:30])
        assert np.allclose(np.array(list(plain_rows["proba"])), expected, atol=1e-12)
    else:
        assert plain_rows["proba"].isna().all()
    asked_rows = log[log["request_id"] == asked["request_id"]].sort_values("row")
    assert np.allclose(np.array(list(asked_rows["proba"])), asked["probabilities"])
    # the log feeds the accumulator as it is
    acc = accumulator_for(perf_ws.ctx, load(perf_ws.ctx, "models:/bc/1"))
    result = acc.add(log.rename(columns={"output": "prediction"})).result()
    assert result.labelled_rows == 30
    assert result.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(y.iloc[:30], plain["predictions"]), abs=EXACT)
    assert result.estimated_rows == (40 if log_probabilities else 10)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_forest_answers_as_its_predict_and_logs_its_probabilities(
        perf_ws: mw.Workspace, tmp_path: Path) -> None:
    """A forest's predictions come from the one probability pass: they must be predict's."""
    from sklearn.ensemble import RandomForestClassifier

    x, y = _cancer()
    forest = RandomForestClassifier(n_estimators=15, max_depth=3, random_state=0).fit(
        x.iloc[::3], y.iloc[::3])
    perf_ws.register_model("forest", model=forest, input_example=x.head())
    journal = tmp_path / "journal"
    srv = serve(create_app(perf_ws, models=["forest/1"], journal_dir=journal))
    rows = x.to_dict(orient="records")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            batch = client.post("/v1/models/forest/predict", json={"instances": rows}).json()
            one = [client.post("/v1/models/forest/predict",
                               json={"instances": [row]}).json()["predictions"][0]
                   for row in rows[:25]]
    finally:
        srv.stop()
    expected = forest.predict(x)
    assert batch["predictions"] == expected.tolist() and one == expected[:25].tolist()
    log = read_predictions(perf_ws.ctx, model="forest", journal_dir=journal)
    first = log[log["request_id"] == batch["request_id"]].sort_values("row")
    assert np.allclose(np.array(list(first["proba"])), forest.predict_proba(x), atol=1e-12)
