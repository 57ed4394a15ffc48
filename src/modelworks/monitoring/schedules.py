"""Schedules: work the worker runs on a clock — a monitor run or a retraining — leased per row.

    ws.schedule_monitor("models:/claims@production", every="1h")    # window: the last 1h
    ws.schedule_retrain("models:/claims@production", every="7d")

A schedule is one ``mw_schedules`` row, on a clock of ``every`` (``every_seconds``) or a cron
expression (``cron``, UTC, five fields as crontab has them). An ``every`` schedule's first run
is due at once (the worker's next tick), a cron schedule's at its next cron time; after that
``next_run_at`` advances from the previous slot, not from when the run ended, so a schedule
does not drift. Kinds: ``monitor`` and ``retrain`` (a model URI) and ``pipeline``
(``module:pipeline``, run with its stored parameters and executor).

A worker claims a due row with one conditional UPDATE (``lease_until`` free or expired), which
exactly one worker wins on SQLite and PostgreSQL alike; after the run it records
``last_run_at``/``last_status`` (``ok``, ``no_data``, ``failed``)/``last_error``, moves
``next_run_at`` past now and frees the lease. A worker that dies mid-run leaves a lease that
expires (15 minutes by default), so the run is taken again. Slots missed while no worker ran
are skipped, not replayed in a burst — and reported, never silently: their count goes into
``last_error`` and an audit event ``schedule.missed``.

A monitoring plan's ``schedule: {every: 1h, window: 1h}`` becomes the schedule ``plan:MODEL``
(monitoring ``MODEL@production``), created, changed and removed by the worker as the plan
changes (:func:`sync_plan_schedules`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, delete, insert, or_, select, true, update

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound
from ..registry.models import resolve
from ..registry.uri import parse_model_uri
from ..store.tables import schedules, utcnow
from .monitor import parse_window

__all__ = ["KINDS", "Schedule", "ScheduleRun", "claim_due", "delete_schedule",
           "finish_schedule", "list_schedules", "next_cron", "put_schedule", "run_due",
           "run_schedule", "sync_plan_schedules"]

KINDS = ("monitor", "retrain", "pipeline")
_MAX_MISSED = 100_000  # cron slots counted past a long outage before giving up counting
PLAN_PREFIX = "plan:"  # schedules kept in step with monitoring plans by the worker
DEFAULT_LEASE = timedelta(minutes=15)
_MAX_NAME = 200


class Schedule(BaseModel):
    """One schedule and its last outcome."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    kind: str
    target: str
    every: str | None  # None for a cron schedule
    every_seconds: float | None
    cron: str | None = None
    options: dict[str, Any]
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_status: str | None
    last_error: str | None
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    created_by: str


class ScheduleRun(BaseModel):
    """What one due schedule did on one worker tick."""

    model_config = ConfigDict(frozen=True)

    schedule: str
    kind: str
    target: str
    status: str  # ok | no_data | failed
    error: str | None
    detail: dict[str, Any]
    missed: int
    next_run_at: datetime | None


def _record(row: Any) -> Schedule:
    options = dict(row.options)
    every = options.pop("every", None)
    if every is None and row.every_seconds is not None:
        every = f"{row.every_seconds:g}s"
    return Schedule(id=row.id, name=row.name, kind=row.kind, target=row.target,
                    every=every, cron=row.cron,
                    every_seconds=None if row.every_seconds is None else float(row.every_seconds),
                    options=options,
                    enabled=bool(row.enabled), next_run_at=row.next_run_at,
                    last_run_at=row.last_run_at, last_status=row.last_status,
                    last_error=row.last_error, lease_owner=row.lease_owner,
                    lease_until=row.lease_until, created_at=row.created_at,
                    created_by=row.created_by)


def _every(every: object) -> tuple[str, float]:
    try:
        span = parse_window(every)  # type: ignore[arg-type]
    except InvalidInput as exc:
        raise InvalidInput(f"every must look like 30m, 1h, 1d or 2w, got {every!r}",
                           field="every") from exc
    if span < timedelta(seconds=1):
        raise InvalidInput("every must be at least 1s", field="every")
    return str(every).strip(), span.total_seconds()


