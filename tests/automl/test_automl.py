"""AutoML end to end on real data sets, real workspaces (SQLite file and PostgreSQL) and real
executors: tiny budgets, so a search takes seconds; ``max_trials`` keeps the counts steady."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

import modelworks as mw
from modelworks.automl import (
    LEADERBOARD_COLUMNS,
    available_families,
    default_metric,
    infer_task,
)
from modelworks.automl.leaderboard import select
from modelworks.errors import InvalidInput

optuna = pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x.assign(malignant=y)


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return x.assign(progression=y)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[mw.Workspace]:
    with mw.Workspace(tmp_path / "ws", user="alice") as workspace:
        yield workspace


def _children(ws: mw.Workspace, parent: str) -> list[mw.RunRecord]:
    return ws.search_runs("automl", parent=parent)


def test_classification_search_tracks_registers_and_stores_its_study(
        workspace: mw.Workspace, cancer: pd.DataFrame) -> None:
    res = workspace.automl(cancer, label="malignant", time_budget_s=60, max_trials=6,
                           families=["linear", "hist_gradient_boosting", "lightgbm"], cv=3)

    board = res.leaderboard
    assert list(board.columns) == LEADERBOARD_COLUMNS
    assert res.metric == "roc_auc" and res.task == "binary"  # defaults for a binary label
    complete = board[board["state"] == "COMPLETE"]
    assert list(complete["rank"]) == list(range(1, len(complete) + 1))
    assert complete["score"].is_monotonic_decreasing
    chosen = complete[complete["trial"] == res.best_trial].iloc[0]
    assert res.best_score == pytest.approx(chosen["score"])
    assert (res.best_family, res.best_params) == (chosen["family"], chosen["params"])
    if res.selection == "best cross-validated score":
        assert chosen["rank"] == 1
    else:  # the one-standard-error rule picked a linear model close to the best
        assert chosen["family"] == "linear" and res.selection.startswith("one-standard-error")
    # the three defaults were tried first, one per family
    first = board.sort_values("trial").head(3)
    assert set(first["family"]) == {"linear", "hist_gradient_boosting", "lightgbm"}

    # every trial is a finished child run with its parameters and per-fold scores
    runs = {r.id: r for r in _children(workspace, res.parent_run_id)}
    assert set(runs) == set(board["run_id"])
    for row in board.itertuples():
        run = runs[row.run_id]
        assert run.status == ("FAILED" if row.state == "FAIL" else "FINISHED")
        assert run.params["family"] == row.family
        assert run.tags["automl.state"] == row.state
        assert run.tags["automl.study"] == res.study_name
        history = workspace.metric_history(run.id, "cv_roc_auc")
        assert [p.step for p in history] == list(range(row.folds))

    # the refitted winner is registered, with the frame's signature, and loads back
    version = res.model_version
    assert version is not None and version.name == "malignant-automl"
    assert version.run_id == res.parent_run_id
    loaded = workspace.load_model(version.uri)
    assert loaded.signature is not None
    assert [c.name for c in loaded.signature.inputs] == list(cancer.columns[:-1])
    x = cancer.drop(columns=["malignant"]).head(20)
    assert np.array_equal(loaded.predict(x), res.best_model.predict(x))
    assert workspace.get_run(res.parent_run_id).metrics["best_roc_auc"] == pytest.approx(
        res.best_score)

    # the study lives in the workspace's own database, beside the mw_ tables
    study = optuna.load_study(study_name=res.study_name, storage=workspace.location.db_url)
    assert len(study.trials) == len(board)
    assert study.best_trial.number == res.best_trial
    assert study.user_attrs["parent_run_id"] == res.parent_run_id


def test_regression_search_infers_the_task_and_may_skip_registration(
        ws: mw.Workspace, diabetes: pd.DataFrame) -> None:
    res = ws.automl(diabetes, label="progression", time_budget_s=3, register=False, cv=3)

    assert res.task == "regression" and res.metric == "r2" and res.direction == "maximize"
    assert res.model_version is None and ws.list_models() == []
    assert len(res.leaderboard) == len(_children(ws, res.parent_run_id))
    predictions = res.best_model.predict(diabetes.drop(columns=["progression"]).head(5))
    assert predictions.shape == (5,) and np.isfinite(predictions).all()
    assert -1 < res.best_score < 1


def test_a_minimised_metric_ranks_lowest_first(ws: mw.Workspace, diabetes: pd.DataFrame
                                              ) -> None:
    res = ws.automl(diabetes, label="progression", metric="rmse", time_budget_s=30,
                    families=["linear"], register_as="diabetes-rmse", max_trials=8, cv=3)

    complete = res.leaderboard[res.leaderboard["state"] == "COMPLETE"]
    assert res.direction == "minimize" and complete["score"].is_monotonic_increasing
    assert res.model_version is not None and res.model_version.name == "diabetes-rmse"


def test_trials_that_fall_behind_the_median_are_pruned(ws: mw.Workspace,
                                                       cancer: pd.DataFrame) -> None:
    # One cheap family, many trials: after five finished trials, any trial whose running CV
    # mean falls below the median at the same fold is stopped (MedianPruner).
    res = ws.automl(cancer, label="malignant", families=["linear"], time_budget_s=60,
                    max_trials=30, cv=5, register=False)

    board = res.leaderboard
    pruned = board[board["state"] == "PRUNED"]
    assert len(board) >= 30 and not pruned.empty
    assert (pruned["folds"] < 5).all() and pruned["rank"].isna().all()
    run = ws.get_run(pruned["run_id"].iloc[0])
    assert run.status == "FINISHED" and run.tags["automl.state"] == "PRUNED"


def test_processes_executor_loses_no_trial_runs(workspace: mw.Workspace,
                                                cancer: pd.DataFrame) -> None:
    # two spawned workers write their trials' runs and the study concurrently
    ws = workspace
    res = ws.automl(cancer, label="malignant", families=["linear"], executor="processes",
                    workers=2, time_budget_s=30, max_trials=16, cv=3, register=False)

    study = optuna.load_study(study_name=res.study_name, storage=ws.location.db_url)
    runs = _children(ws, res.parent_run_id)
    assert res.executor == "processes" and res.workers == 2
    assert len(runs) == len(study.trials) == len(res.leaderboard) >= 16
    assert {r.status for r in runs} <= {"FINISHED", "FAILED"}
    assert {r.id for r in runs} == set(res.leaderboard["run_id"])
    assert {r.tags["automl.worker"] for r in runs} <= {"0", "1"}


def _board(rows: list[tuple[int, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"trial": t, "family": f, "score": sc, "score_std": sd, "folds": 5,
                          "state": "COMPLETE"} for t, f, sc, sd in rows])


def test_a_linear_model_within_one_standard_error_of_the_best_is_preferred() -> None:
    # best: 0.990 with fold std 0.010 -> standard error 0.010 / sqrt(4) = 0.005
    close = _board([(3, "lightgbm", 0.990, 0.010), (0, "linear", 0.986, 0.004)])
    trial, why = select(close, "maximize")
    assert trial == 0 and why.startswith("one-standard-error rule")
    assert select(close, "maximize", prefer_simple=False)[0] == 3
    far = _board([(3, "lightgbm", 0.990, 0.010), (0, "linear", 0.980, 0.004)])
    assert select(far, "maximize") == (3, "best cross-validated score")
    rmse = _board([(2, "random_forest", 50.0, 4.0), (1, "linear", 51.5, 3.0)])
    assert select(rmse, "minimize")[0] == 1


def test_multiclass_defaults_to_accuracy_and_balanced_accuracy_when_imbalanced() -> None:
    _, y = load_wine(return_X_y=True, as_frame=True)
    assert infer_task(y, None) == "multiclass"
    assert default_metric("multiclass", y) == "accuracy"
    skewed = pd.Series([0] * 90 + [1] * 8 + [2] * 8)
    assert default_metric("multiclass", skewed) == "balanced_accuracy"
    assert default_metric("binary", pd.Series([0] * 95 + [1] * 5)) == "roc_auc"
    assert infer_task(pd.Series([0.5, 1.5, 2.25] * 10), None) == "regression"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"label": "nope"}, "label"),
    ({"label": "constant"}, "label"),
    ({"label": "malignant", "metric": "auc"}, "metric"),
    ({"label": "malignant", "metric": "r2"}, "metric"),
    ({"label": "malignant", "task": "ranking"}, "task"),
    ({"label": "malignant", "families": ["svm"]}, "families"),
    ({"label": "malignant", "time_budget_s": 0}, "time_budget_s"),
    ({"label": "malignant", "time_budget_s": -5}, "time_budget_s"),
    ({"label": "malignant", "time_budget_s": float("inf")}, "time_budget_s"),
    ({"label": "malignant", "cv": 1}, "cv"),
    ({"label": "malignant", "register_as": "no spaces allowed"}, "name"),
    ({"label": "malignant", "executor": "cluster"}, "executor"),
])
def test_bad_input_is_refused_naming_the_field(ws: mw.Workspace, cancer: pd.DataFrame,
                                                kwargs: dict[str, object], field: str) -> None:
    frame = cancer.assign(constant=1)
    with pytest.raises(InvalidInput) as info:
        ws.automl(frame, time_budget_s=kwargs.pop("time_budget_s", 3), **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    # refused before anything was recorded
    assert "automl" not in [e.name for e in ws.list_experiments()]


def test_a_class_too_rare_for_the_folds_is_refused(ws: mw.Workspace, cancer: pd.DataFrame
                                                   ) -> None:
    frame = cancer.head(60).assign(malignant=[0] * 57 + [1] * 3)
    with pytest.raises(InvalidInput, match="at least cv=5") as info:
        ws.automl(frame, label="malignant", time_budget_s=3)
    assert info.value.field == "cv"


def test_every_family_handles_text_categories_and_missing_values(ws: mw.Workspace) -> None:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "amount": rng.lognormal(6, 0.5, n), "prior_claims": rng.poisson(1, n).astype(float),
        "region": rng.choice(["north", "south", "east", None], n),
        "channel": pd.Categorical(rng.choice(["web", "phone"], n)),
        "flagged": rng.random(n) < 0.2})
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    frame["needs_review"] = np.where(
        (frame["prior_claims"] + (frame["region"] == "north") + rng.normal(0, 0.5, n)) > 1.5,
        "yes", "no")
    families = available_families("binary", frame["needs_review"])

    # max_trials = one per family: exactly the enqueued defaults
    res = ws.automl(frame, label="needs_review", families=families, time_budget_s=60,
                    max_trials=len(families), cv=3, register_as="claims")

    board = res.leaderboard
    assert sorted(board["family"]) == sorted(families) and "xgboost" not in families
    assert (board["state"] != "FAIL").all(), board[["family", "state"]]
    loaded = ws.load_model("models:/claims/1")
    rows = frame.drop(columns=["needs_review"]).head(10).copy()
    rows.loc[0, "prior_claims"] = np.nan  # complete in training, yet accepted: all nullable
    assert set(loaded.predict(rows)) <= {"yes", "no"}
