"""The append-only, hash-chained audit log."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Integer, String, Table, Text

from ._types import UTCDateTime, metadata

__all__ = ["audit_events", "audit_head"]

audit_events = Table(
    "mw_audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(128), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("entity_id", String(256), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("reason", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row holding the chain's tip. Locking it (SELECT ... FOR UPDATE) serialises appends on
# PostgreSQL; on SQLite the write transaction (BEGIN IMMEDIATE) already does. It also lets
# `verify` notice a deleted tail, which a chain alone cannot.
audit_head = Table(
    "mw_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
