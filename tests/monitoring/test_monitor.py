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
from modelworks.monitoring.monitor import MonitorResult
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


# --- quality, performance, segments, streaming (issue 6) ---------------------------------------


def _log(ws: mw.Workspace, frame: pd.DataFrame, *, ts: float, compacted: int = 0,
         model: str = "claims", version: int = 1) -> list[str]:
    """Journal ``frame``'s rows as the server would (its predictions and probabilities),
    one millisecond apart from ``ts``; the first ``compacted`` rows are compacted to
    Parquet, the rest stay in the journal. Returns the prediction ids."""
    loaded = ws.load_model(f"{model}/{version}")
    inputs = frame[[c["name"] for c in loaded.version.signature["inputs"]]]
    predicted, proba = loaded.predict(inputs), loaded.predict_proba(inputs)
    log = PredictionLog(ws.ctx, ws.prediction_journal_dir, background=False)
    rows = []
    for i, rec in enumerate(frame.to_dict(orient="records")):
        at = ts + i / 1000
        rid = f"{int(at * 1000):012x}{os.urandom(7).hex()}"
        rows.append({"prediction_id": f"{rid}:0", "request_id": rid, "row": 0, "ts": at,
                     "endpoint": None, "model": model, "version": version, "inputs": rec,
                     "output": int(predicted[i]), "proba": proba[i].tolist(),
                     "latency_ms": 1.0, "shadow": False})
    if compacted:
        log.append_rows(rows[:compacted])
        log.compact(rollover=True)
    log.append_rows(rows[compacted:])
    log.flush()
    log.compact()  # closed segments only: the open one stays in the journal
    return [r["prediction_id"] for r in rows]


