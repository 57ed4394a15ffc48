"""Deliver firing alerts to the plan's sinks, after the monitor's transaction committed.

Each (alert, sink) gets a row in ``mw_alert_deliveries`` (``pending``, then ``delivered`` or
``failed``, with the attempts and the last error) before anything is sent, so the table is
the durable queue: the log and file sinks are written at once (they are local), webhooks in
one daemon thread per webhook, retrying with exponential backoff and jitter, so the monitor
never waits on a slow receiver. The final outcome of each delivery is audited
(``alert.delivered`` / ``alert.delivery_failed``). At interpreter exit, outstanding
deliveries get a short grace period; whatever is still pending then (or after a crash) is
sent again by ``deliver_pending`` — what ``modelworks worker`` calls on each pass.
"""

from __future__ import annotations

import atexit
import heapq
import logging
import random
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ... import audit
from ...context import Context
from ...store.tables import alert_deliveries, utcnow
from .plan import FileSink, LogSink, MonitoringPlan, Sink, WebhookSink, plan_of, span
from .sinks import SinkError, file_path, send_file, send_log, send_webhook
from .store import Alert, get_alert

__all__ = ["EXIT_GRACE", "MAX_BACKOFF", "DeliveryHandle", "backoff_delay", "deliver_alerts",
           "deliver_pending", "join_outstanding"]

logger = logging.getLogger("modelworks.alerts")
EXIT_GRACE = 10.0  # seconds the interpreter waits at exit for webhooks still in flight
MAX_BACKOFF = 300.0
_OUTSTANDING: set[threading.Thread] = set()
_OUTSTANDING_LOCK = threading.Lock()


class DeliveryHandle:
    """The deliveries one call started; ``join`` waits for the webhooks among them."""

    def __init__(self, delivery_ids: list[int], threads: list[threading.Thread]) -> None:
        self.delivery_ids = delivery_ids
        self._threads = threads

    def join(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds in all); True when every delivery finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return self.done

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)


