"""Retraining end to end: data -> tracked run -> candidate -> validation -> policy -> canary
or approval, on SQLite and PostgreSQL, with the worker acting under its own identity."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable

import pandas as pd
import pytest
from sqlalchemy import select

import modelworks as mw
from modelworks.monitoring.references import get_reference
from modelworks.monitoring.retraining import retrain
from modelworks.monitoring.worker import Worker, WorkerReport
from modelworks.quickstart.claims_data import LABEL_COLUMN, generate_claims
from modelworks.serving.prediction_log import PredictionLog
from modelworks.store.tables import retrain_runs

from . import _trainers
from ._governed import (
    HIGH_RISK,
    TRAINER,
    VALIDATOR,
    WORKER,
    as_user,
    make_governed,
    make_local,
)

__all__ = ["make_governed", "make_local"]  # the fixtures, imported for pytest

STEPS = ["started", "data_loaded", "trained", "registered", "validated", "policy_evaluated"]


def _new_data(ws: mw.Workspace, *, rows: int = 900, drift: float = 0.6) -> mw.DatasetVersion:
    return ws.log_dataset(generate_claims(rows, seed=5, drift=drift), name="claims-train")


def _spec(ws: mw.Workspace, **overrides: object) -> None:
    options: dict[str, object] = {"entrypoint": TRAINER, "data": "dataset:claims-train",
                                  "label": LABEL_COLUMN, "params": {"C": 0.5},
                                  "endpoint": "claims", "sensitive_features": ["sex"]}
    ws.set_training("claims", **{**options, **overrides})  # type: ignore[arg-type]


def test_retrain_from_the_newest_dataset_goes_to_a_canary(
        make_governed: Callable[..., mw.Workspace]) -> None:
    ws = make_governed(tier="low")
    newest = _new_data(ws)
    _spec(ws, canary_weight=0.2)
    spec = ws.training_spec("claims")
    assert (spec.source, spec.label, spec.canary_weight, spec.holdout) == (
        "dataset:claims-train", LABEL_COLUMN, 0.2, 0.25)
    worker = as_user(ws, WORKER)
    try:
        result = worker.retrain("claims@production")
    finally:
        worker.close()

    assert result.status == "canary", result.message
    assert [s.name for s in result.steps] == [*STEPS, "canary"]
    assert result.base_version == 1 and result.candidate == "models:/claims/2"
    loaded = result.step("data_loaded")
    assert loaded is not None and loaded.details["version"] == newest.version == 2
    assert loaded.details["rows"] == 900

    candidate = ws.get_model_version("claims", 2)
    assert candidate.created_by == WORKER  # the worker is the registrant
    run = ws.get_run(str(candidate.run_id))
    assert run.experiment == "retrain-claims" and run.status == "FINISHED"
    assert run.params == {"C": "0.5"} and run.tags["retrain_run"] == result.id
    rows = {d.role: ws.get_dataset(d.dataset, d.version).row_count for d in run.datasets}
    assert set(rows) == {"train", "holdout"} and rows["train"] + rows["holdout"] == 900
    assert rows["holdout"] == 225  # holdout 0.25
    # The training reference is stored at registration, the validation one at validation.
    assert get_reference(ws.ctx, candidate.uri, "training")[0].rows == rows["train"]
    assert get_reference(ws.ctx, candidate.uri, "validation")[0].rows == rows["holdout"]
    report = ws.validation_reports(candidate.uri)[0]
    assert report.held_out and report.dataset == "dataset:claims-retrain-holdout:1"
    assert ws.policy_evaluations(candidate.uri)[0].passed

    deployment = ws.get_deployment("claims")
    assert {r.model: r.weight for r in deployment.routes} == {
        "models:/claims@production": 80.0, "models:/claims/2": 20.0}
    assert ws.resolve_model("claims@production").version == 1  # promotion is not automatic

    events = [e for e in ws.audit_log(limit=None) if e.action.startswith("retrain.")]
    assert [e.action for e in reversed(events)] == (
        ["retrain.started"] + ["retrain.step"] * (len(STEPS) - 1) + ["retrain.finished"])
    assert all(e.payload["retrain_run"] == result.id and e.payload["trigger"] == "manual"
               and e.actor == WORKER for e in events)
    assert ws.retrain_runs("claims") == [result]
    assert ws.verify_audit().ok


def test_a_canary_retrain_run_ends_promoted_or_withdrawn_with_its_endpoint(
        make_local: Callable[..., mw.Workspace]) -> None:
    ws = make_local(tier="low")
    _new_data(ws)
    _spec(ws)
    with as_user(ws, WORKER) as worker:
        first = worker.retrain("claims@production")
    assert first.status == "canary", first.message

    ws.promote_deployment("claims", reason="the canary held up")
    promoted = ws.retrain_runs("claims")[0]
    assert promoted.id == first.id and promoted.status == "promoted"
    assert promoted.steps[-1].name == "promoted"
    assert promoted.steps[-1].details["endpoint"] == "claims"
    assert promoted.message == "models:/claims/2 was promoted on 'claims'"

    with as_user(ws, WORKER) as worker:
        second = worker.retrain("claims@production")
    assert second.status == "canary" and second.candidate == "models:/claims/3"
    ws.rollback_deployment("claims", reason="not this one")
    runs = {r.id: r for r in ws.retrain_runs("claims")}
    assert runs[second.id].status == "withdrawn"
    assert runs[second.id].message == "models:/claims/3 left 'claims' without being promoted"
    assert runs[first.id].status == "promoted"  # the earlier one is left alone
    assert ws.retrain_run(second.id) == runs[second.id]
    with pytest.raises(mw.NotFound, match="no retrain run 'nope'"):
        ws.retrain_run("nope")

    settled = ws.audit_log(action="retrain.settled", limit=None)
    assert [(e.payload["retrain_run"], e.payload["status"]) for e in reversed(settled)] == [
        (first.id, "promoted"), (second.id, "withdrawn")]
    assert ws.verify_audit().ok


def test_high_risk_candidate_waits_for_an_approval_the_worker_cannot_give(
        make_governed: Callable[..., mw.Workspace]) -> None:
    ws = make_governed(tier="high")
    _new_data(ws)
    _spec(ws)
    worker_ws = as_user(ws, WORKER)
    try:
        result = worker_ws.retrain("claims/1")
        assert result.status == "awaiting_approval", result.message
        assert result.message is not None and "approval" in result.message
        assert "modelworks approve claims/2" in result.message
        assert "canary on 'claims'" in result.message
        assert len(ws.get_deployment("claims").routes) == 1  # nothing rolled out yet

        # Segregation of duties: even as a validator, the worker registered the candidate.
        ws.grant_role(WORKER, "validator")
        with pytest.raises(mw.PermissionDenied, match="segregation of duties"):
            worker_ws.approve("claims/2", reason="looks fine to me")
        worker = Worker(worker_ws, canary_every=0)
        assert worker.identity == WORKER
        assert worker.run_once().resumed == []  # still waiting

        with as_user(ws, VALIDATOR) as validator:
            validator.approve("claims/2", reason="report reviewed")
        report = worker.run_once()
        assert [r.id for r in report.resumed] == [result.id]
        done = report.resumed[0]
        assert done.status == "canary" and done.step("approved") is not None
        assert done.step("approved").details["approvers"] == [VALIDATOR]  # type: ignore[union-attr]
        assert {r.model: r.weight for r in ws.get_deployment("claims").routes} == {
            "models:/claims@production": 90.0, "models:/claims/2": 10.0}
        # The canary is analysed by the worker from now on (no traffic yet: inconclusive).
        assert [c["endpoint"] for c in report.canary] == ["claims"]
        assert report.canary[0]["verdict"] in ("pass", "fail", "inconclusive")
        assert worker.run_once().resumed == []
        worker.stop()
    finally:
        worker_ws.close()


def test_policy_failure_and_rejection_end_the_run(make_local: Callable[..., mw.Workspace]) -> None:
    ws = make_local(tier="high")
    _new_data(ws)
    _spec(ws)
    worker_ws = as_user(ws, WORKER)
    try:
        waiting = worker_ws.retrain("claims/1")
        assert waiting.status == "awaiting_approval"
        with as_user(ws, VALIDATOR) as validator:
            validator.reject("claims/2", reason="fairness not shown")
        closed = Worker(worker_ws).run_once().resumed
        assert [(r.id, r.status) for r in closed] == [(waiting.id, "rejected")]
        assert "rejected by vera: fairness not shown" in (closed[0].message or "")

        ws.apply_policy(HIGH_RISK.replace("rules:", "rules:\n  - metric: roc_auc\n    min: 0.99"))
        rejected = worker_ws.retrain("claims/1")
        assert rejected.status == "rejected_by_policy"
        assert "roc_auc" in (rejected.message or "") and rejected.candidate == "models:/claims/3"
        assert len(ws.get_deployment("claims").routes) == 1
    finally:
        worker_ws.close()


def test_one_retraining_per_alert_however_many_workers_race(
        make_governed: Callable[..., mw.Workspace]) -> None:
    ws = make_governed(tier="low")
    _new_data(ws)
    rule = "  - name: {0}\n    metric: {1}\n    op: '>'\n    threshold: {2}\n" \
           "    action: retrain\n"
    ws.set_monitoring_plan("claims", "rules:\n" + rule.format("drifted", "drift.share", 0.01)
                           + rule.format("busy", "rows", 0) + "sinks: []\n")
    result = ws.monitor("claims@production").run(data=generate_claims(600, seed=9, drift=1.0))
    firing = {a.rule: a for a in result.alerts if a.status == "firing"}
    assert set(firing) == {"drifted", "busy"} and firing["busy"].action == "retrain"

    # Two callers race for one alert: exactly one records a run. (No training spec yet, so
    # that run fails, on the record, saying why.)
    contexts = [as_user(ws, WORKER) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def claim(other: mw.Workspace) -> None:
        barrier.wait()
        try:
            retrain(other.ctx, "claims/1", trigger="alert", trigger_id=firing["drifted"].id)
        except mw.ModelworksError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=claim, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["Conflict", "NotFound"]
    with ws.db.read() as conn:
        rows = conn.execute(select(retrain_runs.c.status, retrain_runs.c.error).where(
            retrain_runs.c.trigger_id == firing["drifted"].id)).all()
    assert len(rows) == 1 and rows[0].status == "failed" and "training spec" in rows[0].error

    # Two workers tick at once: the other alert gets exactly one retraining, a canary.
    _spec(ws)
    workers = [Worker(c) for c in contexts]
    reports: list[WorkerReport] = []

    def tick(worker: Worker) -> None:
        barrier.wait()
        reports.append(worker.run_once())

    threads = [threading.Thread(target=tick, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    started = [r for rep in reports for r in rep.retrains]
    assert len(started) == 1 and started[0].trigger == "alert"
    assert started[0].trigger_id == firing["busy"].id and started[0].status == "canary"
    assert all(r.retrains == [] for r in (w.run_once() for w in workers))
    with pytest.raises(mw.Conflict, match="already triggered"):
        retrain(workers[0].ctx, "claims/1", trigger="alert", trigger_id=firing["busy"].id)
    steps = ws.audit_log(action="retrain.step", limit=None)
    assert steps and all(e.payload["trigger"] == "alert" for e in steps)
    assert {e.payload["trigger_id"] for e in steps} == {firing["busy"].id}
    for w in workers:
        w.stop()
    for c in contexts:
        c.close()


def _log_predictions(ws: mw.Workspace, frame: pd.DataFrame) -> list[str]:
    log = PredictionLog(ws.ctx, ws.prediction_journal_dir, background=False)  # type: ignore[arg-type]
    now = time.time() - 120
    rows, ids = [], []
    inputs = json.loads(frame[_trainers.FEATURES].to_json(orient="records"))
    for i, rec in enumerate(inputs):
        rid = f"{int((now + i / 1000) * 1000):012x}{os.urandom(7).hex()}"
        ids.append(f"{rid}:0")
        rows.append({"prediction_id": f"{rid}:0", "request_id": rid, "row": 0,
                     "ts": now + i / 1000, "endpoint": "claims", "model": "claims",
                     "version": 1, "inputs": rec, "output": 0, "proba": None,
                     "latency_ms": 1.0, "shadow": False})
    log.append_rows(rows)
    log.close()
    return ids


def test_retrain_from_the_prediction_log_with_feedback(
        make_local: Callable[..., mw.Workspace]) -> None:
    ws = make_local(tier="low")
    served = generate_claims(500, seed=11, drift=0.8)
    ids = _log_predictions(ws, served)
    labelled = ids[:400]  # feedback arrived for most, not all
    ws.record_feedback([{"prediction_id": pid, "label": int(y)} for pid, y in
                        zip(labelled, served[LABEL_COLUMN], strict=False)])
    _spec(ws, data={"prediction_log": {"window": "1d"}}, sensitive_features=[])
    result = ws.retrain("claims@production")
    assert result.status == "canary", result.message
    loaded = result.step("data_loaded")
    assert loaded is not None
    assert (loaded.details["source"], loaded.details["predictions"],
            loaded.details["rows"]) == ("prediction_log", 500, 400)
    trained = result.step("trained")
    assert trained is not None
    assert trained.details["train_rows"] + trained.details["holdout_rows"] == 400


def test_bad_specs_name_the_field(make_local: Callable[..., mw.Workspace]) -> None:
    ws = make_local(tier="low")
    module = _trainers.__name__
    for entrypoint, message in [
        ("fit", "must look like"), ("no_such_module_xyz:fit", "cannot import"),
        (f"{module}:missing", "has no 'missing'"), (f"{module}:NOT_CALLABLE", "not callable")]:
        with pytest.raises(mw.InvalidInput, match=message) as info:
            _spec(ws, entrypoint=entrypoint)
        assert info.value.field == "entrypoint"
    for data in ["s3://bucket/claims.csv", {"table": "claims"}, "dataset:claims-train:1",
                 {"prediction_log": {"window": "yesterday"}}]:
        with pytest.raises(mw.InvalidInput) as info:
            _spec(ws, data=data)
        assert info.value.field == "data"
    with pytest.raises(mw.NotFound, match="no dataset named 'nope'"):
        _spec(ws, data="dataset:nope")
    cases: list[tuple[dict[str, object], str]] = [
        ({"label": None}, "label"), ({"label": "nope"}, "label"),
        ({"canary_weight": 1.5}, "canary_weight"), ({"holdout": 0}, "holdout"),
        ({"params": {"when": object()}}, "params"),
        ({"sensitive_features": ["nope"]}, "sensitive_features")]
    for kwargs, field in cases:
        with pytest.raises(mw.InvalidInput) as info:
            _spec(ws, **kwargs)
        assert info.value.field == field, kwargs
    with pytest.raises(mw.NotFound, match="no deployment named 'elsewhere'"):
        _spec(ws, endpoint="elsewhere")
    with pytest.raises(mw.NotFound):
        ws.set_training("nope", entrypoint=TRAINER, data="dataset:claims-train",
                        label=LABEL_COLUMN)
    with pytest.raises(mw.NotFound, match="has no training spec"):
        ws.retrain("claims/1")  # nothing set yet: no run recorded
    assert ws.retrain_runs() == []
    assert ws.audit_log(action="training_spec.set", limit=None) == []


def test_failed_steps_are_recorded_and_raised(make_local: Callable[..., mw.Workspace]) -> None:
    ws = make_local(tier="low")
    _spec(ws, entrypoint=f"{_trainers.__name__}:not_a_model", params={})
    with pytest.raises(mw.InvalidInput, match="not a fitted model") as info:
        ws.retrain("claims/1")
    assert info.value.field == "entrypoint"
    failed = ws.retrain_runs("claims")[0]
    assert failed.status == "failed" and failed.candidate is None
    assert failed.error is not None and "entrypoint" in failed.error
    assert [s.name for s in failed.steps] == ["started", "data_loaded", "failed"]
    assert [v.version for v in ws.model_versions("claims")] == [1]  # nothing half-registered
    tracked = ws.search_runs("retrain-claims")
    assert [r.status for r in tracked] == ["FAILED"]
    finished = ws.audit_log(action="retrain.finished", limit=1)[0]
    assert finished.payload["status"] == "failed" and finished.payload["retrain_run"] == \
        failed.id

    _spec(ws, entrypoint=f"{_trainers.__name__}:broken", params={})
    with pytest.raises(RuntimeError, match="crashed"):
        ws.retrain("claims/1")
    assert ws.retrain_runs("claims")[0].error == "RuntimeError: the training code crashed"

    _spec(ws)  # a good spec, then a newest dataset version without the label column
    ws.log_dataset(generate_claims(300, seed=3).drop(columns=[LABEL_COLUMN]),
                   name="claims-train")
    with pytest.raises(mw.InvalidInput, match="label 'needs_review'") as info:
        ws.retrain("claims/1")
    assert info.value.field == "label"
    assert ws.retrain_runs("claims")[0].status == "failed"
    ws.log_dataset(generate_claims(8, seed=4), name="claims-train")
    with pytest.raises(mw.InvalidInput, match="too few") as info:
        ws.retrain("claims/1")
    assert info.value.field == "data"
    assert [r.status for r in ws.retrain_runs("claims")] == ["failed"] * 4
    with pytest.raises(mw.InvalidInput) as info:
        ws.retrain("claims/1", trigger="cron")
    assert info.value.field == "trigger"
    assert math.isclose(ws.training_spec("claims").holdout, 0.25)


def test_a_pipeline_as_the_training_entrypoint(
        make_governed: Callable[..., mw.Workspace]) -> None:
    ws = make_governed(tier="low")
    _new_data(ws)
    _spec(ws, entrypoint=f"{_trainers.__name__}:training")
    worker = as_user(ws, WORKER)
    try:
        result = worker.retrain("claims@production")
    finally:
        worker.close()
    assert result.status == "canary", result.message
    candidate = ws.get_model_version("claims", 2)
    run = ws.get_run(str(candidate.run_id))
    pipeline_run = ws.get_pipeline_run(run.tags["pipeline_run"])
    assert pipeline_run.status == "FINISHED" and pipeline_run.created_by == WORKER
    assert [s.step.rpartition(":")[2] for s in pipeline_run.steps] == ["prepare", "train_step"]
    assert pipeline_run.params["C"] == 0.5
    frame = generate_claims(5, seed=9)
    assert len(ws.load_model(candidate.uri).predict(frame[_trainers.FEATURES])) == 5