def _cron(cron: object) -> str:
    from croniter import croniter

    if not isinstance(cron, str) or not cron.strip() or not croniter.is_valid(cron.strip()):
        raise InvalidInput(f"cron must be a cron expression such as '0 3 * * *' (minute hour "
                           f"day month weekday, UTC), got {cron!r}", field="cron")
    return " ".join(cron.split())


def next_cron(cron: str, after: datetime) -> datetime:
    """The first slot of ``cron`` strictly after ``after`` (UTC)."""
    from croniter import croniter

    nxt = croniter(cron, after).get_next(datetime)
    return nxt if nxt.tzinfo is not None else nxt.replace(tzinfo=UTC)


def _pipeline_target(target: object) -> str:
    from ..pipelines.runner import as_pipeline

    if not isinstance(target, str) or ":" not in target:
        raise InvalidInput(f"a pipeline schedule's target is module:pipeline, got {target!r}",
                           field="pipeline")
    as_pipeline(target.strip())  # importable and a pipeline: now, not at the first run
    return target.strip()


def put_schedule(ctx: Context, *, kind: str, target: str, every: str | None = None,
                 cron: str | None = None, name: str | None = None,
                 options: dict[str, Any] | None = None) -> Schedule:
    """Create the schedule, or change the one of that name (same kind); audited.

    Exactly one of ``every`` and ``cron``. A changed schedule keeps its next due time; a
    new one is due at once (``every``) or at its next cron time.
    """
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, got {kind!r}",
                           field="kind")
    if (every is None) == (cron is None):
        raise InvalidInput("give every (e.g. 1h) or cron (e.g. '0 3 * * *'), one of them",
                           field="every")
    every_text, seconds = _every(every) if every is not None else (None, None)
    cron_text = _cron(cron) if cron is not None else None
    uri = _pipeline_target(target) if kind == "pipeline" else str(parse_model_uri(target))
    name = name if name is not None else f"{kind}:{uri.removeprefix('models:/')}"
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise InvalidInput(f"name must be 1-{_MAX_NAME} characters", field="name")
    name = name.strip()
    extra = {"every": every_text} if every_text is not None else {}
    values = {"kind": kind, "target": uri, "every_seconds": seconds, "cron": cron_text,
              "options": {**(options or {}), **extra}, "enabled": True}
    with ctx.db.write() as conn:
        if kind != "pipeline":
            resolve(conn, parse_model_uri(uri))  # NotFound now, not at the first run
        if kind == "retrain":
            from .training_specs import get_training_spec

            get_training_spec(conn, parse_model_uri(uri).name)
        row = conn.execute(select(schedules).where(schedules.c.name == name)).first()
        now = utcnow()
        if row is None:
            first = next_cron(cron_text, now) if cron_text is not None else now
            conn.execute(insert(schedules).values(
                name=name, next_run_at=first, last_run_at=None, last_status=None,
                last_error=None, lease_owner=None, lease_until=None, created_at=now,
                created_by=ctx.actor, **values))
            action = "schedule.created"
        else:
            if row.kind != kind:
                raise Conflict(f"schedule {name!r} is a {row.kind} schedule, not {kind}: "
                               "remove it first or pick another name")
            conn.execute(update(schedules).where(schedules.c.id == row.id).values(**values))
            action = "schedule.updated"
        audit.append(ctx.db, conn, actor=ctx.actor, action=action, entity_type="schedule",
                     entity_id=name, payload=values)
        return _record(conn.execute(select(schedules).where(schedules.c.name == name)).one())


def list_schedules(conn: Connection) -> list[Schedule]:
    return [_record(r) for r in conn.execute(select(schedules).order_by(schedules.c.name))]