def backoff_delay(retry: int, first: float, *, rng: random.Random | None = None) -> float:
    """Before retry ``retry`` (1-based): ``first * 2**(retry-1)``, capped, "equal jitter"
    (half fixed, half random), so many senders do not retry in step."""
    delay = min(MAX_BACKOFF, first * 2 ** (retry - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def _target(sink: Sink) -> str | None:
    if isinstance(sink, FileSink):
        return str(file_path(sink))
    if isinstance(sink, WebhookSink):
        return sink.url
    return None


def _finish(ctx: Context, delivery_id: int, alert: Alert, sink: Sink | None, *, status: str,
            attempts: int, error: str | None) -> None:
    with ctx.db.write() as conn:
        conn.execute(update(alert_deliveries).where(alert_deliveries.c.id == delivery_id)
                     .values(status=status, attempts=attempts, last_error=error,
                             updated_at=utcnow()))
        if status != "pending":
            audit.append(ctx.db, conn, actor=ctx.actor,
                         action="alert.delivered" if status == "delivered"
                         else "alert.delivery_failed",
                         entity_type="alert", entity_id=alert.id, payload={
                             "delivery": delivery_id,
                             "sink": sink.type if sink is not None else None,
                             "target": _target(sink) if sink is not None else None,
                             "attempts": attempts, "error": error})


def _send_local(ctx: Context, delivery_id: int, alert: Alert, sink: LogSink | FileSink,
                attempts: int) -> None:
    try:
        if isinstance(sink, LogSink):
            send_log(alert)
        else:
            send_file(alert, sink)
    except SinkError as exc:
        _finish(ctx, delivery_id, alert, sink, status="failed", attempts=attempts + 1,
                error=str(exc))
    else:
        _finish(ctx, delivery_id, alert, sink, status="delivered", attempts=attempts + 1,
                error=None)


def _webhook_loop(ctx: Context, sink: WebhookSink,
                  items: list[tuple[int, Alert, int]]) -> None:
    """Send every (delivery, alert, attempts so far) to one webhook, retries interleaved."""
    first = span(sink.backoff, "backoff").total_seconds()
    queue = [(0.0, i, d, a, n) for i, (d, a, n) in enumerate(items)]
    heapq.heapify(queue)
    while queue:
        due, order, delivery_id, alert, attempts = heapq.heappop(queue)
        time.sleep(max(0.0, due - time.monotonic()))
        attempts += 1
        try:
            send_webhook(alert, sink, attempt=attempts)
        except SinkError as exc:
            retry = exc.retry and attempts <= sink.retries
            _finish_quietly(ctx, delivery_id, alert, sink, attempts, str(exc),
                            "pending" if retry else "failed")
            if retry:
                heapq.heappush(queue, (time.monotonic() + backoff_delay(attempts, first),
                                       order, delivery_id, alert, attempts))
        else:
            _finish_quietly(ctx, delivery_id, alert, sink, attempts, None, "delivered")


def _finish_quietly(ctx: Context, delivery_id: int, alert: Alert, sink: Sink, attempts: int,
                    error: str | None, status: str) -> None:
    # A background thread has no caller to raise to: log, and let deliver_pending retry.
    try:
        _finish(ctx, delivery_id, alert, sink, status=status, attempts=attempts, error=error)
    except Exception:  # e.g. the database went away under a daemon thread
        logger.exception("recording delivery %s of alert %s failed", delivery_id, alert.id)


def _start(ctx: Context, sink: WebhookSink, items: list[tuple[int, Alert, int]]
           ) -> threading.Thread:
    def run() -> None:
        try:
            _webhook_loop(ctx, sink, items)
        finally:
            with _OUTSTANDING_LOCK:
                _OUTSTANDING.discard(thread)

    thread = threading.Thread(target=run, name=f"modelworks-webhook-{sink.url[:40]}",
                              daemon=True)
    with _OUTSTANDING_LOCK:
        _OUTSTANDING.add(thread)
    thread.start()
    return thread


def _plans(conn: Connection, alerts: Iterable[Alert],
           given: MonitoringPlan | None) -> dict[tuple[str, int | None], MonitoringPlan | None]:
    found: dict[tuple[str, int | None], MonitoringPlan | None] = {}
    for alert in alerts:
        key = (alert.model, alert.plan_version)
        if key not in found:
            found[key] = given if given is not None and given.model == alert.model and (
                alert.plan_version in (None, given.version)) else plan_of(
                conn, alert.model, alert.plan_version)
    return found


def _dispatch(ctx: Context, work: list[tuple[int, Alert, Sink, int]], *, wait: bool,
              timeout: float | None) -> DeliveryHandle:
    hooks: dict[WebhookSink, list[tuple[int, Alert, int]]] = {}
    for delivery_id, alert, sink, attempts in work:
        if isinstance(sink, WebhookSink):
            hooks.setdefault(sink, []).append((delivery_id, alert, attempts))
        else:
            _send_local(ctx, delivery_id, alert, sink, attempts)
    threads = [_start(ctx, sink, items) for sink, items in hooks.items()]
    handle = DeliveryHandle([d for d, *_ in work], threads)
    if wait:
        handle.join(timeout)
    return handle


def deliver_alerts(ctx: Context, alerts: Iterable[Alert], plan: MonitoringPlan | None = None,
                   *, wait: bool = False, timeout: float | None = None) -> DeliveryHandle:
    """Send the firing alerts to their plan's sinks (suppressed ones are only stored).

    ``plan`` defaults to the plan version each alert was raised under. Returns at once
    unless ``wait`` (then it waits up to ``timeout`` seconds for webhooks too).
    """
    firing = [a for a in alerts if a.status == "firing"]
    if not firing:
        return DeliveryHandle([], [])
    work: list[tuple[int, Alert, Sink, int]] = []
    now = utcnow()
    with ctx.db.write() as conn:
        plans = _plans(conn, firing, plan)
        for alert in firing:
            found = plans[(alert.model, alert.plan_version)]
            for sink in found.spec.sinks if found is not None else []:
                inserted = conn.execute(insert(alert_deliveries).values(
                    alert_id=alert.id, sink=sink.type, target=_target(sink),
                    status="pending", attempts=0, last_error=None, updated_at=now))
                key = inserted.inserted_primary_key
                assert key is not None
                work.append((int(key[0]), alert, sink, 0))
    return _dispatch(ctx, work, wait=wait, timeout=timeout)


def _sink_for(plan: MonitoringPlan | None, kind: str, target: str | None) -> Sink | None:
    for sink in plan.spec.sinks if plan is not None else []:
        if sink.type == kind and _target(sink) == target:
            return sink
    return None


def deliver_pending(ctx: Context, *, older_than: timedelta = timedelta(minutes=10),
                    wait: bool = False, timeout: float | None = None,
                    now: datetime | None = None) -> DeliveryHandle:
    """Send again the deliveries left pending for ``older_than`` (a process that exited
    mid-retry, a crash). Each row is claimed by moving its ``updated_at`` first, so two
    workers never send one delivery twice at once. The default wait is longer than the
    longest backoff (plus a timeout), so a live sender's retries are not taken over."""
    now = now or utcnow()
    work: list[tuple[int, Alert, Sink, int]] = []
    with ctx.db.read() as conn:
        rows = conn.execute(select(alert_deliveries).where(
            alert_deliveries.c.status == "pending",
            alert_deliveries.c.updated_at < now - older_than)
            .order_by(alert_deliveries.c.id).limit(1000)).all()
    plans: dict[tuple[str, int | None], Any] = {}
    for row in rows:
        with ctx.db.write() as conn:
            claimed = conn.execute(update(alert_deliveries).where(
                alert_deliveries.c.id == row.id, alert_deliveries.c.status == "pending",
                alert_deliveries.c.updated_at == row.updated_at).values(updated_at=utcnow()))
            if claimed.rowcount != 1:
                continue
            alert = get_alert(conn, row.alert_id)
            key = (alert.model, alert.plan_version)
            if key not in plans:
                plans[key] = plan_of(conn, alert.model, alert.plan_version)
        sink = _sink_for(plans[key], row.sink, row.target)
        if sink is None:
            _finish(ctx, row.id, alert, None, status="failed", attempts=row.attempts,
                    error=f"the plan has no {row.sink} sink {row.target or ''}".rstrip())
            continue
        work.append((row.id, alert, sink, row.attempts))
    return _dispatch(ctx, work, wait=wait, timeout=timeout)


def join_outstanding(timeout: float | None = None) -> bool:
    """Wait for every webhook delivery this process started (what a script or a test does
    before it exits or checks the deliveries); True when none is left."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _OUTSTANDING_LOCK:
        threads = list(_OUTSTANDING)
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    with _OUTSTANDING_LOCK:
        return not _OUTSTANDING


atexit.register(join_outstanding, EXIT_GRACE)
