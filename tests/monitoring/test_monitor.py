"""Monitor runs over given data and over the prediction log, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelworks as mw
from modelworks.config import Settings
from modelworks.monitoring.references import get_reference
from modelworks.serving.prediction_log import PredictionLog


def _frame(n: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.normal(100 + shift, 20, n),
                       "prior": rng.integers(0, 5, n).astype(float),
                       "age": rng.normal(45, 10, n)})
    df["y"] = ((df["amount"] + 10 * df["prior"] + rng.normal(0, 10, n)) > 120).astype(int)
    return df


@pytest.fixture
def mon_ws(db_location: tuple[str, str], tmp_path: Path):
    location, artifacts = db_location
    ws = mw.Workspace(location, artifacts=artifacts, user="alice",
                      settings=Settings(prediction_log_dir=str(tmp_path / "journal")))
    train = _frame(3_000)
    x = train[["amount", "prior", "age"]]
    with ws.start_run(experiment="monitoring") as run:
        run.use_dataset(ws.log_dataset(train, name="train"), role="train")
        ws.register_model("claims", model=LogisticRegression(max_iter=2000).fit(x, train["y"]),
                          run=run, input_example=x.head())
    yield ws
    ws.close()


def test_training_reference_is_stored_at_registration(mon_ws: mw.Workspace) -> None:
    record, profile = get_reference(mon_ws.ctx, "models:/claims/1", "training")
    assert record.rows == 3_000 and record.source == "training"
    assert {c.name for c in profile.columns} == {"amount", "prior", "age", "prediction"}
    assert mon_ws.audit_log(action="model_version.reference_stored", limit=None)


def test_drift_on_given_data(mon_ws: mw.Workspace) -> None:
    monitor = mon_ws.monitor("models:/claims/1")
    calm = monitor.run(data=_frame(2_000, seed=1))
    assert not calm.drift.dataset_drift and calm.drifted_columns == []
    shifted = monitor.run(data=_frame(2_000, shift=40, seed=2))
    assert "amount" in shifted.drifted_columns and "age" not in shifted.drifted_columns
    assert shifted.source == "data" and shifted.rows == 2_000
    runs = mon_ws.monitor_runs("claims/1")
    assert [r.id for r in runs] == [shifted.id, calm.id]
    assert [e.payload["run"] for e in mon_ws.audit_log(action="model_version.monitored",
                                                       limit=None)] == [shifted.id, calm.id]
    partial = monitor.run(data=_frame(500, seed=3).drop(columns=["age"]))
    # reported, not a crash (without every input there is no prediction to compare either)
    assert partial.drift.missing_columns == ["age", "prediction"]


def test_drift_over_the_prediction_log_window(mon_ws: mw.Workspace) -> None:
    journal = mon_ws.prediction_journal_dir
    log = PredictionLog(mon_ws.ctx, journal, background=False)
    now = time.time()
    rows = []
    current = _frame(800, shift=40, seed=4)
    for i, rec in enumerate(current[["amount", "prior", "age"]].to_dict(orient="records")):
        rid = f"{int((now - 60) * 1000):012x}{os.urandom(7).hex()}"
        rows.append({"prediction_id": f"{rid}:0", "request_id": rid, "row": 0, "ts": now - 60,
                     "endpoint": None, "model": "claims", "version": 1, "inputs": rec,
                     "output": int(i % 3 == 0), "proba": None, "latency_ms": 1.0,
                     "shadow": False})
    log.append_rows(rows)
    log.close()
    result = mon_ws.monitor("claims/1").run(window="1h")
    assert result.source == "prediction-log" and result.rows == 800
    assert "amount" in result.drifted_columns
    assert result.window_start is not None and result.window_end is not None
    with pytest.raises(mw.InvalidInput, match="no predictions") as info:
        mon_ws.monitor("claims/1").run(window="1m")  # nothing in the last minute
    assert info.value.field == "window"


def test_validation_reference_and_bad_input(mon_ws: mw.Workspace) -> None:
    holdout = _frame(1_000, seed=9)
    mon_ws.validate("claims/1", data=holdout, label="y", n_bootstrap=20, explain_sample=100)
    record, _ = get_reference(mon_ws.ctx, "claims/1", "validation")
    assert record.rows == 1_000
    assert mon_ws.monitor("claims/1", reference="validation").run(
        data=_frame(500, seed=5)).reference == "validation"
    with pytest.raises(mw.NotFound, match="no 'nope' reference profile"):
        mon_ws.monitor("claims/1", reference="nope").run(data=holdout)
    with pytest.raises(mw.InvalidInput, match="window"):
        mon_ws.monitor("claims/1").run(window="yesterday")
    with pytest.raises(mw.InvalidInput, match="no rows"):
        mon_ws.monitor("claims/1").run(data=holdout.iloc[:0])
    with pytest.raises(mw.NotFound):
        mon_ws.monitor("claims@production")


def test_monitor_cli(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from modelworks.cli.main import app

    folder = tmp_path / "ws"
    train = _frame(2_000)
    x = train[["amount", "prior", "age"]]
    with mw.Workspace(folder, user="alice") as ws, ws.start_run(experiment="m") as run:
        run.use_dataset(ws.log_dataset(train, name="train"), role="train")
        ws.register_model("claims", model=LogisticRegression(max_iter=2000).fit(
            x, train["y"]), run=run, input_example=x.head())
    shifted = tmp_path / "shifted.parquet"
    _frame(1_000, shift=40, seed=7).to_parquet(shifted)
    runner = CliRunner()
    base = ["-w", str(folder), "--user", "alice", "monitor"]
    out = runner.invoke(app, [*base, "run", "claims/1", "--data", str(shifted), "--json"])
    assert out.exit_code == 0, out.stderr
    assert "amount" in [c["column"] for c in json.loads(out.stdout)["drift"]["columns"]
                        if c["drifted"]]
    listed = runner.invoke(app, [*base, "runs", "claims/1"])
    assert listed.exit_code == 0 and "amount" in listed.stdout
    empty = runner.invoke(app, [*base, "run", "claims/1", "--window", "1h"])
    assert empty.exit_code == 1 and "no predictions" in empty.stderr
    missing = runner.invoke(app, [*base, "run", "claims/1", "--data", str(tmp_path / "x.csv")])
    assert missing.exit_code == 1 and "--data" in missing.stderr
