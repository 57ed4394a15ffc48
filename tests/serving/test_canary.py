"""Canary analysis: real endpoints on a real server, the verdicts, the rollback and its record."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon as scipy_js
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from typer.testing import CliRunner

import modelworks as mw
from modelworks.cli.main import app as cli_app
from modelworks.config import Settings
from modelworks.monitoring.canary_checks import ArmStats, compare, prediction_drift
from modelworks.serving._logfiles import ERROR, read_parquet, table_from_rows, to_parquet
from modelworks.serving.app import create_app
from modelworks.serving.canary import CanaryRules, endpoints_with_canary
from modelworks.serving.deployments import Route
from modelworks.serving.ids import new_request_id
from modelworks.serving.prediction_log import PredictionLog
from modelworks.serving.prediction_reader import get_prediction, read_predictions

from .conftest import Running, start

NULLABLE = "mean_radius"
# Latency is measured, never asserted: the good-canary rules raise the floor out of reach.
CALM = {"min_requests": 20, "min_labels": 20, "latency_floor_ms": 60_000,
        "min_accuracy_delta": -0.1}


@pytest.fixture
def canary_ws(db_location: tuple[str, str], tmp_path: Path,
              cancer: tuple[pd.DataFrame, pd.Series]) -> Iterator[mw.Workspace]:
    """'cb' v1 main, v2 a sound canary, v3 fails on a missing value, v4 always says 0."""
    location, artifacts = db_location
    settings = Settings(serve_alias_refresh_seconds=0.2, prediction_log_fsync_seconds=0,
                        prediction_log_dir=str(tmp_path / "journal"))
    ws = mw.Workspace(location, artifacts=artifacts, user="alice", settings=settings)
    x, y = cancer
    example = x.head().copy()
    example.loc[example.index[0], NULLABLE] = np.nan  # the signature takes nulls there
    for model in (HistGradientBoostingClassifier(max_iter=30, random_state=0),  # takes NaN
                  HistGradientBoostingClassifier(max_iter=20, learning_rate=0.2,
                                                 random_state=0),
                  KNeighborsClassifier(),  # a NaN raises ValueError inside predict
                  DummyClassifier(strategy="constant", constant=0)):
        ws.register_model("cb", model=model.fit(x, y), input_example=example)
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture
def server(canary_ws: mw.Workspace) -> Iterator[Running]:
    running = start(create_app(canary_ws))
    try:
        yield running
    finally:
        running.stop()


def _pairs(cancer: tuple[pd.DataFrame, pd.Series], n: int, *, null_every: int = 0
           ) -> Iterator[tuple[str, list[dict[str, Any]], list[int]]]:
    """(routing key, two rows — one of each class —, their labels) per request: every arm
    sees the same class mix whichever requests it gets."""
    x, y = cancer
    neg, pos = np.flatnonzero(y.to_numpy() == 0), np.flatnonzero(y.to_numpy() == 1)
    for i in range(n):
        a, b = int(neg[i % len(neg)]), int(pos[i % len(pos)])
        rows = [x.iloc[a].to_dict(), x.iloc[b].to_dict()]
        if null_every and i % null_every == 0:
            rows[0][NULLABLE] = None
        yield f"key-{i}", rows, [int(y.iloc[a]), int(y.iloc[b])]


def _send(server: Running, endpoint: str, cancer: tuple[pd.DataFrame, pd.Series], n: int, *,
          null_every: int = 0) -> list[tuple[httpx.Response, list[int]]]:
    out = []
    for key, rows, labels in _pairs(cancer, n, null_every=null_every):
        reply = server.client.post(f"/v1/endpoints/{endpoint}/predict",
                                   json={"dataframe_records": rows},
                                   headers={"X-Routing-Key": key})
        assert reply.status_code in (200, 500), reply.text
        out.append((reply, labels))
    return out


def _logged(ws: mw.Workspace, **kwargs: Any) -> pd.DataFrame:
    return read_predictions(ws.ctx, model="cb", include_shadow=True,
                            journal_dir=ws.prediction_journal_dir, **kwargs)


def test_a_failing_canary_is_rolled_back_with_its_evidence(
        canary_ws: mw.Workspace, server: Running,
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    ws = canary_ws
    ws.create_deployment("triage", model="cb/1", canary="cb/3", percent=50, reason="try v3")
    ws.set_canary_rules("triage", {"min_requests": 20})
    replies = _send(server, "triage", cancer, 120, null_every=2)
    failed = [r for r, _ in replies if r.status_code == 500]
    answered = [r.json() for r, _ in replies if r.status_code == 200]
    assert failed and {a["version"] for a in answered} == {1, 3}

    # The model's failures are in the log, one row per request, and only when asked for.
    errors = _logged(ws, include_errors=True)
    errors = errors[errors[ERROR].notna()]
    assert len(errors) == len(failed) and set(errors["version"]) == {3}
    assert set(errors[ERROR]) == {"ValueError"} and errors["output"].isna().all()
    assert ERROR not in _logged(ws).columns and _logged(ws)["output"].notna().all()

    analysis = ws.analyze_canary("triage")
    assert analysis.verdict == "fail" and analysis.action == "rolled_back"
    assert analysis.baseline.uri == "models:/cb/1" and analysis.baseline.errors == 0
    canary = analysis.comparison("cb/3")
    assert canary.verdict == "fail" and canary.action == "rolled_back"
    assert canary.candidate.errors == len(failed)
    check = {c.name: c for c in canary.checks}["error_rate_increase"]
    assert check.outcome == "fail" and check.threshold == 0.01
    assert check.value == pytest.approx(len(failed) / canary.candidate.requests)

    # The canary left the traffic: its share went to the main entry, on the record.
    assert ws.get_deployment("triage").routes == [Route(model="models:/cb/1", weight=100.0)]
    change = ws.deployment_history("triage")[-1]
    assert change.action == "traffic_changed" and analysis.id in (change.reason or "")
    assert "error_rate_increase" in (change.reason or "")
    moved = ws.audit_log(action="deployment.traffic_changed", entity_id="triage")[0]
    assert moved.payload["canary_analysis"] == analysis.id
    assert moved.payload["removed_canaries"] == ["models:/cb/3"]
    event = ws.audit_log(action="deployment.canary_analyzed", entity_id="triage")[0]
    assert event.payload["analysis"] == analysis.id and event.payload["action"] == "rolled_back"
    assert event.payload["candidates"][0]["failed"][0]["check"] == "error_rate_increase"
    assert event.seq > moved.seq and ws.verify_audit().ok
    stored = ws.canary_analyses("triage")
    assert [a.id for a in stored] == [analysis.id] and stored[0] == analysis

    # Rolled back, the endpoint has no canary left to analyse.
    with pytest.raises(mw.InvalidInput) as info:
        ws.analyze_canary("triage")
    assert info.value.field == "endpoint"


def test_a_sound_canary_passes_and_nothing_changes(
        canary_ws: mw.Workspace, server: Running,
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    ws = canary_ws
    ws.create_deployment("sound", model="cb/1", canary="cb/2", percent=40, reason="try v2")
    ws.set_canary_rules("sound", CALM)
    replies = _send(server, "sound", cancer, 100)
    assert all(r.status_code == 200 for r, _ in replies)
    feedback = [{"prediction_id": f"{r.json()['request_id']}:{i}", "label": label}
                for r, labels in replies for i, label in enumerate(labels)]
    assert server.client.post("/v1/feedback", json={"feedback": feedback}).status_code == 200
    before = ws.get_deployment("sound")
    history = len(ws.deployment_history("sound"))

    analysis = ws.analyze_canary("sound")
    assert analysis.verdict == "pass" and analysis.action == "none"
    canary = analysis.comparison("models:/cb/2")
    checks = {c.name: c for c in canary.checks}
    assert all(c.outcome in ("pass", "skipped") for c in canary.checks)
    assert checks["accuracy_delta"].outcome == "pass"  # labels arrived for both sides
    assert canary.candidate.labelled == 2 * canary.candidate.requests
    assert analysis.baseline.accuracy is not None and analysis.baseline.accuracy > 0.9
    assert checks["prediction_drift"].outcome == "pass" and checks["prediction_drift"].value \
        is not None
    assert canary.candidate.latency_p95_ms is not None and analysis.baseline.latency_p95_ms
    assert checks["requests"].value == min(canary.candidate.requests,
                                           analysis.baseline.requests) >= 20
    assert analysis.baseline.requests + canary.candidate.requests == 100
    assert ws.get_deployment("sound") == before
    assert len(ws.deployment_history("sound")) == history
    event = ws.audit_log(action="deployment.canary_analyzed", entity_id="sound")[0]
    assert event.payload["verdict"] == "pass" and event.payload["action"] == "none"


def _wait_for_shadows(ws: mw.Workspace, count: int) -> pd.DataFrame:
    deadline = time.monotonic() + 30
    while True:  # shadows answer after the reply, in the background
        log = _logged(ws)
        if int(log["shadow"].sum()) >= count or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_a_shadow_is_compared_on_the_same_requests_and_left_in_place(
        canary_ws: mw.Workspace, server: Running,
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    ws = canary_ws
    ws.create_deployment("mirror", model="cb/1", shadows=["cb/4"], reason="shadow v4")
    ws.set_canary_rules("mirror", {**CALM, "min_agreement": 0.9})
    _send(server, "mirror", cancer, 40)
    log = _wait_for_shadows(ws, 80)
    assert int(log["shadow"].sum()) == 80
    served = log.loc[~log["shadow"], "output"].value_counts()

    analysis = ws.analyze_canary("mirror")
    shadow = analysis.comparison("cb/4")
    checks = {c.name: c for c in shadow.checks}
    assert shadow.candidate.role == "shadow" and shadow.candidate.compared_rows == 80
    # It says 0 to everything: it agrees on the negatives, half of the rows sent.
    assert shadow.candidate.agreement == pytest.approx(served.get(0, 0) / 80)
    assert 0.4 < (shadow.candidate.agreement or 0) < 0.6
    assert checks["agreement"].outcome == "fail"
    assert checks["prediction_drift"].outcome == "fail"
    assert shadow.prediction_drift is not None
    assert shadow.prediction_drift["jensenshannon"] == pytest.approx(
        float(scipy_js([served.get(0, 0), served.get(1, 0)], [80, 0])), abs=1e-9)
    # A shadow answers no one: reported, not removed.
    assert analysis.verdict == "fail" and analysis.action == "none"
    assert ws.get_deployment("mirror").shadows == ["models:/cb/4"]


def test_too_few_requests_is_inconclusive_and_nothing_moves(
        canary_ws: mw.Workspace, server: Running,
        cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    ws = canary_ws
    ws.create_deployment("quiet", model="cb/1", canary="cb/3", percent=50, reason="try v3")
    _send(server, "quiet", cancer, 12, null_every=1)  # the canary fails all it gets

    analysis = ws.analyze_canary("quiet")  # default rules: 100 requests on each side
    canary = analysis.comparison("cb/3")
    assert canary.candidate.errors > 0 and canary.candidate.requests < 100
    assert analysis.verdict == canary.verdict == "inconclusive"
    assert {c.name: c.outcome for c in canary.checks}["requests"] == "inconclusive"
    assert analysis.action == "none" and len(ws.get_deployment("quiet").canaries) == 1
    assert [a.verdict for a in ws.canary_analyses("quiet")] == ["inconclusive"]


# --- without a server: the log written directly -----------------------------------------


def _model_ws(workspace: mw.Workspace) -> mw.Workspace:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (x["a"] > 0).astype(int)
    for c in (1.0, 0.5, 0.1):
        workspace.register_model("m", model=LogisticRegression(C=c).fit(x, y),
                                 input_example=x.head())
    return workspace


def _write(ws: mw.Workspace, journal: Path, endpoint: str, n: int, *,
           canary_version: int = 2, canary_every: int = 4, fail_every: int = 0) -> None:
    """``n`` requests: every ``canary_every``-th by the canary, some of which failed;
    compacted into the log's Parquet files on close."""
    log = PredictionLog(ws.ctx, journal, background=False)
    for i in range(n):
        request = new_request_id()
        version = canary_version if i % canary_every == 0 else 1
        row = {"prediction_id": f"{request}:0", "request_id": request, "row": 0,
               "ts": time.time(), "endpoint": endpoint, "model": "m", "version": version,
               "inputs": {"a": 0.1 * i}, "output": (i // canary_every) % 2, "proba": None,
               "latency_ms": 2.0, "shadow": False}
        if version == canary_version and fail_every and (i // canary_every) % fail_every == 0:
            row.update(output=None, error="ZeroDivisionError")
        log.append_rows([row])
    log.close()


def test_bad_input_is_named(workspace: mw.Workspace, tmp_path: Path) -> None:
    ws = _model_ws(workspace)
    with pytest.raises(mw.NotFound, match="no deployment named 'nowhere'"):
        ws.analyze_canary("nowhere")
    with pytest.raises(mw.NotFound):
        ws.canary_analyses("nowhere")
    with pytest.raises(mw.NotFound):
        ws.set_canary_rules("nowhere", {})
    ws.create_deployment("solo", model="m/1")
    with pytest.raises(mw.InvalidInput, match="no canary and no shadow") as info:
        ws.analyze_canary("solo")
    assert info.value.field == "endpoint"
    ws.create_deployment("ep", model="m/1", canary="m/2", percent=10)
    for rules, field in [({"max_error_rate_increase": "high"}, "rules.max_error_rate_increase"),
                         ({"max_error_rate_increase": 2}, "rules.max_error_rate_increase"),
                         ({"min_requests": 0}, "rules.min_requests"),
                         ({"min_requests": True}, "rules.min_requests"),
                         ({"max_latency_p95_ratio": -1}, "rules.max_latency_p95_ratio"),
                         ({"drift_method": "magic"}, "rules.drift_method"),
                         ({"max_eror_rate": 0.1}, "rules.max_eror_rate"),
                         ("min_requests: [1, 2]", "rules.min_requests"),
                         ("- just\n- a list\n", "rules"),
                         ("min_requests: {", "rules"),
                         (tmp_path / "missing.yaml", "rules")]:
        with pytest.raises(mw.InvalidInput) as info:
            ws.set_canary_rules("ep", rules)  # type: ignore[arg-type]
        assert info.value.field == field, (rules, info.value)
    with pytest.raises(mw.InvalidInput, match="not a canary rule"):
        ws.set_canary_rules("ep", {"max_eror_rate": 0.1})
    with pytest.raises(mw.InvalidInput) as info:
        ws.analyze_canary("ep", window="an hour")
    assert info.value.field == "window"
    with pytest.raises(mw.InvalidInput) as info:
        ws.analyze_canary("ep", rules={"min_labels": -3})
    assert info.value.field == "rules.min_labels"
    with pytest.raises(mw.InvalidInput) as info:
        ws.canary_analyses("ep", limit=0)
    assert info.value.field == "limit"
    assert ws.canary_analyses("ep") == []  # nothing stored by the refusals


def test_rules_are_stored_with_the_endpoint_and_outlive_traffic_changes(
        workspace: mw.Workspace, tmp_path: Path) -> None:
    ws = _model_ws(workspace)
    ws.create_deployment("ep", model="m/1", canary="m/2", percent=10)
    assert ws.canary_rules("ep") == CanaryRules()
    path = tmp_path / "canary.yaml"
    path.write_text("min_requests: 50\nmax_latency_p95_ratio: null  # latency is not ours\n")
    rules = ws.set_canary_rules("ep", path, reason="slow upstream")
    assert rules.min_requests == 50 and rules.max_latency_p95_ratio is None
    ws.set_traffic("ep", {"m/1": 80, "m/2": 20}, reason="more canary")
    assert ws.canary_rules("ep") == rules
    assert ws.set_canary_rules("ep", "max_prediction_drift: 0.2").min_requests == 100
    events = [e for e in ws.deployment_history("ep") if e.action == "canary_rules_set"]
    assert [e.reason for e in events] == ["slow upstream", "canary rules set"]
    audited = ws.audit_log(action="deployment.canary_rules_set", entity_id="ep")
    assert audited[0].payload["canary_rules"]["max_prediction_drift"] == 0.2
    assert audited[0].payload["previous_canary_rules"] == {
        "min_requests": 50, "max_latency_p95_ratio": None}
    ws.rollback_deployment("ep", reason="undo the 20%")  # undoes traffic, not rules
    assert ws.canary_rules("ep").max_prediction_drift == 0.2
    assert [r.weight for r in ws.get_deployment("ep").routes] == [90.0, 10.0]


def test_window_starts_at_the_last_traffic_change_and_rules_override(
        workspace: mw.Workspace, tmp_path: Path) -> None:
    ws = _model_ws(workspace)
    ws.create_deployment("ep", model="m/1", canary="m/2", percent=25)
    journal = tmp_path / "journal"
    _write(ws, journal, "ep", 200, fail_every=1)  # a bad time for the canary...
    ws.set_traffic("ep", {"m/1": 75, "m/3": 25}, reason="v3 instead")
    _write(ws, journal, "ep", 200, canary_version=3)  # ...then another canary, healthy
    _write(ws, journal, "elsewhere", 40, canary_version=3, fail_every=1)  # another endpoint

    analysis = ws.analyze_canary("ep", rules={"min_requests": 10}, rollback=False)
    canary = analysis.comparison("m/3")
    assert analysis.verdict == "pass" and canary.candidate.requests == 50
    assert canary.candidate.errors == 0 and analysis.baseline.requests == 150
    assert analysis.window_start == ws.deployment_history("ep")[-1].at
    assert ws.canary_rules("ep") == CanaryRules()  # the override was for this analysis only
    assert analysis.rules.min_requests == 10
    # A window caps how far back the log is read: the last moments hold no request.
    time.sleep(0.05)
    quiet = ws.analyze_canary("ep", window="0.01s", rollback=False)
    assert quiet.verdict == "inconclusive" and quiet.baseline.requests == 0


def test_rollback_refused_by_the_gate_is_recorded(workspace: mw.Workspace,
                                                  tmp_path: Path) -> None:
    ws = _model_ws(workspace)
    policy = tmp_path / "release.yaml"
    policy.write_text("name: release\nrules:\n  - approvals: {count: 1, role: validator}\n")
    ws.apply_policy(policy)
    ws.grant_role("bob", "validator")
    bob = mw.Workspace(ws.location.db_url, artifacts=ws.location.artifacts, user="bob")
    bob.approve("m/1", reason="reviewed")
    bob.approve("m/2", reason="reviewed")
    ws.set_alias("m", "production", 2, reason="v2 in production")
    ws.create_deployment("gated", model="m/1", canary="m@production", percent=50)
    _write(ws, tmp_path / "journal", "gated", 100, canary_every=2, fail_every=2)
    # Since then version 1, the main entry, was rejected: more traffic for it on an endpoint
    # serving `production` is refused by the gate rule.
    bob.reject("m/1", reason="found a leak")
    bob.close()

    analysis = ws.analyze_canary("gated", rules={"min_requests": 20})
    assert analysis.verdict == "fail" and analysis.action == "rollback_refused"
    assert analysis.rollback_error and "governance gate" in analysis.rollback_error
    assert len(ws.get_deployment("gated").canaries) == 1  # nothing moved
    assert ws.canary_analyses("gated")[0].action == "rollback_refused"
    event = ws.audit_log(action="deployment.canary_analyzed", entity_id="gated")[0]
    assert event.payload["rollback_error"] == analysis.rollback_error


def test_endpoints_with_canary(workspace: mw.Workspace) -> None:
    ws = _model_ws(workspace)
    ws.create_deployment("plain", model="m/1")
    ws.create_deployment("canaried", model="m/1", canary="m/2", percent=5)
    ws.create_deployment("idle", model="m/1", canary="m/2", percent=0)
    ws.create_deployment("shadowed", model="m/1", shadows=["m/3"])
    ws.create_deployment("off", model="m/1", canary="m/2", percent=5)
    ws.disable_deployment("off", reason="incident")
    assert endpoints_with_canary(ws.ctx) == ["canaried", "shadowed"]
    assert endpoints_with_canary(ws.ctx, include_shadows=False) == ["canaried"]


def test_cli_canary_check(tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    with mw.Workspace(folder, user="alice") as ws:
        _model_ws(ws)
        ws.create_deployment("ep", model="m/1", canary="m/2", percent=25)
        _write(ws, tmp_path / "journal", "ep", 200, fail_every=2)
    runner = CliRunner()
    base = ["--workspace", str(folder)]
    shown = runner.invoke(cli_app, [*base, "deploy", "canary-rules", "ep", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["min_requests"] == 100
    rules = tmp_path / "rules.yaml"
    rules.write_text("min_requests: 20\n")
    assert runner.invoke(cli_app, [*base, "deploy", "canary-rules", "ep", "--set",
                                   str(rules)]).exit_code == 0
    report = runner.invoke(cli_app, [*base, "deploy", "canary-check", "ep", "--no-rollback",
                                     "--json"])
    assert report.exit_code == 1, report.stderr  # fail
    body = json.loads(report.stdout)
    assert body["verdict"] == "fail" and body["action"] == "none"
    table = runner.invoke(cli_app, [*base, "deploy", "canary-check", "ep"])
    assert table.exit_code == 1 and "error_rate_increase" in table.stdout
    assert "rolled_back" in table.stdout
    missing = runner.invoke(cli_app, [*base, "deploy", "canary-check", "nowhere"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: no deployment")


# --- the log format and the pure checks -----------------------------------------------------


def _row(i: int, **extra: Any) -> dict[str, Any]:
    request = new_request_id()
    return {"prediction_id": f"{request}:0", "request_id": request, "row": 0,
            "ts": time.time() + i * 1e-3, "endpoint": "ep", "model": "m", "version": 1,
            "inputs": {"a": i}, "output": i % 2, "proba": None, "latency_ms": 1.0,
            "shadow": False, **extra}


def test_error_rows_keep_the_log_format_backward_compatible(workspace: mw.Workspace,
                                                            tmp_path: Path) -> None:
    plain = table_from_rows([_row(i) for i in range(3)])
    assert ERROR not in plain.column_names and plain.num_columns == 12  # as before
    mixed = table_from_rows([_row(0), _row(1, output=None, error="KeyError")])
    assert mixed.column(ERROR).to_pylist() == [None, "KeyError"]
    # A file written before the column existed reads as it always did.
    old = read_parquet(to_parquet(plain))
    assert old.schema.equals(plain.schema)

    journal = tmp_path / "journal"
    log = PredictionLog(workspace.ctx, journal, background=False)
    rows = [_row(0), _row(1, output=None, error="KeyError"), _row(2)]
    for row in rows:
        log.append_rows([row])
    for compacted in (False, True):
        if compacted:
            log.close()
        frame = read_predictions(workspace.ctx, journal_dir=journal)
        assert list(frame["prediction_id"]) == [rows[0]["prediction_id"],
                                                rows[2]["prediction_id"]]
        every = read_predictions(workspace.ctx, journal_dir=journal, include_errors=True)
        assert every[ERROR].tolist() == [None, "KeyError", None]
        failed = get_prediction(workspace.ctx, rows[1]["prediction_id"], journal_dir=journal)
        assert failed.error == "KeyError" and failed.output is None


def _arm(**figures: Any) -> ArmStats:
    base: dict[str, Any] = {"uri": "models:/m/1", "role": "canary", "model": "m",
                            "version": 1, "requests": 500, "errors": 0, "error_rate": 0.0}
    return ArmStats(**{**base, **figures})


def test_latency_needs_the_ratio_and_the_floor() -> None:
    rules = CanaryRules(latency_floor_ms=5.0)
    main = _arm(role="main", latency_p50_ms=0.2, latency_p95_ms=0.4)

    def outcome(p95: float) -> str:
        checks = compare(main, _arm(latency_p50_ms=p95 / 2, latency_p95_ms=p95), rules, None)
        return {c.name: c for c in checks}["latency_p95_ratio"].outcome

    assert outcome(0.5) == "pass"  # 1.25x
    assert outcome(3.0) == "pass"  # 7.5x, but 2.6 ms: jitter, not a regression
    assert outcome(30.0) == "fail"
    off = compare(main, _arm(latency_p95_ms=300.0), CanaryRules(max_latency_p95_ratio=None),
                  None)
    assert {c.name: c.outcome for c in off}["latency_p95_ratio"] == "skipped"


def test_numeric_predictions_use_the_drift_statistics() -> None:
    from scipy.stats import ks_2samp, wasserstein_distance

    rng = np.random.default_rng(3)
    main = list(rng.normal(0, 1, 400))
    shifted = list(rng.normal(0.5, 1, 300))
    drift = prediction_drift(main, shifted, numeric=True, method="auto")
    assert drift["kind"] == "numeric" and drift["method"] == "wasserstein"
    assert drift["value"] == pytest.approx(
        wasserstein_distance(main, shifted) / np.std(main), rel=1e-9)
    assert drift["ks"] == pytest.approx(ks_2samp(main, shifted).statistic, abs=1e-12)
    assert drift["value"] > 0.1
    same = prediction_drift(main, list(rng.normal(0, 1, 300)), numeric=True, method="psi")
    assert same["method"] == "psi" and 0 <= same["value"] < 0.1
    classes = prediction_drift([0, 1, 1, "x"], [1, 1.0, True], numeric=False,
                               method="wasserstein")
    assert classes["value"] is None  # Wasserstein needs numbers: the check is skipped
    # Classes by value: 1, 1.0 and "1" are one class; True is another.
    assert math.isclose(classes["jensenshannon"], float(scipy_js([1, 2, 0, 1], [0, 2, 1, 0])),
                        abs_tol=1e-12)
