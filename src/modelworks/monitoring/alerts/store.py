"""Alerts as rows: raised inside the monitor's transaction, deduplicated, cooled down, audited.

The dedupe key is the model's *name*, the rule and the metric key — not the version — so a
retrained version does not re-fire the drift its predecessor already reported. A breach
whose key fired within the rule's cool-down is stored as ``suppressed`` (pointing at the
alert that holds the cool-down) and not delivered, so nothing is lost; the cool-down counts
from the last *firing* alert, so a lasting breach fires again once per cool-down.
Raising happens after the run's audit event, which holds the audit chain's head lock, so
two monitor runs of one model never both decide that a key is cool.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select, update

from ... import audit
from ...context import Context
from ...errors import InvalidInput, NotFound
from ...store.tables import (
    alert_deliveries,
    alerts,
    model_versions,
    monitor_runs,
    registered_models,
    utcnow,
)
from .plan import MonitoringPlan, plan_of
from .rules import RuleCheck, evaluate_rules, metrics_of, segment_of

if TYPE_CHECKING:
    from ..monitor import MonitorResult

__all__ = ["STATUSES", "Alert", "Delivery", "dedupe_key", "deliveries_of", "get_alert",
           "list_alerts", "raise_alerts", "since_time"]

STATUSES = ("firing", "suppressed")


class Alert(BaseModel):
    """One rule breach on one metric key of one monitor run."""

    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    version: int
    rule: str
    severity: str
    metric: str
    op: str
    value: float | None
    threshold: float | None
    status: Literal["firing", "suppressed"]
    message: str
    action: str  # none | retrain
    dedupe_key: str
    monitor_run_id: str | None
    plan_version: int | None
    details: dict[str, Any]
    created_at: datetime
    created_by: str


class Delivery(BaseModel):
    """An alert's delivery to one sink: pending, then delivered or failed."""

    model_config = ConfigDict(frozen=True)

    id: int
    alert_id: str
    sink: str
    target: str | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    updated_at: datetime


def dedupe_key(model: str, rule: str, metric: str) -> str:
    key = f"{model}:{rule}:{metric}"
    if len(key) <= 300:
        return key
    digest = hashlib.sha256(metric.encode()).hexdigest()
    return f"{model}:{rule}:sha256={digest}"[:300]


def _message(model: str, version: int, check: RuleCheck, op: str, threshold: float) -> str:
    return (f"{check.rule}: {check.metric} = {check.value:.4g} {op} {threshold:g} "
            f"on {model}/{version}")


def raise_alerts(ctx: Context, conn: Connection, result: MonitorResult,
                 model_version_id: int, *, now: datetime | None = None) -> list[Alert]:
    """Check the model's plan against ``result`` in the caller's write transaction.

    Stores one row per breach (``firing``, or ``suppressed`` within the rule's cool-down),
    audits each (``alert.raised`` / ``alert.suppressed``) and records what was checked —
    including rules whose metric the run lacks — in the run's ``summary["alert_rules"]``.
    ``now`` (default: the current time) places the breach in time for the cool-down.
    """
    plan = plan_of(conn, result.model)
    if plan is None or not plan.spec.rules:
        return []
    now = now or utcnow()
    checks = evaluate_rules(plan.spec, metrics_of(result))
    raised: list[Alert] = []
    for check in checks:
        if check.status == "breached":
            raised.append(_store(ctx, conn, result, model_version_id, plan, check, now))
    _record_checks(conn, result.id, plan, checks, raised)
    return raised


def _store(ctx: Context, conn: Connection, result: MonitorResult, model_version_id: int,
           plan: MonitoringPlan, check: RuleCheck, now: datetime) -> Alert:
    rule = plan.spec.rule(check.rule)
    key = dedupe_key(result.model, rule.name, check.metric)
    last = conn.execute(select(alerts.c.id, alerts.c.created_at).where(
        alerts.c.dedupe_key == key, alerts.c.status == "firing")
        .order_by(alerts.c.created_at.desc()).limit(1)).first()
    cooling = last is not None and now - last.created_at < rule.cooldown_span
    details: dict[str, Any] = {"op": rule.op, "action": rule.action,
                               "plan_version": plan.version, "cooldown": rule.cooldown}
    segment = segment_of(check.metric)
    if segment is not None:
        details["segment"] = {"column": segment[0], "value": segment[1]}
    if cooling:
        assert last is not None
        details["suppressed_by"] = last.id
        details["cooldown_until"] = (last.created_at + rule.cooldown_span).isoformat()
    status: Literal["firing", "suppressed"] = "suppressed" if cooling else "firing"
    assert check.value is not None
    alert = Alert(id=uuid.uuid4().hex, model=result.model, version=result.version,
                  rule=rule.name, severity=rule.severity, metric=check.metric, op=rule.op,
                  value=check.value, threshold=rule.threshold, status=status,
                  message=_message(result.model, result.version, check, rule.op,
                                   rule.threshold),
                  action=rule.action, dedupe_key=key, monitor_run_id=result.id,
                  plan_version=plan.version, details=details, created_at=now,
                  created_by=ctx.actor)
    conn.execute(insert(alerts).values(
        id=alert.id, model_version_id=model_version_id, monitor_run_id=result.id,
        rule=alert.rule, severity=alert.severity, metric=alert.metric, value=alert.value,
        threshold=alert.threshold, status=status, dedupe_key=key, message=alert.message,
        details=details, created_at=now, created_by=ctx.actor))
    audit.append(ctx.db, conn, actor=ctx.actor,
                 action="alert.raised" if status == "firing" else "alert.suppressed",
                 entity_type="alert", entity_id=alert.id, payload={
                     "model": alert.model, "version": alert.version, "rule": alert.rule,
                     "metric": alert.metric, "value": alert.value, "op": alert.op,
                     "threshold": alert.threshold, "severity": alert.severity,
                     "action": alert.action, "monitor_run": result.id,
                     "plan_version": plan.version,
                     "suppressed_by": details.get("suppressed_by")})
    return alert


