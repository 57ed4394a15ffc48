"""The worker: the long-running process behind ``modelworks worker``.

Each tick (every ``poll`` seconds) it

1. runs the due schedules (``schedules.py``; one worker per row, by lease), after bringing
   the ``plan:MODEL`` schedules in step with the monitoring plans' ``schedule:``;
2. retrains on each firing alert whose rule says ``action: retrain`` — once per alert: the
   retrain run records the alert's id, claimed under a lock on the alert, so two workers never
   both act on one (a failed retraining is recorded and not retried by itself);
3. resumes the retrain runs awaiting approval whose candidate is now approved (canary);
4. analyses the endpoints that run a canary or shadow (``monitoring/canary_analysis.py``; at
   most every ``canary_every`` seconds per endpoint) — its rules may roll a canary back.

It acts under its own identity (``MODELWORKS_WORKER_IDENTITY``, default
``modelworks-worker``): it is the registrant of what it retrains, so it can never approve it.
It registers in ``mw_workers`` and heartbeats there; a stop (SIGTERM, Ctrl-C) finishes the
current task, then marks it ``stopped``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select, update

from .. import audit
from ..context import Context
from ..errors import Conflict
from ..store.tables import alerts, model_versions, registered_models, retrain_runs, utcnow
from ..store.tables import workers as workers_table
from .retraining import RetrainResult, resume_approved, retrain
from .schedules import DEFAULT_LEASE, ScheduleRun, run_due, sync_plan_schedules

__all__ = ["Worker", "WorkerInfo", "WorkerReport", "list_workers", "retrain_alerts"]

_log = logging.getLogger("modelworks.worker")


class WorkerReport(BaseModel):
    """What one tick did."""

    model_config = ConfigDict(frozen=True)

    worker: str
    identity: str
    at: datetime
    schedules: list[ScheduleRun] = []
    retrains: list[RetrainResult] = []  # started by alerts
    resumed: list[RetrainResult] = []  # waiting runs that moved on (approved or rejected)
    canary: list[dict[str, Any]] = []
    errors: list[str] = []

    @property
    def idle(self) -> bool:
        return not (self.schedules or self.retrains or self.resumed or self.canary
                    or self.errors)


class WorkerInfo(BaseModel):
    """A worker process as ``mw_workers`` records it."""

    model_config = ConfigDict(frozen=True)

    id: str
    identity: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    status: str


def list_workers(conn: Connection) -> list[WorkerInfo]:
    rows = conn.execute(select(workers_table).order_by(workers_table.c.started_at.desc()))
    return [WorkerInfo.model_validate(r._mapping) for r in rows]


def _wants_retrain(details: Any) -> bool:
    if not isinstance(details, dict):
        return False
    rule = details.get("rule")
    return details.get("action") == "retrain" or (
        isinstance(rule, dict) and rule.get("action") == "retrain")


def retrain_alerts(ctx: Context, *, since: datetime, journal_dir: str | Path | None = None,
                   echo: Callable[[str], None] = _log.info) -> tuple[list[RetrainResult],
                                                                    list[str]]:
    """Retrain on each firing ``action: retrain`` alert since ``since`` not yet acted on."""
    acted = select(retrain_runs.c.trigger_id).where(retrain_runs.c.trigger == "alert",
                                                    retrain_runs.c.trigger_id.is_not(None))
    with ctx.db.read() as conn:
        rows = conn.execute(select(alerts.c.id, alerts.c.rule, alerts.c.details,
                                   registered_models.c.name, model_versions.c.version)
                            .join(model_versions,
                                  model_versions.c.id == alerts.c.model_version_id)
                            .join(registered_models,
                                  registered_models.c.id == model_versions.c.model_id)
                            .where(alerts.c.status == "firing", alerts.c.created_at >= since,
                                   alerts.c.id.not_in(acted))
                            .order_by(alerts.c.created_at)).all()
    started, errors = [], []
    for row in rows:
        if not _wants_retrain(row.details):
            continue
        uri = f"models:/{row.name}/{row.version}"
        echo(f"alert {row.id[:12]} ({row.rule} on {row.name}/{row.version}) asks for "
             "retraining")
        try:
            result = retrain(ctx, uri, trigger="alert", trigger_id=row.id,
                             journal_dir=journal_dir)
        except Conflict:
            continue  # another worker took this alert
        except Exception as exc:  # recorded on the retrain run (failed)
            errors.append(f"retraining {uri} on alert {row.id}: {type(exc).__name__}: {exc}")
            echo(f"  retraining {uri} failed: {exc}")
            continue
        echo(f"  retrain run {result.id[:12]}: {result.status} — {result.message or ''}")
        started.append(result)
    return started, errors


class Worker:
    """Runs schedules and triggers under one identity (see the module docstring).

    ``source`` is a Workspace (its settings give the default identity and the journal) or
    a Context (then ``identity`` defaults to the context's actor).
    """

    def __init__(self, source: Any, identity: str | None = None, *, poll: float = 5.0,
                 journal_dir: str | Path | None = None, lease: timedelta = DEFAULT_LEASE,
                 alert_lookback: timedelta = timedelta(days=7), canary_every: float = 300.0,
                 echo: Callable[[str], None] | None = None) -> None:
        if isinstance(source, Context):
            ctx, default_identity, journal = source, source.actor, None
        else:  # a Workspace (not imported: the facade sits above the services)
            ctx = source.ctx
            default_identity = source.settings.worker_identity
            journal = source.prediction_journal_dir
        who = (identity or default_identity).strip()
        self.ctx = dataclasses.replace(ctx, actor=who)
        self.identity = who
        self.poll = float(poll)
        self.journal_dir = journal_dir if journal_dir is not None else journal
        self.lease = lease
        self.alert_lookback = alert_lookback
        self.canary_every = canary_every
        self.echo = echo or _log.info
        self.id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._registered = False
        self._canary_warned = False
        self._canary_at: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Worker({self.id!r}, identity={self.identity!r})"

    # -- registration -------------------------------------------------------------------

    def register(self) -> None:
        if self._registered:
            return
        now = utcnow()
        with self.ctx.db.write() as conn:
            conn.execute(insert(workers_table).values(
                id=self.id, identity=self.identity, host=socket.gethostname()[:256],
                pid=os.getpid(), started_at=now, heartbeat_at=now, status="running"))
            audit.append(self.ctx.db, conn, actor=self.identity, action="worker.started",
                         entity_type="worker", entity_id=self.id,
                         payload={"pid": os.getpid(), "poll": self.poll})
        self._registered = True

    def heartbeat(self) -> None:
        with self.ctx.db.write() as conn:
            conn.execute(update(workers_table).where(workers_table.c.id == self.id)
                         .values(heartbeat_at=utcnow()))

    def stop(self) -> None:
        """Mark this worker stopped (audited)."""
        if not self._registered:
            return
        with self.ctx.db.write() as conn:
            conn.execute(update(workers_table).where(workers_table.c.id == self.id)
                         .values(heartbeat_at=utcnow(), status="stopped"))
            audit.append(self.ctx.db, conn, actor=self.identity, action="worker.stopped",
                         entity_type="worker", entity_id=self.id, payload={})
        self._registered = False

    # -- one tick -----------------------------------------------------------------------

    def run_once(self) -> WorkerReport:
        """One tick: schedules, alert-triggered retraining, approvals, canaries."""
        self.register()
        self.heartbeat()
        errors: list[str] = []
        ran: list[ScheduleRun] = []
        started: list[RetrainResult] = []
        resumed: list[RetrainResult] = []
        canary: list[dict[str, Any]] = []
        try:
            for name in sync_plan_schedules(self.ctx):
                self.echo(f"schedule {name} follows its monitoring plan now")
            ran = run_due(self.ctx, self.id, journal_dir=self.journal_dir, lease=self.lease)
            for r in ran:
                self.echo(f"schedule {r.schedule} ({r.kind} {r.target}): {r.status}"
                          + (f" — {r.error}" if r.error else "")
                          + (f" {r.detail}" if r.detail else ""))
        except Exception as exc:
            errors.append(f"schedules: {type(exc).__name__}: {exc}")
        try:
            started, failed = retrain_alerts(
                self.ctx, since=utcnow() - self.alert_lookback, journal_dir=self.journal_dir,
                echo=self.echo)
            errors += failed
        except Exception as exc:
            errors.append(f"alerts: {type(exc).__name__}: {exc}")
        try:
            resumed = resume_approved(self.ctx)
            for run in resumed:
                self.echo(f"retrain run {run.id[:12]} ({run.candidate}): {run.status} — "
                          f"{run.message or ''}")
        except Exception as exc:
            errors.append(f"approvals: {type(exc).__name__}: {exc}")
        try:
            canary = self._canaries()
        except Exception as exc:
            errors.append(f"canary analysis: {type(exc).__name__}: {exc}")
        for error in errors:
            self.echo(f"error: {error}")
        return WorkerReport(worker=self.id, identity=self.identity, at=utcnow(),
                            schedules=ran, retrains=started, resumed=resumed, canary=canary,
                            errors=errors)

    def _canaries(self) -> list[dict[str, Any]]:
        try:
            from ..serving.canary import endpoints_with_canary
            from .canary_analysis import analyze_canary
        except ImportError:
            if not self._canary_warned:
                self.echo("canary analysis is not available in this installation: "
                          "endpoints with a canary are not analysed")
                self._canary_warned = True
            return []
        out = []
        now = time.monotonic()
        for endpoint in endpoints_with_canary(self.ctx):
            if now - self._canary_at.get(endpoint, -1e18) < self.canary_every:
                continue
            self._canary_at[endpoint] = now
            try:
                analysis = analyze_canary(self.ctx, endpoint, rollback=True,
                                          journal_dir=self.journal_dir)
            except Exception as exc:  # one endpoint's trouble does not stop the others
                out.append({"endpoint": endpoint, "error": f"{type(exc).__name__}: {exc}"})
                self.echo(f"canary on {endpoint}: not analysed ({exc})")
                continue
            self.echo(f"canary on {endpoint}: {analysis.verdict} (action: {analysis.action})")
            out.append({"endpoint": endpoint, "analysis": analysis.id,
                        "verdict": analysis.verdict, "action": analysis.action})
        return out

    # -- the loop -----------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        """Tick every ``poll`` seconds until ``stop`` is set; heartbeats while a task runs."""
        self.register()
        self.echo(f"worker {self.id} started as {self.identity!r} (poll {self.poll:g}s)")
        beating = threading.Event()

        def beat() -> None:
            while not beating.wait(max(self.poll, 1.0)):
                try:
                    self.heartbeat()
                except Exception as exc:  # the store is down: the tick reports it
                    _log.warning("heartbeat failed: %s", exc)

        thread = threading.Thread(target=beat, name="modelworks-worker-heartbeat",
                                  daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                except Exception as exc:  # the store is unreachable: try again next tick
                    self.echo(f"error: tick failed: {type(exc).__name__}: {exc}")
                stop.wait(self.poll)
        finally:
            beating.set()
            thread.join(timeout=10)
            self.stop()
            self.echo(f"worker {self.id} stopped")
