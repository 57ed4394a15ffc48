"""Plans stored and alerts raised, cooled down, audited and delivered — on SQLite and
PostgreSQL, with a real webhook receiver on a socket."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select, update

import modelworks as mw
from modelworks.monitoring.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    deliver_pending,
    join_outstanding,
    raise_alerts,
    verify_signature,
)
from modelworks.registry.models import version_id
from modelworks.store.tables import alert_deliveries, monitor_runs

SECRET = "s3cret-for-tests"


def _frame(n: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.normal(100 + shift, 20, n),
                       "prior": rng.integers(0, 5, n).astype(float),
                       "age": rng.normal(45, 10, n)})
    df["y"] = ((df["amount"] + 10 * df["prior"] + rng.normal(0, 10, n)) > 120).astype(int)
    return df


def _register(ws: mw.Workspace, seed: int = 0) -> mw.ModelVersion:
    train = _frame(1_500, seed=seed)
    x = train[["amount", "prior", "age"]]
    with ws.start_run(experiment="alerts") as run:
        run.use_dataset(ws.log_dataset(train, name="train"), role="train")
        return ws.register_model("claims", model=LogisticRegression(max_iter=2000).fit(
            x, train["y"]), run=run, input_example=x.head())


@pytest.fixture
def ws(db_location: tuple[str, str]) -> Iterator[mw.Workspace]:
    location, artifacts = db_location
    workspace = mw.Workspace(location, artifacts=artifacts, user="alice")
    _register(workspace)
    yield workspace
    join_outstanding(30)
    workspace.close()


class Hook:
    """A webhook receiver: checks the signature, fails the first ``fail`` requests with
    ``status``, and can hold requests until released."""

    def __init__(self, *, fail: int = 0, status: int = 503, hold: bool = False) -> None:
        self.fail, self.status = fail, status
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.arrived = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                hook.arrived.set()
                hook.release.wait(30)
                signed = verify_signature(SECRET, body, self.headers.get(SIGNATURE_HEADER))
                payload = json.loads(body)
                fresh = self.headers.get(TIMESTAMP_HEADER) == str(payload["timestamp"])
                code = 401 if not (signed and fresh) else (
                    hook.status if hook.attempts <= hook.fail else 200)
                if code == 200:
                    hook.received.append(payload)
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[list[Hook]]:
    made: list[Hook] = []
    yield made
    for hook in made:
        hook.close()


def _plan(*, sinks: str = "sinks: []\n", cooldown: str = "6h") -> str:
    return f"""\