def _same_drift(a: MonitorResult, b: MonitorResult) -> None:
    assert len(a.drift.columns) == len(b.drift.columns)
    for x, y in zip(a.drift.columns, b.drift.columns, strict=True):
        left, right = x.model_dump(), y.model_dump()
        for key, value in left.items():
            if isinstance(value, float):
                assert right[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (x.column, key)
            else:
                assert right[key] == value, (x.column, key)
    assert (a.drift.share, a.drift.dataset_drift) == (b.drift.share, b.drift.dataset_drift)
    assert a.psi == pytest.approx(b.psi, rel=1e-9)


def test_streaming_gives_the_in_memory_result(mon_ws: mw.Workspace) -> None:
    current = _frame(1_500, shift=25, seed=11)
    _log(mon_ws, current, ts=time.time() - 600, compacted=1_000)
    many = mon_ws.monitor("claims/1", chunk_rows=128).run(window="1h")
    one = mon_ws.monitor("claims/1", chunk_rows=1_000_000).run(window="1h")
    given = mon_ws.monitor("claims/1").run(data=current)
    assert many.rows == one.rows == given.rows == 1_500
    assert "amount" in many.drifted_columns
    for other in (one, given):
        _same_drift(many, other)
        assert other.quality == many.quality
    assert many.quality is not None
    assert many.quality.check("amount", "out_of_range").count > 0
    assert many.performance is not None and given.performance is not None
    assert many.performance.estimated == pytest.approx(given.performance.estimated)
    assert many.performance.labelled_rows == 0  # no feedback yet: the estimate only


def test_feedback_labels_give_real_performance(mon_ws: mw.Workspace) -> None:
    from modelworks.serving.feedback import record_feedback

    holdout = _frame(1_000, seed=12)
    mon_ws.validate("claims/1", data=holdout, label="y", n_bootstrap=20, explain_sample=50)
    current = _frame(600, seed=13)
    ids = _log(mon_ws, current, ts=time.time() - 300)
    record_feedback(mon_ws.ctx, [{"prediction_id": pid, "label": int(y)}
                                 for pid, y in zip(ids[:400], current["y"], strict=False)])
    result = mon_ws.monitor("claims/1", chunk_rows=100).run(window="1h")
    perf = result.performance
    assert perf is not None and perf.labelled_rows == 400 and perf.rows == 600
    loaded = mon_ws.load_model("claims/1")
    expected = float((loaded.predict(current[["amount", "prior", "age"]].iloc[:400])
                      == current["y"].iloc[:400]).mean())
    assert perf.metrics["accuracy"] == pytest.approx(expected)
    metrics = result.metrics()
    assert metrics["performance.accuracy"] == pytest.approx(expected)
    assert metrics["performance.labelled_rows"] == 400
    assert "performance.accuracy.drop" in metrics and "performance.estimated.accuracy" in metrics
    # the same labels given as a column of data
    given = mon_ws.monitor("claims/1").run(data=current.iloc[:400], label="y")
    assert given.performance is not None
    assert given.performance.metrics["accuracy"] == pytest.approx(expected)


def test_metrics_are_flat_numbers_alert_rules_name(mon_ws: mw.Workspace) -> None:
    result = mon_ws.monitor("claims/1").run(data=_frame(800, shift=40, seed=14), label="y")
    metrics = result.metrics()
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["rows"] == 800
    assert metrics["drift.share"] == result.drift.share
    assert metrics["drift.dataset_drift"] in (0.0, 1.0)
    assert metrics["drift.drifted_columns"] == result.drift.drifted_columns
    amount = result.drift.column("amount")
    assert metrics["drift.column.amount.score"] == amount.score
    assert metrics["drift.column.amount.value"] == amount.value
    assert metrics["drift.column.amount.drifted"] == 1.0
    # PSI from the bins whatever the method (Wasserstein decided this column)
    assert amount.method == "wasserstein" and metrics["drift.column.amount.psi"] > 0.2
    assert metrics["drift.column.age.psi"] < 0.1
    assert {"quality.error_rate", "quality.errors", "quality.out_of_range.count",
            "quality.column.amount.out_of_range.rate", "performance.accuracy",
            "performance.labelled_rows", "performance.estimated.accuracy"} <= set(metrics)
    assert not [k for k in metrics if k.startswith("segment.")]
    stored = mon_ws.monitor_runs("claims/1", limit=1)[0]
    assert stored.metrics() == metrics  # the stored JSON keeps everything metrics needs


def test_bad_input_is_a_clear_result(mon_ws: mw.Workspace, tmp_path: Path) -> None:
    # a feature missing from the current data: reported, not a crash
    partial = mon_ws.monitor("claims/1").run(data=_frame(300, seed=15).drop(columns=["age"]))
    assert partial.drift.column("age").status == "missing"
    assert partial.quality is not None
    violation = partial.quality.check("age", "schema_violation")
    assert violation.flagged and violation.values == {"missing_column": 300}
    assert partial.quality.error_rate == 1.0
    assert partial.performance is None  # without every input there is no prediction
    # text in a numeric column: counted, the rest of the column still compared
    typed = _frame(300, seed=16).astype({"prior": object})
    typed.loc[:9, "prior"] = "n/a"
    result = mon_ws.monitor("claims/1").run(data=typed)
    assert result.quality is not None
    assert result.quality.check("prior", "schema_violation").count == 10
    assert result.drift.column("prior").status == "scored"
    assert result.drift.column("prior").current_count == 290
    # those rows get no prediction (the server would refuse them); the others do
    assert result.quality.check("prediction", "missing_rate_jump").count == 10
    assert result.drift.column("prediction").current_count == 290
    # segments that do not exist
    with pytest.raises(mw.InvalidInput) as info:
        mon_ws.monitor("claims/1", segments=["nope"]).run(data=_frame(100, seed=17))
    assert info.value.field == "segments"
    with pytest.raises(mw.InvalidInput) as info:
        mon_ws.monitor("claims/1", segments=[3])  # type: ignore[list-item]
    assert info.value.field == "segments"
    with pytest.raises(mw.InvalidInput) as info:
        mon_ws.monitor("claims/1").run(data=_frame(100, seed=17), label="nope")
    assert info.value.field == "label"


def test_a_constant_reference_column_gives_a_clear_result(tmp_path: Path) -> None:
    with mw.Workspace(tmp_path / "ws", user="alice") as ws:
        train = _frame(2_000).assign(plan=1.0, tier="gold")
        x = train[["amount", "prior", "plan", "tier"]]
        from sklearn.compose import make_column_transformer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        model = make_pipeline(make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["tier"]), remainder="passthrough"),
            LogisticRegression(max_iter=2000)).fit(x, train["y"])
        with ws.start_run(experiment="m") as run:
            run.use_dataset(ws.log_dataset(train, name="train"), role="train")
            ws.register_model("flat", model=model, run=run, input_example=x.head())
        same = ws.monitor("flat/1").run(data=_frame(500, seed=18).assign(plan=1.0,
                                                                          tier="gold"))
        assert not same.drift.column("plan").drifted
        assert not same.drift.column("tier").drifted
        assert same.quality is not None and same.quality.error_rows == 0
        assert "reference is constant" in same.quality.check("plan", "constant_column").detail
        moved = ws.monitor("flat/1").run(data=_frame(500, seed=19).assign(plan=2.0,
                                                                           tier="silver"))
        assert moved.drift.column("plan").drifted and moved.drift.column("tier").drifted
        assert moved.quality is not None
        assert moved.quality.check("plan", "out_of_range").values == {"below": 0, "above": 500}
        assert moved.quality.check("tier", "unseen_category").values == {"silver": 500}
        assert moved.quality.error_rate == 1.0
        assert all(np.isfinite(v) for v in moved.metrics().values())


def test_monitor_run_cli_shows_quality_performance_and_segments(tmp_path: Path) -> None:
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
    current = _frame(600, shift=40, seed=21)
    current["region"] = np.where(np.arange(600) % 3 == 0, "north", "south")
    path = tmp_path / "current.csv"
    current.to_csv(path, index=False)
    runner = CliRunner()
    base = ["-w", str(folder), "--user", "alice", "monitor", "run", "claims/1", "--data",
            str(path), "--label", "y", "--segment", "region"]
    out = runner.invoke(app, [*base, "--json"])
    assert out.exit_code == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["quality"]["rows"] == 600 and body["performance"]["labelled_rows"] == 600
    assert [(s["value"], s["rows"]) for s in body["segments"]] == [("south", 400),
                                                                   ("north", 200)]
    assert body["metrics"]["segment.region=north.rows"] == 200
    assert body["metrics"]["drift.column.amount.drifted"] == 1
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.stderr
    for text in ("data quality", "out_of_range", "performance", "accuracy", "segments",
                 "region=north"):
        assert text in table.stdout, text
    bad = runner.invoke(app, [*base[:-1], "branch"])
    assert bad.exit_code == 1 and "branch" in bad.stderr