def delete_schedule(ctx: Context, name: str) -> None:
    """Remove a schedule (audited); a run in progress finishes but is not recorded on it."""
    with ctx.db.write() as conn:
        row = conn.execute(select(schedules).where(schedules.c.name == name)).first()
        if row is None:
            names = [s.name for s in list_schedules(conn)][:10]
            raise NotFound(f"no schedule named {name!r} (schedules: "
                           f"{', '.join(names) or 'none'})")
        conn.execute(delete(schedules).where(schedules.c.id == row.id))
        audit.append(ctx.db, conn, actor=ctx.actor, action="schedule.deleted",
                     entity_type="schedule", entity_id=name,
                     payload={"kind": row.kind, "target": row.target})


def claim_due(ctx: Context, owner: str, *, lease: timedelta = DEFAULT_LEASE,
              limit: int = 20) -> list[Schedule]:
    """Lease the due schedules no other worker holds; each row goes to one worker only."""
    now = utcnow()
    free = or_(schedules.c.lease_until.is_(None), schedules.c.lease_until < now)
    due = (schedules.c.enabled == true(), schedules.c.next_run_at <= now, free)
    with ctx.db.read() as conn:
        ids = conn.execute(select(schedules.c.id).where(*due).order_by(
            schedules.c.next_run_at).limit(limit)).scalars().all()
    claimed = []
    for schedule_id in ids:
        with ctx.db.write() as conn:
            won = conn.execute(update(schedules).where(schedules.c.id == schedule_id, *due)
                               .values(lease_owner=owner, lease_until=now + lease)).rowcount
            if won == 1:
                claimed.append(_record(conn.execute(select(schedules).where(
                    schedules.c.id == schedule_id)).one()))
    return claimed


def finish_schedule(ctx: Context, schedule: Schedule, owner: str, *, status: str,
                    error: str | None = None, detail: dict[str, Any] | None = None
                    ) -> ScheduleRun:
    """Record the run, move ``next_run_at`` past now (reporting skipped slots), free the
    lease. A lease lost meanwhile (expired, taken by another worker) records nothing."""
    now = utcnow()
    detail = dict(detail or {})
    with ctx.db.write() as conn:
        row = conn.execute(select(schedules).where(schedules.c.id == schedule.id)).first()
        if row is None or row.lease_owner != owner:
            return ScheduleRun(schedule=schedule.name, kind=schedule.kind,
                               target=schedule.target, status=status, error=error,
                               detail={**detail, "recorded": False}, missed=0,
                               next_run_at=None)
        slot = row.next_run_at
        next_at, skipped_slots = _advance(row, slot, now)
        missed = len(skipped_slots)
        note = error
        if missed:
            first, last = skipped_slots[0], skipped_slots[-1]
            skipped = (f"{missed} missed run(s) skipped (slots {first.isoformat()} "
                       f"to {last.isoformat()} had no worker)")
            note = f"{error}; {skipped}" if error else skipped
            audit.append(ctx.db, conn, actor=ctx.actor, action="schedule.missed",
                         entity_type="schedule", entity_id=row.name, payload={
                             "missed": missed, "first": first.isoformat(),
                             "last": last.isoformat()})
        conn.execute(update(schedules).where(schedules.c.id == row.id).values(
            last_run_at=now, last_status=status, last_error=note, next_run_at=next_at,
            lease_owner=None, lease_until=None))
        audit.append(ctx.db, conn, actor=ctx.actor, action="schedule.ran",
                     entity_type="schedule", entity_id=row.name, payload={
                         "status": status, "error": error, "detail": detail,
                         "slot": slot.isoformat(), "next_run_at": next_at.isoformat(),
                         "missed": missed})
    return ScheduleRun(schedule=schedule.name, kind=schedule.kind, target=schedule.target,
                       status=status, error=note, detail=detail, missed=missed,
                       next_run_at=next_at)


def _advance(row: Any, slot: datetime, now: datetime) -> tuple[datetime, list[datetime]]:
    """The next slot after ``now`` and the slots skipped between ``slot`` and it (a cron
    outage longer than ``_MAX_MISSED`` slots reports only the first and the count so far)."""
    if row.cron is not None:
        skipped: list[datetime] = []
        nxt = next_cron(row.cron, slot)
        while nxt <= now and len(skipped) < _MAX_MISSED:
            skipped.append(nxt)
            nxt = next_cron(row.cron, nxt)
        if nxt <= now:
            nxt = next_cron(row.cron, now)
        return nxt, skipped
    every = timedelta(seconds=float(row.every_seconds))
    steps = max(1, math.floor((now - slot) / every) + 1)
    return slot + steps * every, [slot + i * every for i in range(1, steps)]