def _record_checks(conn: Connection, run_id: str, plan: MonitoringPlan,
                   checks: list[RuleCheck], raised: list[Alert]) -> None:
    """What the plan checked, kept with the run (rules the run lacked the metric for too)."""
    row = conn.execute(select(monitor_runs.c.summary).where(monitor_runs.c.id == run_id)).first()
    if row is None:
        return
    record = {
        "plan_version": plan.version,
        "checked": sum(c.status != "not_evaluated" for c in checks),
        "breached": [{"rule": c.rule, "metric": c.metric, "value": c.value}
                     for c in checks if c.status == "breached"][:200],
        "not_evaluated": [{"rule": c.rule, "metric": c.metric, "reason": c.reason}
                          for c in checks if c.status == "not_evaluated"][:200],
        "alerts": {a.id: a.status for a in raised[:200]},
    }
    conn.execute(update(monitor_runs).where(monitor_runs.c.id == run_id).values(
        summary={**dict(row.summary or {}), "alert_rules": record}))


# --- reading ---------------------------------------------------------------------------


_SELECT = (select(alerts, registered_models.c.name.label("model_name"),
                  model_versions.c.version.label("model_version"))
           .join(model_versions, model_versions.c.id == alerts.c.model_version_id)
           .join(registered_models, registered_models.c.id == model_versions.c.model_id))


def _alert(row: Any) -> Alert:
    details = dict(row.details or {})
    return Alert(id=row.id, model=row.model_name, version=row.model_version, rule=row.rule,
                 severity=row.severity, metric=row.metric, op=str(details.get("op", "")),
                 value=row.value, threshold=row.threshold, status=row.status,
                 message=row.message, action=str(details.get("action", "none")),
                 dedupe_key=row.dedupe_key, monitor_run_id=row.monitor_run_id,
                 plan_version=details.get("plan_version"), details=details,
                 created_at=row.created_at, created_by=row.created_by)


def list_alerts(conn: Connection, *, model: str | None = None, status: str | None = None,
                since: datetime | None = None, monitor_run: str | None = None,
                limit: int | None = 100) -> list[Alert]:
    """Stored alerts, newest first."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; statuses are {', '.join(STATUSES)}",
                           field="status")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise InvalidInput("limit must be a positive integer", field="limit")
    stmt = _SELECT
    if model is not None:
        if conn.execute(select(registered_models.c.id).where(
                registered_models.c.name == model)).first() is None:
            raise NotFound(f"no registered model named {model!r}")
        stmt = stmt.where(registered_models.c.name == model)
    if status is not None:
        stmt = stmt.where(alerts.c.status == status)
    if since is not None:
        stmt = stmt.where(alerts.c.created_at >= since)
    if monitor_run is not None:
        stmt = stmt.where(alerts.c.monitor_run_id == monitor_run)
    stmt = stmt.order_by(alerts.c.created_at.desc(), alerts.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_alert(r) for r in conn.execute(stmt)]


def since_time(value: datetime | str | None, *, now: datetime | None = None
               ) -> datetime | None:
    """A lower time bound from a datetime, an ISO 8601 string, or a span back from now
    (``6h``, ``1d``)."""
    from ...serving.prediction_reader import as_utc
    from ..monitor import SPAN, parse_window

    if isinstance(value, str) and SPAN.match(value.strip()):
        try:
            return (now or utcnow()) - parse_window(value)
        except InvalidInput:
            raise InvalidInput(f"since must be a time or a span such as 1d, got {value!r}",
                               field="since") from None
    return as_utc(value, "since")


def get_alert(conn: Connection, alert_id: str) -> Alert:
    row = conn.execute(_SELECT.where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    return _alert(row)


def deliveries_of(conn: Connection, alert_id: str) -> list[Delivery]:
    """The alert's deliveries, one per sink, in sink order."""
    rows = conn.execute(select(alert_deliveries).where(alert_deliveries.c.alert_id == alert_id)
                        .order_by(alert_deliveries.c.id)).all()
    return [Delivery(id=r.id, alert_id=r.alert_id, sink=r.sink, target=r.target,
                     status=r.status, attempts=r.attempts, last_error=r.last_error,
                     updated_at=r.updated_at) for r in rows]

