"""AutoML's trials on the Ray executor: every trial a tracked run, the study in the
workspace's database, the winner registered (real local Ray, real SQLite workspace)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer

import modelworks as mw

optuna = pytest.importorskip("optuna")


def test_automl_trials_run_on_ray(ray_instance: str, tmp_path: Path) -> None:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    data = x.iloc[:, :8].assign(malignant=y)
    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        res = ws.automl(data, label="malignant", families=["linear"], executor="ray",
                        workers=2, time_budget_s=40, max_trials=8, cv=3,
                        register_as="cancer-ray")
        assert res.executor == "ray" and res.workers == 2
        study = optuna.load_study(study_name=res.study_name, storage=ws.location.db_url)
        children = ws.search_runs("automl", parent=res.parent_run_id)
        assert len(children) == len(study.trials) == len(res.leaderboard) >= 8
        assert {r.id for r in children} == set(res.leaderboard["run_id"])
        assert res.best_score > 0.9
        assert res.model_version is not None
        loaded = ws.load_model(res.model_version.uri)
        assert len(loaded.predict(x.iloc[:5, :8])) == 5
