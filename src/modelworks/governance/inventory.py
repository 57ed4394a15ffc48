"""The model inventory: business purpose, lifecycle and validation status, review dates.

One row per model version (archived ones included) with the model's inventory fields and its
governance state — what a model-risk team exports for its register.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from .. import audit
from ..context import Context
from ..errors import InvalidInput
from ..registry.uri import validate_model_name
from ..store.tables import (
    approvals,
    model_aliases,
    model_versions,
    policy_evaluations,
    registered_models,
    validation_reports,
)

__all__ = ["INVENTORY_COLUMNS", "LIFECYCLE_STATUSES", "REVIEW_INTERVAL_DAYS",
           "VALIDATION_STATUSES", "inventory_rows", "next_review", "render_inventory",
           "update_model"]

# How long a validation stays current, by risk tier (annual review for high-risk models is
# common model-risk practice, e.g. under SR 11-7; lower tiers are reviewed less often).
REVIEW_INTERVAL_DAYS = {"high": 365, "medium": 730, "low": 1095}

LIFECYCLE_STATUSES = ("development", "validation", "production", "retired")
VALIDATION_STATUSES = ("not_validated", "validated", "approved", "rejected")
_TIERS = ("low", "medium", "high")

INVENTORY_COLUMNS = (
    "model", "version", "version_status", "format", "sha256", "run_id", "registered_at",
    "registered_by", "aliases", "owner", "risk_tier", "business_purpose", "lifecycle_status",
    "validation_status", "next_review_date", "review_overdue", "vendor", "last_validated_at",
    "last_decision", "last_decision_by", "last_policy_passed", "last_policy_at",
)


def next_review(risk_tier: str, validated_on: date) -> date:
    """The date a model validated on ``validated_on`` must be reviewed again."""
    return validated_on + timedelta(days=REVIEW_INTERVAL_DAYS[risk_tier])


def update_model(ctx: Context, name: str, **fields: Any) -> None:
    """Change a model's inventory fields (audited with the old and new values)."""
    validate_model_name(name)
    allowed = {"description", "owner", "risk_tier", "business_purpose", "lifecycle_status",
               "vendor"}
    values = {k: v for k, v in fields.items() if v is not None}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InvalidInput(f"unknown model field(s): {', '.join(unknown)}; fields are "
                           f"{', '.join(sorted(allowed))}", field=unknown[0])
    if not values:
        raise InvalidInput("nothing to update: give at least one field", field="fields")
    if "risk_tier" in values and values["risk_tier"] not in _TIERS:
        raise InvalidInput(f"risk_tier must be one of {', '.join(_TIERS)}", field="risk_tier")
    if "lifecycle_status" in values and values["lifecycle_status"] not in LIFECYCLE_STATUSES:
        raise InvalidInput(f"lifecycle_status must be one of {', '.join(LIFECYCLE_STATUSES)}",
                           field="lifecycle_status")
    if "vendor" in values and not isinstance(values["vendor"], bool):
        raise InvalidInput("vendor must be true or false", field="vendor")
    for key in ("description", "owner", "business_purpose"):
        if key in values and (not isinstance(values[key], str) or not values[key].strip()):
            raise InvalidInput(f"{key} must be a non-empty string", field=key)
    with ctx.db.write() as conn:
        row = conn.execute(select(registered_models).where(
            registered_models.c.name == name)).first()
        if row is None:
            from ..errors import NotFound

            raise NotFound(f"no registered model named {name!r}")
        before = {k: getattr(row, k) for k in values}
        conn.execute(update(registered_models).where(registered_models.c.id == row.id)
                     .values(**values))
        audit.append(ctx.db, conn, actor=ctx.actor, action="model.updated",
                     entity_type="model", entity_id=name,
                     payload={"before": before, "after": values})


def inventory_rows(conn: Connection, *, today: date | None = None) -> list[dict[str, Any]]:
    """Every version of every model with its inventory and governance state."""
    today = today or date.today()
    m, v = registered_models, model_versions
    rows = conn.execute(select(m, v.c.id.label("vid"), v.c.version, v.c.status, v.c.format,
                               v.c.artifact_sha256, v.c.run_id,
                               v.c.created_at.label("v_created_at"),
                               v.c.created_by.label("v_created_by"))
                        .join(v, v.c.model_id == m.c.id).order_by(m.c.name, v.c.version)).all()
    aliases: dict[tuple[int, int], list[str]] = {}
    for mid, alias, ver in conn.execute(select(model_aliases.c.model_id, model_aliases.c.alias,
                                               model_aliases.c.version)):
        aliases.setdefault((mid, ver), []).append(alias)
    validated = dict(conn.execute(select(validation_reports.c.model_version_id,
                                         func.max(validation_reports.c.created_at))
                                  .group_by(validation_reports.c.model_version_id)).all())
    last_decision: dict[int, Any] = {}
    for r in conn.execute(select(approvals).order_by(approvals.c.id)):
        last_decision[r.model_version_id] = r
    last_eval: dict[int, Any] = {}
    for r in conn.execute(select(policy_evaluations).order_by(policy_evaluations.c.created_at)):
        prev = last_eval.get(r.model_version_id)
        if prev is not None and prev.created_at == r.created_at:
            last_eval[r.model_version_id] = r if not r.passed else prev
        else:
            last_eval[r.model_version_id] = r
    out = []
    for r in rows:
        decision, evaluation = last_decision.get(r.vid), last_eval.get(r.vid)
        out.append({
            "model": r.name, "version": r.version, "version_status": r.status,
            "format": r.format, "sha256": r.artifact_sha256, "run_id": r.run_id,
            "registered_at": r.v_created_at.isoformat(), "registered_by": r.v_created_by,
            "aliases": sorted(aliases.get((r.id, r.version), [])), "owner": r.owner,
            "risk_tier": r.risk_tier, "business_purpose": r.business_purpose,
            "lifecycle_status": r.lifecycle_status, "validation_status": r.validation_status,
            "next_review_date": r.next_review_date.isoformat() if r.next_review_date else None,
            "review_overdue": bool(r.next_review_date and r.next_review_date < today),
            "vendor": bool(r.vendor),
            "last_validated_at": validated[r.vid].isoformat() if r.vid in validated else None,
            "last_decision": decision.decision if decision else None,
            "last_decision_by": decision.actor if decision else None,
            "last_policy_passed": evaluation.passed if evaluation else None,
            "last_policy_at": evaluation.created_at.isoformat() if evaluation else None,
        })
    return out


def render_inventory(rows: list[dict[str, Any]], fmt: str) -> str:
    """The inventory as CSV (aliases joined with ';') or JSON."""
    if fmt == "json":
        import json

        return json.dumps(rows, indent=2)
    if fmt != "csv":
        raise InvalidInput("format must be csv or json", field="format")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INVENTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "aliases": ";".join(row["aliases"])})
    return buf.getvalue()
