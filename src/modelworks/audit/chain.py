"""Append to and verify the hash-chained audit log.

Each event's hash covers its own fields and the previous event's hash, so editing, deleting
or reordering any event breaks the chain from that point on; the head row (last seq and hash)
also catches a deleted tail. Appends run inside the caller's transaction, so an event exists
exactly when the change it describes does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, func, insert, select, update

from ..store.tables import audit_events, audit_head, utcnow
from .events import GENESIS_HASH, AuditEvent

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = [
    "ChainReport", "NewEvent", "append", "append_many", "count_events", "event_hash", "list_events",
    "verify",
]

_HEAD_ID = 1
_INSERT_EVENT = insert(audit_events)
_UPDATE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == _HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_SELECT_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == _HEAD_ID)


def _jsonable(value: Any) -> Any:
    """Payloads are JSON; non-finite floats become strings so every backend keeps them."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _canonical_ts(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None).isoformat(timespec="microseconds")


def event_hash(
    *,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    payload: Mapping[str, Any],
    reason: str | None,
    prev_hash: str,
) -> str:
    body = json.dumps(
        [seq, _canonical_ts(ts), actor, action, entity_type, entity_id, payload, reason,
         prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class NewEvent:
    """One event for :func:`append_many`: what :func:`append` takes, as a record."""

    action: str
    entity_type: str
    entity_id: str | int
    payload: Mapping[str, Any] | None = None
    reason: str | None = None


def append(
    db: Database,
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    payload: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's write transaction."""
    event = NewEvent(action=action, entity_type=entity_type, entity_id=entity_id,
                     payload=payload, reason=reason)
    return append_many(db, conn, actor=actor, events=[event])[0]


def append_many(
    db: Database, conn: Connection, *, actor: str, events: Sequence[NewEvent],
) -> list[AuditEvent]:
    """Append events in order in the caller's write transaction.

    The chain is computed here and written with one multi-row insert and one head update,
    so recording a thousand changes (``train_many``) costs a few statements, not 3,000.
    """
    if not events:
        return []
    db.lock_for_update(conn, audit_head, _HEAD_ID)
    head = conn.execute(_SELECT_HEAD).first()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    ts = utcnow()
    out: list[AuditEvent] = []
    rows: list[dict[str, Any]] = []
    for event in events:
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq,
            "ts": ts,
            "actor": actor,
            "action": event.action,
            "entity_type": event.entity_type,
            "entity_id": str(event.entity_id),
            "payload": _jsonable(dict(event.payload or {})),
            "reason": event.reason,
            "prev_hash": prev,
        }
        prev = event_hash(**fields)
        rows.append({**fields, "hash": prev})
        out.append(AuditEvent(**fields, hash=prev))
    # Statements built once with bound parameters: SQLAlchemy then reuses their compiled
    # form, which matters because every state change passes through here.
    conn.execute(_INSERT_EVENT, rows)
    if head:
        conn.execute(_UPDATE_HEAD, {"new_seq": seq, "new_hash": prev})
    else:
        conn.execute(insert(audit_head), {"id": _HEAD_ID, "seq": seq, "hash": prev})
    return out


def _row_event(row: Any) -> AuditEvent:
    return AuditEvent.model_validate(row._mapping, from_attributes=False)


def list_events(
    conn: Connection,
    *,
    limit: int | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
) -> list[AuditEvent]:
    """Newest first."""
    stmt = select(audit_events).order_by(audit_events.c.seq.desc())
    if entity_type:
        stmt = stmt.where(audit_events.c.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(audit_events.c.entity_id == str(entity_id))
    if action:
        stmt = stmt.where(audit_events.c.action == action)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_row_event(r) for r in conn.execute(stmt)]


class ChainReport(BaseModel):
    """The outcome of a chain walk: ok, or the first broken link and why."""

    ok: bool
    events: int
    first_broken_seq: int | None = None
    problem: str | None = None


def _iter_rows(conn: Connection, batch: int = 5000) -> Iterator[Any]:
    last = 0
    while True:
        rows = conn.execute(
            select(audit_events).where(audit_events.c.seq > last)
            .order_by(audit_events.c.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(conn: Connection) -> ChainReport:
    """Walk the chain in order; report the first edited, deleted or reordered event."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    for row in _iter_rows(conn):
        count += 1
        if row.seq != expected_seq:
            return ChainReport(ok=False, events=count, first_broken_seq=expected_seq,
                               problem=f"event {expected_seq} is missing (next is {row.seq})")
        if row.prev_hash != prev:
            return ChainReport(ok=False, events=count, first_broken_seq=row.seq,
                               problem=f"event {row.seq} does not follow event {row.seq - 1} "
                               "(deleted, reordered or edited predecessor)")
        fields = {k: getattr(row, k) for k in (
            "seq", "ts", "actor", "action", "entity_type", "entity_id", "payload", "reason",
            "prev_hash")}
        if event_hash(**fields) != row.hash:
            return ChainReport(ok=False, events=count, first_broken_seq=row.seq,
                               problem=f"event {row.seq} was edited: its hash does not match")
        prev = row.hash
        expected_seq += 1
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.hash != prev):
        return ChainReport(ok=False, events=count, first_broken_seq=last_seq + 1,
                           problem=f"the log ends at event {last_seq} but its head records "
                           f"event {head.seq}: events were deleted from the end")
    if head is None and count:
        return ChainReport(ok=False, events=count, first_broken_seq=1,
                           problem="the chain head is missing")
    return ChainReport(ok=True, events=count)


def count_events(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())
