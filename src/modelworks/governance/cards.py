"""Model cards generated from the record, never typed twice.

Sections follow Mitchell et al., "Model Cards for Model Reporting" (2019): model details,
intended use, factors, metrics, evaluation data, training data, quantitative analyses,
ethical considerations, caveats and recommendations — plus what a model-risk team needs:
approvals, policy results, risk tier, alias history and break-glass events. Everything is read
from the registry, runs, datasets, validation reports and the audit log; only the fields a
person must write (intended use, limitations, ...) are stored, via ``update_model_card``.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Connection, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput
from ..lineage.describe import describe
from ..lineage.edges import Node, edges_of
from ..registry.aliases import moves_touching
from ..registry.models import get_model, get_version, version_id
from ..registry.uri import validate_model_name
from ..store.tables import model_card_fields, registered_models, utcnow, validation_reports
from .approvals import decisions_of
from .evaluation import evaluations_of
from .policies import CARD_FIELDS

__all__ = ["CARD_FIELDS", "build_card", "render_card", "update_model_card"]

_MAX_FIELD = 20_000


def update_model_card(ctx: Context, name: str, version: int | None = None,
                      **fields: str) -> dict[str, str]:
    """Set the person-written card fields, for one version or (version None) every version."""
    validate_model_name(name)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 1):
        raise InvalidInput("version must be a positive integer or None", field="version")
    unknown = sorted(set(fields) - set(CARD_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown model card field(s) {', '.join(unknown)}; fields are "
                           f"{', '.join(CARD_FIELDS)}", field=unknown[0])
    if not fields:
        raise InvalidInput("give at least one field, e.g. intended_use='...'", field="fields")
    for key, value in fields.items():
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_FIELD:
            raise InvalidInput(f"{key} must be non-empty text of at most {_MAX_FIELD} "
                               "characters", field=key)
    with ctx.db.write() as conn:
        model = get_model(conn, name)
        if version is not None:
            get_version(conn, name, version)
        model_id = conn.execute(select(registered_models.c.id)
                                .where(registered_models.c.name == model.name)).scalar_one()
        now = utcnow()
        ctx.db.upsert(conn, model_card_fields, [
            {"model_id": model_id, "version": version or 0, "field": k, "value": v.strip(),
             "updated_at": now, "updated_by": ctx.actor} for k, v in fields.items()],
            keys=("model_id", "version", "field"), update=("value", "updated_at", "updated_by"))
        audit.append(ctx.db, conn, actor=ctx.actor, action="model_card.updated",
                     entity_type="model" if version is None else "model_version",
                     entity_id=name if version is None else f"{name}/{version}",
                     payload={"fields": sorted(fields)})
        return {k: v.strip() for k, v in fields.items()}


def _card_fields(conn: Connection, model_id: int, version: int) -> dict[str, Any]:
    rows = conn.execute(select(model_card_fields).where(
        model_card_fields.c.model_id == model_id,
        model_card_fields.c.version.in_((0, version))).order_by(model_card_fields.c.version))
    out: dict[str, Any] = {}
    for r in rows:  # a version's own text overrides the model-wide one
        out[r.field] = {"text": r.value, "by": r.updated_by, "at": r.updated_at.isoformat(),
                        "scope": "version" if r.version else "model"}
    return out


def build_card(conn: Connection, name: str, version: int) -> dict[str, Any]:
    """The card as data (what ``format='json'`` returns)."""
    mv = get_version(conn, name, version)
    model = get_model(conn, name)
    model_id = conn.execute(select(registered_models.c.id)
                            .where(registered_models.c.name == name)).scalar_one()
    vid = version_id(conn, name, version)
    written = _card_fields(conn, model_id, version)
    report = conn.execute(select(validation_reports).where(
        validation_reports.c.model_version_id == vid)
        .order_by(validation_reports.c.created_at.desc()).limit(1)).first()
    summary: dict[str, Any] = dict(report.summary) if report is not None else {}

    training: list[dict[str, Any]] = []
    run: dict[str, Any] | None = None
    if mv.run_id is not None:
        run_node = Node(type="run", id=mv.run_id)
        run = describe(conn, run_node)
        run["id"] = mv.run_id
        for edge in edges_of(conn, [run_node]):
            if edge.parent.type == "dataset_version":
                facts = describe(conn, edge.parent)
                facts["role"] = edge.payload.get("role")
                training.append(facts)

    decisions = decisions_of(conn, name, version)
    evaluations = evaluations_of(conn, name, version)
    moves = moves_touching(conn, name, version)
    break_glass = [e for e in audit.list_events(conn, entity_type="model_version",
                                                entity_id=f"{name}/{version}",
                                                action="model_alias.break_glass")]

    def text(field: str) -> str | None:
        return written[field]["text"] if field in written else None

    return {
        "model_details": {
            "name": name, "version": version, "uri": mv.uri, "description": mv.description
            or model.description, "format": mv.format, "library": mv.library,
            "library_version": mv.library_version, "sha256": mv.sha256, "size": mv.size,
            "status": mv.status, "registered_at": mv.created_at.isoformat(),
            "registered_by": mv.created_by, "owner": model.owner,
            "risk_tier": model.risk_tier, "business_purpose": model.business_purpose,
            "lifecycle_status": model.lifecycle_status,
            "validation_status": model.validation_status,
            "next_review_date": model.next_review_date.isoformat()
            if model.next_review_date else None,
            "vendor": model.vendor, "aliases": mv.aliases, "tags": model.tags,
            "signature": mv.signature,
        },
        "intended_use": {"intended_use": text("intended_use"),
                         "out_of_scope_uses": text("out_of_scope_uses")},
        "factors": {"sensitive_features": summary.get("sensitive_features")
                    or (list(report.sensitive_features) if report is not None else []),
                    "notes": text("factors")},
        "metrics": {"task": summary.get("task"), "results": summary.get("metrics") or {},
                    "interval": "95% bootstrap" if summary.get("metrics") else None},
        "evaluation_data": None if report is None else {
            "report_id": report.id, "data_hash": report.data_hash, "rows": report.rows,
            "label": report.label, "held_out": report.held_out,
            "validated_at": report.created_at.isoformat(), "validated_by": report.created_by,
            "report_sha256": report.report_sha256, "html_sha256": report.html_sha256},
        "training_data": {"run": run, "datasets": training},
        "quantitative_analyses": {"fairness": summary.get("fairness") or {},
                                  "comparison": summary.get("comparison")},
        "explanations": summary.get("explanations"),
        "ethical_considerations": text("ethical_considerations"),
        "caveats_and_recommendations": {"caveats": text("caveats"),
                                        "limitations": text("limitations")},
        "governance": {
            "decisions": [d.model_dump(mode="json") for d in decisions],
            "policy_evaluations": [e.model_dump(mode="json") for e in evaluations[:5]],
            "alias_history": [m.model_dump(mode="json") for m in moves],
            "break_glass": [{"at": e.ts.isoformat(), "actor": e.actor, "reason": e.reason,
                             "alias": e.payload.get("alias")} for e in break_glass],
        },
        "written_fields": written,
        "generated_at": utcnow().isoformat(),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_env = Environment(loader=PackageLoader("modelworks.governance", "templates"),
                   autoescape=select_autoescape(enabled_extensions=("html.j2",)), trim_blocks=True,
                   lstrip_blocks=True)
_env.filters["fmt"] = _fmt


def render_card(card: dict[str, Any], fmt: str) -> str:
    """The card as ``json``, ``md`` (Markdown) or ``html`` (one self-contained page)."""
    if fmt == "json":
        import json

        return json.dumps(card, indent=2, default=str)
    if fmt == "md":
        return _env.get_template("model_card.md.j2").render(card=card)
    if fmt == "html":
        return _env.get_template("model_card.html.j2").render(card=card)
    raise InvalidInput("format must be html, md or json", field="format")
