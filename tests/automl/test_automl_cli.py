"""``modelworks automl`` driven for real: a CSV file and a logged dataset, table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_wine
from typer.testing import CliRunner

import modelworks as mw
from modelworks.cli.main import app

pytest.importorskip("optuna")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELWORKS_WORKSPACE", "MODELWORKS_ARTIFACTS", "MODELWORKS_USER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    x, y = load_wine(return_X_y=True, as_frame=True)
    path = tmp_path / "wine.csv"
    x.assign(cultivar=y).to_csv(path, index=False)
    return path


def test_automl_json_reports_the_leaderboard_and_the_registered_model(
        tmp_path: Path, wine_csv: Path) -> None:
    ws_dir = tmp_path / "ws"
    result = runner.invoke(app, [
        "--workspace", str(ws_dir), "--user", "alice", "automl", str(wine_csv),
        "--label", "cultivar", "--time-budget", "30", "--max-trials", "4", "--cv", "3",
        "--families", "linear,random_forest", "--register-as", "wine", "--json"])

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["metric"] == "accuracy" and body["task"] == "multiclass"
    assert body["model"] == "models:/wine/1"
    assert body["best_family"] in ("linear", "random_forest")
    rows = body["leaderboard"]
    assert len(rows) >= 4 and rows[0]["rank"] == 1
    assert set(rows[0]) >= {"trial", "family", "score", "state", "params", "run_id"}
    with mw.Workspace(ws_dir) as ws:
        assert ws.get_model_version("wine", 1).run_id == body["parent_run_id"]


def test_automl_table_reads_a_logged_dataset(tmp_path: Path, wine_csv: Path) -> None:
    ws_dir = tmp_path / "ws"
    with mw.Workspace(ws_dir, user="alice") as ws:
        ws.log_dataset(pd.read_csv(wine_csv), name="wine")
    result = runner.invoke(app, [
        "--workspace", str(ws_dir), "automl", "dataset:wine:1", "--label", "cultivar",
        "--time-budget", "30", "--max-trials", "3", "--cv", "3", "--families", "linear",
        "--no-register"])

    assert result.exit_code == 0, result.output
    assert "leaderboard" in result.stdout and "not registered" in result.stdout
    assert "linear" in result.stdout and "COMPLETE" in result.stdout


def test_automl_bad_label_is_one_error_line(tmp_path: Path, wine_csv: Path) -> None:
    result = runner.invoke(app, ["--workspace", str(tmp_path / "ws"), "automl", str(wine_csv),
                                 "--label", "missing", "--time-budget", "3"])

    assert result.exit_code == 1
    assert "label column 'missing' is not in the data" in result.stderr