def test_label_drift_against_the_validation_labels(mon_ws: mw.Workspace) -> None:
    monitor = mon_ws.monitor("models:/claims/1")
    before = monitor.run(data=_frame(1_500, seed=3), label="y")
    assert before.label_drift is None  # no validation report yet: no reference labels
    holdout = _frame(1_500, seed=4)
    mon_ws.validate("claims/1", data=holdout, label="y", n_bootstrap=0, explain_sample=50)
    calm = monitor.run(data=_frame(1_500, seed=5), label="y")
    assert calm.label_drift is not None and calm.label_drift.status == "scored"
    assert calm.label_drift.method == "jensenshannon"  # 1,500 reference labels: a distance
    assert not calm.label_drift.drifted
    shifted = _frame(1_500, shift=40, seed=6)  # more claims above the line: more positives
    moved = monitor.run(data=shifted, label="y")
    assert moved.label_drift is not None and moved.label_drift.drifted
    expected = np.bincount(holdout["y"], minlength=2) / len(holdout)
    current = np.bincount(shifted["y"], minlength=2) / len(shifted)
    from scipy.spatial.distance import jensenshannon
    assert moved.label_drift.value == pytest.approx(jensenshannon(expected, current), abs=1e-9)
    metrics = moved.metrics()
    assert metrics["drift.label.drifted"] == 1.0
    assert metrics["drift.label.value"] == pytest.approx(moved.label_drift.value)
    unlabelled = monitor.run(data=shifted)
    assert unlabelled.label_drift is None and "drift.label.value" not in unlabelled.metrics()


def _regression_frame(n: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    df = _frame(n, seed=seed).drop(columns="y")
    rng = np.random.default_rng(seed + 100)
    df["cost"] = 3 * df["amount"] + 20 * df["prior"] + rng.normal(0, 15, n) + shift
    return df


def test_regression_label_drift_against_the_validation_labels(mon_ws: mw.Workspace) -> None:
    from sklearn.linear_model import LinearRegression

    from modelworks.serving.feedback import record_feedback

    train = _regression_frame(2_000)
    x = train[["amount", "prior", "age"]]
    mon_ws.register_model("cost", model=LinearRegression().fit(x, train["cost"]),
                          input_example=x.head())
    monitor = mon_ws.monitor("models:/cost/1", reference="validation")
    mon_ws.validate("cost/1", data=_regression_frame(1_500, seed=1), label="cost",
                    n_bootstrap=0, explain_sample=50)
    record, labels = get_reference(mon_ws.ctx, "cost/1", "validation-labels")
    assert record.rows == 1_500 and [c.name for c in labels.columns] == ["label"]

    calm = monitor.run(data=_regression_frame(1_500, seed=2), label="cost")
    assert calm.label_drift is not None and calm.label_drift.status == "scored"
    assert calm.label_drift.method == "wasserstein"  # 1,500 reference labels: a distance
    assert not calm.label_drift.drifted
    # costs up by a third of their spread, the inputs unchanged: only the labels moved
    shifted = _regression_frame(1_500, shift=40, seed=3)
    moved = monitor.run(data=shifted, label="cost")
    assert moved.label_drift is not None and moved.label_drift.drifted
    assert moved.drifted_columns == []
    assert moved.metrics()["drift.label.drifted"] == 1.0

    # the same labels as feedback on the log, streamed in chunks: the same figure
    loaded = mon_ws.load_model("cost/1")
    predicted = loaded.predict(shifted[["amount", "prior", "age"]])
    log = PredictionLog(mon_ws.ctx, mon_ws.prediction_journal_dir, background=False)
    rows, start = [], time.time() - 300
    for i, rec in enumerate(shifted[["amount", "prior", "age"]].to_dict(orient="records")):
        rid = f"{int((start + i / 1000) * 1000):012x}{os.urandom(7).hex()}"
        rows.append({"prediction_id": f"{rid}:0", "request_id": rid, "row": 0,
                     "ts": start + i / 1000, "endpoint": None, "model": "cost", "version": 1,
                     "inputs": rec, "output": float(predicted[i]), "proba": None,
                     "latency_ms": 1.0, "shadow": False})
    log.append_rows(rows)
    log.flush()
    log.compact(rollover=True)
    record_feedback(mon_ws.ctx, [{"prediction_id": r["prediction_id"], "label": float(y)}
                                 for r, y in zip(rows, shifted["cost"], strict=True)])
    streamed = mon_ws.monitor("cost/1", reference="validation", chunk_rows=128).run(window="1h")
    assert streamed.label_drift is not None and streamed.label_drift.drifted
    assert streamed.label_drift.value == pytest.approx(moved.label_drift.value, rel=1e-9)
