"""The audit log: every state change, in the transaction that makes it, hash-chained."""

from __future__ import annotations

from .chain import ChainReport, append, list_events, verify
from .events import GENESIS_HASH, AuditEvent

__all__ = ["GENESIS_HASH", "AuditEvent", "ChainReport", "append", "list_events", "verify"]
