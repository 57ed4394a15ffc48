"""The audit event record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["GENESIS_HASH", "AuditEvent"]

# prev_hash of the first event: the chain has to start somewhere well known.
GENESIS_HASH = "0" * 64


class AuditEvent(BaseModel):
    """Who did what to which entity, when and why; chained to the event before it."""

    model_config = ConfigDict(frozen=True)

    seq: int
    ts: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    payload: dict[str, Any]
    reason: str | None
    prev_hash: str
    hash: str
