"""The audit log: every state change, in the transaction that makes it, hash-chained."""

from __future__ import annotations

from .chain import ChainReport, NewEvent, append, append_many, list_events, verify
from .events import GENESIS_HASH, AuditEvent

__all__ = [
    "GENESIS_HASH", "AuditEvent", "ChainReport", "NewEvent", "append", "append_many", "list_events",
    "verify",
]
