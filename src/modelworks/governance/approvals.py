"""Approvals and rejections of model versions by validators (segregation of duties).

A decision belongs to a version and survives policy changes. Nobody approves a version they
trained (the run's actor) or registered; a rejection cancels every approval before it, so
promotion is blocked until someone approves again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select, update

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, PermissionDenied
from ..registry.models import resolve, version_id
from ..registry.records import ModelVersion
from ..registry.uri import parse_model_uri
from ..store.tables import approvals, registered_models, runs, utcnow
from .roles import require_role

__all__ = ["Decision", "authors_of", "decide", "decisions_of", "standing_approvals"]


class Decision(BaseModel):
    """One approval or rejection of a version."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    decision: Literal["approved", "rejected"]
    actor: str
    role: str
    reason: str
    at: datetime


def authors_of(conn: Connection, version: ModelVersion) -> set[str]:
    """Who made the version: its registrant and the actor of the run that trained it."""
    authors = {version.created_by}
    if version.run_id is not None:
        trainer = conn.execute(select(runs.c.actor).where(runs.c.id == version.run_id)).scalar()
        if trainer:
            authors.add(str(trainer))
    return authors


def decide(ctx: Context, uri: str, decision: Literal["approved", "rejected"], *,
           reason: str) -> Decision:
    """Record a validator's decision on a version (audited, with the reason)."""
    if decision not in ("approved", "rejected"):
        raise InvalidInput("decision must be 'approved' or 'rejected'", field="decision")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"a reason is required to record a decision ({decision})",
                           field="reason")
    ref = parse_model_uri(uri)
    with ctx.db.write() as conn:
        target = resolve(conn, ref)
        doing = "approving a model version" if decision == "approved" else \
            "rejecting a model version"
        require_role(conn, ctx.actor, "validator", doing)
        if target.status == "archived":
            raise Conflict(f"{target.uri} is archived: it cannot be {decision}")
        if decision == "approved" and ctx.actor in authors_of(conn, target):
            raise PermissionDenied(
                f"{ctx.actor!r} trained or registered {target.uri} and cannot approve it "
                "(segregation of duties): another validator must")
        now = utcnow()
        conn.execute(insert(approvals).values(
            model_version_id=version_id(conn, target.name, target.version), decision=decision,
            actor=ctx.actor, role="validator", reason=reason.strip(), created_at=now))
        conn.execute(update(registered_models).where(registered_models.c.name == target.name)
                     .values(validation_status=decision))
        audit.append(ctx.db, conn, actor=ctx.actor, action=f"model_version.{decision}",
                     entity_type="model_version", entity_id=f"{target.name}/{target.version}",
                     reason=reason.strip(), payload={"role": "validator"})
        return Decision(model=target.name, version=target.version, decision=decision,
                        actor=ctx.actor, role="validator", reason=reason.strip(), at=now)


def decisions_of(conn: Connection, name: str, version: int) -> list[Decision]:
    """Every decision on the version, oldest first."""
    vid = version_id(conn, name, version)
    rows = conn.execute(select(approvals).where(approvals.c.model_version_id == vid)
                        .order_by(approvals.c.id)).all()
    return [Decision(model=name, version=version, decision=r.decision, actor=r.actor,
                     role=r.role, reason=r.reason, at=r.created_at) for r in rows]


def standing_approvals(decisions: list[Decision]) -> list[Decision]:
    """Approvals that still count: those after the latest rejection, one per approver."""
    last_rejection = max((i for i, d in enumerate(decisions) if d.decision == "rejected"),
                         default=-1)
    seen: dict[str, Decision] = {}
    for d in decisions[last_rejection + 1:]:
        if d.decision == "approved":
            seen.setdefault(d.actor, d)
    return list(seen.values())