rules:
  - name: dataset-drift
    metric: drift.share
    op: ">="
    threshold: 0.3
    severity: critical
    cooldown: {cooldown}
    action: retrain
  - name: column
    metric: drift.column.*.drifted
    op: "=="
    threshold: 1
  - name: accuracy-drop
    metric: performance.accuracy.drop
    op: ">"
    threshold: 0.05
{sinks}"""


def _deliveries(ws: mw.Workspace, alert_id: str) -> list[Any]:
    return ws.alert_deliveries(alert_id)


def test_plans_are_versioned_and_audited(ws: mw.Workspace, tmp_path: Path) -> None:
    with pytest.raises(mw.NotFound, match="has no monitoring plan"):
        ws.monitoring_plan("claims")
    first = ws.set_monitoring_plan("claims", _plan())
    assert (first.version, [r.name for r in first.spec.rules]) == (
        1, ["dataset-drift", "column", "accuracy-drop"])
    assert ws.set_monitoring_plan("claims", _plan()).version == 1  # same text: same version
    path = tmp_path / "plan.yaml"
    path.write_text(_plan(cooldown="1d"))
    second = ws.set_monitoring_plan("claims", path)
    assert second.version == 2 and second.spec.rules[0].cooldown == "1d"
    third = ws.set_monitoring_plan("claims", {"rules": [
        {"name": "rows", "metric": "rows", "op": "<", "threshold": 100}]})
    assert ws.monitoring_plan("claims").version == third.version == 3
    assert ws.monitoring_plan("claims", version=1).content == _plan()
    events = ws.audit_log(action="monitoring_plan.set", limit=None)
    assert [e.payload["version"] for e in events] == [3, 2, 1]
    assert events[0].entity_id == "claims" and events[0].actor == "alice"
    with pytest.raises(mw.NotFound, match="no registered model"):
        ws.set_monitoring_plan("nope", _plan())
    with pytest.raises(mw.InvalidInput, match=r"line 4: rules\.0\.op"):
        ws.set_monitoring_plan("claims", _plan().replace('">="', '"=>"'))
    assert ws.monitoring_plan("claims").version == 3  # a bad plan stores nothing


def test_a_run_raises_alerts_with_cooldown_and_dedupe(ws: mw.Workspace) -> None:
    ws.set_monitoring_plan("claims", _plan())
    monitor = ws.monitor("models:/claims/1")
    calm = monitor.run(data=_frame(1_000, seed=1))
    assert calm.alerts == []
    run = monitor.run(data=_frame(1_000, shift=60, seed=2))
    by_rule = {a.rule: a for a in run.alerts}
    drift = by_rule["dataset-drift"]
    assert (drift.status, drift.severity, drift.action, drift.metric) == (
        "firing", "critical", "retrain", "drift.share")
    assert drift.value is not None and drift.value >= 0.3 and drift.monitor_run_id == run.id
    columns = sorted(a.metric for a in run.alerts if a.rule == "column")
    assert "drift.column.amount.drifted" in columns and all(
        a.status == "firing" for a in run.alerts)
    assert "accuracy-drop" not in by_rule  # no labels: not evaluated, not an error
    with ws.db.read() as conn:
        summary = conn.execute(select(monitor_runs.c.summary).where(
            monitor_runs.c.id == run.id)).scalar_one()
    checked = summary["alert_rules"]
    assert checked["not_evaluated"] == [{"rule": "accuracy-drop",
                                         "metric": "performance.accuracy.drop",
                                         "reason": "not evaluated: metric absent"}]
    assert set(checked["alerts"]) == {a.id for a in run.alerts}
    assert summary["drifted_columns"]  # the monitor's own summary is kept
    stored = ws.alerts("claims")
    assert {a.id for a in stored} == {a.id for a in run.alerts}
    listed = {r.id: r for r in ws.monitor_runs("models:/claims/1")}  # read back: same alerts
    assert {a.id for a in listed[run.id].alerts} == {a.id for a in run.alerts}
    assert listed[calm.id].alerts == [] and listed[run.id].result_sha256 == run.result_sha256
    raised = ws.audit_log(action="alert.raised", limit=None)
    assert {e.entity_id for e in raised} == {a.id for a in run.alerts}
    assert all(e.payload["monitor_run"] == run.id for e in raised)

    # within the cool-down (6h) the same breach is stored as suppressed, pointing at it
    with ws.db.write() as conn:
        vid = version_id(conn, "claims", 1)
        held = raise_alerts(ws.ctx, conn, run, vid, now=drift.created_at + timedelta(hours=5))
    again = next(a for a in held if a.rule == "dataset-drift")
    assert again.status == "suppressed" and again.details["suppressed_by"] == drift.id
    # the default 1h cool-down of the column rule has passed by then: it fires again
    assert all(a.status == "firing" for a in held if a.rule == "column")
    suppressed = ws.audit_log(action="alert.suppressed", limit=None)
    assert [e.entity_id for e in suppressed] == [again.id]
    # after the cool-down it fires again (counted from the last *firing* alert)
    with ws.db.write() as conn:
        later = raise_alerts(ws.ctx, conn, run, vid, now=drift.created_at + timedelta(hours=7))
    assert next(a for a in later if a.rule == "dataset-drift").status == "firing"
    with ws.db.write() as conn:
        cooled = raise_alerts(ws.ctx, conn, run, vid,
                              now=drift.created_at + timedelta(hours=12))
    assert next(a for a in cooled if a.rule == "dataset-drift").status == "suppressed"

    # a retrained version does not re-fire the drift its predecessor reported (same key)
    _register(ws, seed=9)
    v2 = ws.monitor("models:/claims/2").run(data=_frame(1_000, shift=60, seed=3))
    v2_drift = next(a for a in v2.alerts if a.rule == "dataset-drift")
    assert (v2_drift.version, v2_drift.status) == (2, "suppressed")

    assert {a.status for a in ws.alerts(status="suppressed", limit=None)} == {"suppressed"}
    newest = ws.alerts("claims", limit=2)  # newest first: the ones placed 12h ahead
    assert [a.created_at for a in newest] == [cooled[0].created_at] * 2
    assert {a.version for a in ws.alerts("claims", limit=None)} == {1, 2}
    assert ws.alerts(since=drift.created_at + timedelta(days=1)) == []
    assert len(ws.alerts(since="1d", limit=None)) == len(ws.alerts(limit=None))
    with pytest.raises(mw.InvalidInput, match="status"):
        ws.alerts(status="open")
    with pytest.raises(mw.NotFound):
        ws.alerts("nope")
    assert ws.verify_audit().ok


def test_log_and_file_sinks(ws: mw.Workspace, tmp_path: Path,
                            caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "alerts" / "claims.jsonl"
    ws.set_monitoring_plan("claims", _plan(sinks=f"sinks:\n  - type: log\n  - type: file\n"
                                                f"    path: {out}\n"))
    monitor = ws.monitor("claims/1")
    with caplog.at_level(logging.WARNING, logger="modelworks.alerts"):
        run = monitor.run(data=_frame(1_000, shift=60, seed=2))
    firing = {a.id for a in run.alerts}
    assert firing and any("dataset-drift" in r.getMessage() and r.levelno == logging.CRITICAL
                          for r in caplog.records)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["id"] for line in lines} == firing
    for alert in run.alerts:
        assert [(d.sink, d.status, d.attempts) for d in _deliveries(ws, alert.id)] == [
            ("log", "delivered", 1), ("file", "delivered", 1)]
    # a suppressed repeat is stored but not sent anywhere
    again = monitor.run(data=_frame(1_000, shift=60, seed=4))
    held = [a for a in again.alerts if a.rule == "dataset-drift"]
    assert held[0].status == "suppressed" and _deliveries(ws, held[0].id) == []
    assert len(out.read_text().splitlines()) == len(lines) + sum(
        a.status == "firing" for a in again.alerts)
    assert len(ws.audit_log(action="alert.delivered", limit=None)) == 2 * len(firing) + 2 * sum(
        a.status == "firing" for a in again.alerts)


def _hook_plan(hook: Hook, *, retries: int = 3, secret: str = "MW_TEST_HOOK_SECRET") -> str:
    return ("rules:\n  - {name: dataset-drift, metric: drift.share, op: '>=', threshold: 0.3}\n"
            f"sinks:\n  - type: webhook\n    url: {hook.url}\n    secret_env: {secret}\n"
            f"    retries: {retries}\n    backoff: 0.01s\n    timeout: 10\n")


def test_webhook_is_signed_retried_and_never_blocks_the_monitor(
        ws: mw.Workspace, hooks: list[Hook], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_TEST_HOOK_SECRET", SECRET)
    hook = Hook(fail=2, hold=True)
    hooks.append(hook)
    ws.set_monitoring_plan("claims", _hook_plan(hook))
    run = ws.monitor("claims/1").run(data=_frame(1_000, shift=60, seed=2))
    (alert,) = run.alerts
    # the run returned while the receiver still holds the first request
    assert hook.arrived.wait(30)
    assert [(d.status, d.attempts) for d in _deliveries(ws, alert.id)] == [("pending", 0)]
    hook.release.set()
    assert join_outstanding(30)
    (delivery,) = _deliveries(ws, alert.id)
    assert (delivery.sink, delivery.target, delivery.status, delivery.attempts) == (
        "webhook", hook.url, "delivered", 3)
    assert hook.attempts == 3 and len(hook.received) == 1
    body = hook.received[0]
    assert body["alert"]["id"] == alert.id and body["attempt"] == 3
    assert body["text"] == alert.message and body["type"] == "modelworks.alert"
    (event,) = ws.audit_log(action="alert.delivered", limit=None)
    assert event.entity_id == alert.id and event.payload["attempts"] == 3


def test_webhook_failures_are_recorded(ws: mw.Workspace, hooks: list[Hook],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_TEST_HOOK_SECRET", SECRET)
    down, refusing = Hook(fail=100), Hook(fail=100, status=400)
    hooks += [down, refusing]
    plan = _hook_plan(down, retries=2) + (
        f"  - {{type: webhook, url: '{refusing.url}', secret_env: MW_TEST_HOOK_SECRET, "
        "backoff: 0.01s}\n"
        "  - {type: webhook, url: 'http://127.0.0.1:9/unset', secret_env: MW_UNSET_SECRET}\n")
    ws.set_monitoring_plan("claims", plan)
    run = ws.monitor("claims/1").run(data=_frame(1_000, shift=60, seed=2))
    assert join_outstanding(30)
    (alert,) = run.alerts
    found = {d.target: d for d in _deliveries(ws, alert.id)}
    assert (found[down.url].status, found[down.url].attempts) == ("failed", 3)
    assert found[down.url].last_error is not None and "503" in found[down.url].last_error
    # a 4xx other than 408/429 will not get better: one attempt
    assert (found[refusing.url].status, found[refusing.url].attempts) == ("failed", 1)
    unset = found["http://127.0.0.1:9/unset"]
    assert unset.status == "failed" and "MW_UNSET_SECRET" in (unset.last_error or "")
    assert (down.attempts, refusing.attempts) == (3, 1)
    failed = ws.audit_log(action="alert.delivery_failed", limit=None)
    assert len(failed) == 3 and {e.entity_id for e in failed} == {alert.id}


def test_pending_deliveries_are_sent_again(ws: mw.Workspace, hooks: list[Hook],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_TEST_HOOK_SECRET", SECRET)
    hook = Hook()
    hooks.append(hook)
    ws.set_monitoring_plan("claims", _hook_plan(hook))
    (alert,) = ws.monitor("claims/1").run(data=_frame(1_000, shift=60, seed=2)).alerts
    assert join_outstanding(30)
    (delivery,) = _deliveries(ws, alert.id)
    # as if the process had exited between two attempts
    with ws.db.write() as conn:
        conn.execute(update(alert_deliveries).where(alert_deliveries.c.id == delivery.id)
                     .values(status="pending", updated_at=delivery.updated_at
                             - timedelta(hours=1)))
    assert deliver_pending(ws.ctx, older_than=timedelta(hours=2)).delivery_ids == []
    handle = deliver_pending(ws.ctx, older_than=timedelta(minutes=5), wait=True, timeout=30)
    assert handle.delivery_ids == [delivery.id] and handle.done
    (again,) = _deliveries(ws, alert.id)
    assert (again.status, again.attempts) == ("delivered", 2)
    assert [b["alert"]["id"] for b in hook.received] == [alert.id, alert.id]


def test_alerts_and_plan_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelworks.cli.main import app

    folder = tmp_path / "ws"
    with mw.Workspace(folder, user="alice") as ws:
        _register(ws)
    plan = tmp_path / "plan.yaml"
    plan.write_text(_plan())
    runner = CliRunner()
    base = ["-w", str(folder), "--user", "alice"]
    out = runner.invoke(app, [*base, "monitor", "plan", "set", "claims", str(plan)])
    assert out.exit_code == 0, out.stderr
    assert "version 1, 3 rule(s)" in out.stdout
    shown = runner.invoke(app, [*base, "monitor", "plan", "show", "claims", "--json"])
    assert json.loads(shown.stdout)["spec"]["rules"][0]["name"] == "dataset-drift"
    table = runner.invoke(app, [*base, "monitor", "plan", "show", "claims"])
    assert "performance.accuracy.drop" in table.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(_plan().replace("threshold: 0.3", "threshold: high"))
    refused = runner.invoke(app, [*base, "monitor", "plan", "set", "claims", str(bad)])
    assert refused.exit_code == 1 and "line 5: rules.0.threshold" in refused.stderr
    data = tmp_path / "shifted.parquet"
    _frame(1_000, shift=60, seed=2).to_parquet(data)
    ran = runner.invoke(app, [*base, "monitor", "run", "claims/1", "--data", str(data),
                              "--json"])
    assert ran.exit_code == 0, ran.stderr
    listed = runner.invoke(app, [*base, "alerts", "list", "--model", "claims", "--json"])
    alerts = json.loads(listed.stdout)
    assert alerts and {a["status"] for a in alerts} == {"firing"}
    table = runner.invoke(app, [*base, "alerts", "list", "--status", "firing", "--since", "1h"])
    assert table.exit_code == 0 and "dataset-drift" in table.stdout
    one = runner.invoke(app, [*base, "alerts", "show", alerts[0]["id"], "--json"])
    assert json.loads(one.stdout)["alert"]["id"] == alerts[0]["id"]
    assert json.loads(one.stdout)["deliveries"] == []  # sinks: [] keeps them in the table
    missing = runner.invoke(app, [*base, "alerts", "show", "nope"])
    assert missing.exit_code == 1 and "no alert" in missing.stderr
    wrong = runner.invoke(app, [*base, "alerts", "list", "--status", "open"])
    assert wrong.exit_code == 1 and "status" in wrong.stderr
