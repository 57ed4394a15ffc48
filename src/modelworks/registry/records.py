"""Registry records: registered models, versions and alias moves."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from ..audit import AuditEvent
from ..lineage import LineageGraph

__all__ = [
    "AliasMove", "ModelTrace", "ModelVersion", "RegisteredModel", "RiskTier", "VersionStatus",
]

RiskTier = Literal["low", "medium", "high"]
VersionStatus = Literal["registered", "archived"]


class RegisteredModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None
    owner: str
    risk_tier: RiskTier
    tags: dict[str, str]
    aliases: dict[str, int]
    latest_version: int | None
    created_at: datetime
    created_by: str
    business_purpose: str | None = None
    lifecycle_status: str = "development"
    validation_status: str = "not_validated"
    next_review_date: date | None = None
    vendor: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_overdue(self) -> bool:
        """True when the periodic review date has passed (blocks new promotions)."""
        return self.next_review_date is not None and self.next_review_date < date.today()


class ModelVersion(BaseModel):
    """One immutable, content-addressed version of a registered model."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    run_id: str | None
    sha256: str
    size: int
    format: str
    library: str | None
    library_version: str | None
    allow_pickle: bool
    signature: dict[str, Any] | None
    input_example: list[dict[str, Any]] | None
    description: str | None
    status: VersionStatus
    aliases: list[str]
    created_at: datetime
    created_by: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class AliasMove(BaseModel):
    """One entry of an alias's history: it moved to ``version`` (None: deleted)."""

    model_config = ConfigDict(frozen=True)

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    reason: str | None
    forced: bool
    actor: str
    at: datetime


class ModelTrace(BaseModel):
    """A version's provenance: its lineage graph, alias moves and every audit event on it."""

    uri: str
    version: ModelVersion
    graph: LineageGraph
    alias_moves: list[AliasMove]
    audit: list[AuditEvent]

    def render_tree(self) -> str:
        from ..lineage import render_tree

        tree = render_tree(self.graph)
        moves = [f"  {m.at:%Y-%m-%d %H:%M} {m.alias}: {m.previous_version} -> {m.version} "
                 f"by {m.actor}" + (f" ({m.reason})" if m.reason else "")
                 for m in self.alias_moves]
        events = [f"  #{e.seq} {e.ts:%Y-%m-%d %H:%M} {e.actor} {e.action}"
                  + (f" ({e.reason})" if e.reason else "") for e in self.audit]
        parts = [tree]
        if moves:
            parts.append("alias history:\n" + "\n".join(moves))
        if events:
            parts.append("audit events:\n" + "\n".join(events))
        return "\n\n".join(parts)