def sync_plan_schedules(ctx: Context) -> list[str]:
    """Keep one ``plan:MODEL`` monitor schedule per monitoring plan with a ``schedule:``.

    The schedule monitors the version holding ``production`` (a model without one gets its
    schedule once it has); a plan that drops its schedule drops the row. Returns the names
    created, changed or removed.
    """
    from ..store.tables import monitoring_plans, registered_models
    from .alerts.plan import plan_of

    with ctx.db.read() as conn:
        models = conn.execute(select(registered_models.c.name).where(
            registered_models.c.id.in_(select(monitoring_plans.c.model_id)))).scalars().all()
        wanted: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for model in models:
            plan = plan_of(conn, model)
            if plan is not None and plan.spec.schedule is not None:
                every = plan.spec.schedule.every
                wanted[f"{PLAN_PREFIX}{model}"] = (f"models:/{model}@production", every, {
                    "window": plan.spec.schedule.window or every, "reference": "training"})
        have = {s.name: s for s in list_schedules(conn) if s.name.startswith(PLAN_PREFIX)}
    changed = []
    for name, (target, every, options) in wanted.items():
        now = have.get(name)
        if now is not None and (now.target, now.every, now.options) == (target, every, options):
            continue
        try:
            put_schedule(ctx, kind="monitor", target=target, every=every, name=name,
                         options=options)
        except NotFound:
            continue  # nothing holds production yet
        changed.append(name)
    for name in have.keys() - wanted.keys():
        delete_schedule(ctx, name)
        changed.append(name)
    return changed


def run_schedule(ctx: Context, schedule: Schedule, *, journal_dir: str | Path | None = None
                 ) -> tuple[str, str | None, dict[str, Any]]:
    """Run one schedule's work now: (status, error, detail). Never raises for its work."""
    try:
        if schedule.kind == "monitor":
            from .monitor import Monitor

            monitor = Monitor(ctx, schedule.target,
                              reference=schedule.options.get("reference", "training"),
                              journal_dir=journal_dir)
            try:
                result = monitor.run(window=schedule.options.get("window") or schedule.every)
            except InvalidInput as exc:
                if exc.field == "window":  # no predictions in the window: nothing to judge
                    return "no_data", str(exc), {}
                raise
            return "ok", None, {
                "monitor_run": result.id, "rows": result.rows,
                "drift_share": result.drift.share, "drifted_columns": result.drifted_columns,
                "alerts": len(getattr(result, "alerts", []) or [])}
        if schedule.kind == "pipeline":
            from ..pipelines.runner import run_pipeline

            done = run_pipeline(ctx, schedule.target,
                                params=dict(schedule.options.get("params") or {}),
                                executor=str(schedule.options.get("executor") or "local"),
                                cache=bool(schedule.options.get("cache", True)))
            return "ok", None, {"pipeline_run": done.id, "status": done.status,
                                "cached_steps": len(done.cached_steps)}
        from .retraining import retrain

        outcome = retrain(ctx, schedule.target, trigger="schedule", trigger_id=schedule.name,
                          journal_dir=journal_dir)
        return "ok", None, {"retrain_run": outcome.id, "status": outcome.status,
                            "candidate": outcome.candidate}
    except Exception as exc:
        return "failed", f"{type(exc).__name__}: {exc}", {}


def run_due(ctx: Context, owner: str, *, journal_dir: str | Path | None = None,
            lease: timedelta = DEFAULT_LEASE) -> list[ScheduleRun]:
    """Claim every due schedule, run it and record the outcome (what a worker tick does)."""
    done = []
    for schedule in claim_due(ctx, owner, lease=lease):
        status, error, detail = run_schedule(ctx, schedule, journal_dir=journal_dir)
        done.append(finish_schedule(ctx, schedule, owner, status=status, error=error,
                                    detail=detail))
    return done
