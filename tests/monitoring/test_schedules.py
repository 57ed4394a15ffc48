"""Schedules: creation and errors, a due monitor schedule run by the worker, missed slots
reported, and leases that never let two workers run one row (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import modelworks as mw
from modelworks.config import Settings
from modelworks.monitoring.schedules import (
    claim_due,
    finish_schedule,
    sync_plan_schedules,
)
from modelworks.monitoring.worker import Worker
from modelworks.quickstart.claims_data import generate_claims
from modelworks.store.tables import schedules, utcnow

from . import _trainers
from ._governed import WORKER, as_user
from .test_retraining import _log_predictions


@pytest.fixture
def light(db_location: tuple[str, str], tmp_path: Path) -> Iterator[mw.Workspace]:
    """``claims`` v1 with a training reference (no validation, no endpoint)."""
    location, artifacts = db_location
    ws = mw.Workspace(location, artifacts=artifacts, user="alice",
                      settings=Settings(prediction_log_dir=str(tmp_path / "journal")))
    train = generate_claims(600, seed=1)
    with ws.start_run(experiment="claims") as run:
        run.use_dataset(ws.log_dataset(train, name="claims-train"), role="train")
        ws.register_model("claims", model=_trainers.fit(train), run=run,
                          input_example=train[_trainers.FEATURES])
    yield ws
    ws.close()


def _due(ws: mw.Workspace, name: str, *, ago: timedelta = timedelta(0)) -> None:
    with ws.db.write() as conn:
        conn.execute(update(schedules).where(schedules.c.name == name).values(
            next_run_at=utcnow() - ago, lease_owner=None, lease_until=None))


def test_schedule_monitor_records_and_errors(light: mw.Workspace) -> None:
    first = light.schedule_monitor("claims/1", every="1h")
    assert (first.name, first.kind, first.target, first.every, first.every_seconds) == (
        "monitor:claims/1", "monitor", "models:/claims/1", "1h", 3600.0)
    assert first.options == {"window": "1h", "reference": "training"}
    assert first.next_run_at <= utcnow() and first.enabled  # due at once
    again = light.schedule_monitor("claims/1", every="30m", window="2h")
    assert again.id == first.id and again.next_run_at == first.next_run_at
    assert (again.every, again.options["window"]) == ("30m", "2h")
    assert [s.name for s in light.schedules()] == ["monitor:claims/1"]
    for kwargs, field in [({"every": "often"}, "every"), ({"every": "0s"}, "every"),
                          ({"every": "1h", "window": "soon"}, "window"),
                          ({"every": "1h", "name": " "}, "name")]:
        with pytest.raises(mw.InvalidInput) as info:
            light.schedule_monitor("claims/1", **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(mw.NotFound):
        light.schedule_monitor("claims@production", every="1h")
    with pytest.raises(mw.NotFound, match="training spec"):
        light.schedule_retrain("claims/1", every="7d")
    light.set_training("claims", entrypoint=f"{_trainers.__name__}:fit",
                       data="dataset:claims-train", label="needs_review")
    with pytest.raises(mw.Conflict, match="monitor schedule"):
        light.schedule_retrain("claims/1", every="7d", name="monitor:claims/1")
    assert light.schedule_retrain("claims/1", every="7d").name == "retrain:claims/1"
    light.unschedule("retrain:claims/1")
    with pytest.raises(mw.NotFound, match="no schedule named 'retrain:claims/1'"):
        light.unschedule("retrain:claims/1")
    actions = [e.action for e in light.audit_log(entity_type="schedule", limit=None)]
    assert actions == ["schedule.deleted", "schedule.created", "schedule.updated",
                       "schedule.created"]


def test_due_monitor_schedule_runs_in_the_worker(light: mw.Workspace) -> None:
    _log_predictions(light, generate_claims(300, seed=4, drift=1.0))
    made = light.schedule_monitor("claims/1", every="1h", window="1d")
    worker = Worker(light)  # acts as the worker identity, not as alice
    report = worker.run_once()
    assert [(r.schedule, r.status) for r in report.schedules] == [("monitor:claims/1", "ok")]
    run_id = report.schedules[0].detail["monitor_run"]
    stored = light.monitor_runs("claims/1")
    assert [r.id for r in stored] == [run_id]
    assert stored[0].rows == 300 and stored[0].created_by == WORKER
    assert stored[0].source == "prediction-log"
    after = light.schedules()[0]
    assert after.last_status == "ok" and after.last_error is None
    assert after.next_run_at == made.next_run_at + timedelta(hours=1)
    assert after.lease_owner is None
    assert worker.run_once().schedules == []  # not due again for an hour
    ran = light.audit_log(action="schedule.ran", limit=None)
    assert len(ran) == 1 and ran[0].payload["detail"]["monitor_run"] == run_id
    assert ran[0].actor == WORKER

    # A window without predictions is reported as such, not as a failure.
    light.schedule_monitor("claims/1", every="1h", window="1s", name="empty")
    (empty,) = worker.run_once().schedules
    assert empty.status == "no_data" and "no predictions" in (empty.error or "")
    worker.stop()


def test_missed_slots_are_skipped_and_reported(light: mw.Workspace) -> None:
    light.schedule_monitor("claims/1", every="1h")
    _due(light, "monitor:claims/1", ago=timedelta(hours=3, minutes=30))
    worker = Worker(light)  # acts as the worker identity, not as alice
    (run,) = worker.run_once().schedules
    assert run.missed == 3 and run.status == "no_data"
    assert "3 missed run(s) skipped" in (run.error or "")
    schedule = light.schedules()[0]
    assert "3 missed run(s) skipped" in (schedule.last_error or "")
    assert utcnow() < schedule.next_run_at <= utcnow() + timedelta(hours=1)
    (missed,) = light.audit_log(action="schedule.missed", limit=None)
    assert missed.payload["missed"] == 3
    worker.stop()


def _grab(ws: mw.Workspace, owner: str, barrier: threading.Barrier,
          got: dict[str, list[str]]) -> None:
    barrier.wait()
    got[owner] = [s.name for s in claim_due(ws.ctx, owner)]


def test_two_workers_never_both_run_one_schedule(light: mw.Workspace) -> None:
    names = [f"s{i}" for i in range(6)]
    for name in names:
        light.schedule_monitor("claims/1", every="1h", name=name)
    others = [as_user(light, WORKER) for _ in range(2)]
    try:
        for _ in range(3):
            for name in names:
                _due(light, name)
            barrier = threading.Barrier(2)
            got: dict[str, list[str]] = {}

            threads = [threading.Thread(target=_grab, args=(ws, f"w{i}", barrier, got))
                       for i, ws in enumerate(others)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not set(got["w0"]) & set(got["w1"])
            assert sorted(got["w0"] + got["w1"]) == names
            assert claim_due(others[0].ctx, "w2") == []  # all leased
    finally:
        for ws in others:
            ws.close()


def test_an_expired_lease_passes_to_another_worker(light: mw.Workspace) -> None:
    light.schedule_monitor("claims/1", every="1h")
    (mine,) = claim_due(light.ctx, "w1", lease=timedelta(0))  # expires at once
    (theirs,) = claim_due(light.ctx, "w2")
    assert mine.id == theirs.id and theirs.lease_owner == "w2"
    late = finish_schedule(light.ctx, mine, "w1", status="ok")
    assert late.detail["recorded"] is False  # w1 lost its lease: its outcome is not recorded
    assert light.schedules()[0].last_status is None
    done = finish_schedule(light.ctx, theirs, "w2", status="ok")
    assert done.next_run_at is not None and light.schedules()[0].last_status == "ok"


def test_a_monitoring_plan_schedule_becomes_a_worker_schedule(light: mw.Workspace) -> None:
    rules = "rules:\n  - {name: drift, metric: drift.share, op: '>', threshold: 0.5}\n"
    light.set_monitoring_plan("claims", rules + "schedule: {every: 2h, window: 1d}\n")
    assert sync_plan_schedules(light.ctx) == []  # nothing holds production yet
    light.apply_policy("name: open\nrules:\n  - evidence: [validation]\n")
    light.validate("claims/1", data=generate_claims(300, seed=2), label="needs_review",
                   n_bootstrap=10, explain_sample=20)
    light.set_alias("claims", "production", 1, reason="release")
    assert sync_plan_schedules(light.ctx) == ["plan:claims"]
    (made,) = light.schedules()
    assert (made.target, made.every, made.options["window"]) == (
        "models:/claims@production", "2h", "1d")
    assert sync_plan_schedules(light.ctx) == []  # in step already
    light.set_monitoring_plan("claims", rules)
    assert sync_plan_schedules(light.ctx) == ["plan:claims"]
    assert light.schedules() == []


def test_cron_schedules_wait_for_their_slot_and_report_missed_ones(light: mw.Workspace) -> None:
    from modelworks.monitoring.schedules import next_cron

    made = light.schedule_monitor("claims/1", cron="0 */6 * * *", window="6h", name="six")
    assert (made.cron, made.every, made.every_seconds) == ("0 */6 * * *", None, None)
    now = utcnow()
    assert now < made.next_run_at <= now + timedelta(hours=6)  # not due at once
    assert made.next_run_at.minute == 0 and made.next_run_at.hour % 6 == 0
    assert next_cron("0 3 * * *", made.next_run_at).hour == 3
    # a worker down for a day and a half: six slots passed, the run happens once, the
    # five skipped slots are reported
    slot = next_cron("0 */6 * * *", now - timedelta(hours=36))
    with light.db.write() as conn:
        conn.execute(update(schedules).where(schedules.c.name == "six").values(
            next_run_at=slot))
    worker = Worker(light)
    (run,) = worker.run_once().schedules
    assert run.status == "no_data" and run.missed == 5
    after = next(s for s in light.schedules() if s.name == "six")
    assert now < after.next_run_at <= now + timedelta(hours=6)
    assert after.next_run_at.hour % 6 == 0
    worker.stop()
    with pytest.raises(mw.InvalidInput) as bad:
        light.schedule_monitor("claims/1", cron="every day", window="1d")
    assert bad.value.field == "cron"
    with pytest.raises(mw.InvalidInput) as both:
        light.schedule_monitor("claims/1", cron="0 3 * * *", every="1h", window="1d")
    assert both.value.field == "every"
    with pytest.raises(mw.InvalidInput) as window:
        light.schedule_monitor("claims/1", cron="0 3 * * *")
    assert window.value.field == "window"
