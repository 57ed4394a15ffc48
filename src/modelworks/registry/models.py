"""Registered models and their versions: the model inventory.

Version numbers are allocated under a lock on the model's row (PostgreSQL ``FOR UPDATE``;
SQLite's write transaction), inside the transaction that records the version, so concurrent
registrations get 1, 2, 3... with no gaps and no duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound
from ..lineage import Node, add_edge
from ..store.tables import (
    model_aliases,
    model_tags,
    model_versions,
    registered_models,
    runs,
    utcnow,
)
from .records import ModelVersion, RegisteredModel
from .uri import ModelRef, validate_model_name

__all__ = [
    "archive_version",
    "ensure_model",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "record_version",
    "resolve",
    "version_id",
]

_TIERS = ("low", "medium", "high")


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput("tags must be a mapping of names to values", field="tags")
    return {str(k): str(v) for k, v in tags.items()}


def ensure_model(
    ctx: Context, conn: Connection, name: str, *, description: str | None,
    risk_tier: str | None, tags: Mapping[str, Any] | None,
) -> int:
    """The model's id, creating (and auditing) it on first registration."""
    validate_model_name(name)
    if risk_tier is not None and risk_tier not in _TIERS:
        raise InvalidInput(f"risk_tier must be one of {', '.join(_TIERS)}, got {risk_tier!r}",
                           field="risk_tier")
    row = conn.execute(select(registered_models.c.id)
                       .where(registered_models.c.name == name)).first()
    if row is not None:
        return int(row.id)
    model_id = conn.execute(insert(registered_models).values(
        name=name, description=description, owner=ctx.actor, risk_tier=risk_tier or "medium",
        created_at=utcnow(), created_by=ctx.actor,
    ).returning(registered_models.c.id)).scalar_one()
    tag_map = _tags(tags)
    if tag_map:
        conn.execute(insert(model_tags), [{"model_id": model_id, "key": k, "value": v}
                                          for k, v in tag_map.items()])
    audit.append(ctx.db, conn, actor=ctx.actor, action="model.created", entity_type="model",
                 entity_id=name, payload={"risk_tier": risk_tier or "medium",
                                          "description": description, "tags": tag_map})
    return int(model_id)


def record_version(
    ctx: Context, conn: Connection, *, model_id: int, name: str, run_id: str | None,
    sha256: str, size: int, fmt: str, library: str | None, library_version: str | None,
    allow_pickle: bool, signature: dict[str, Any] | None,
    input_example: list[dict[str, Any]] | None, description: str | None,
) -> int:
    """Allocate the next version number and record it (with lineage and audit)."""
    if run_id is not None and conn.execute(
            select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise NotFound(f"no run with id {run_id!r}")
    ctx.db.lock_for_update(conn, registered_models, model_id)
    version = (conn.execute(select(func.max(model_versions.c.version))
                            .where(model_versions.c.model_id == model_id)).scalar() or 0) + 1
    conn.execute(insert(model_versions).values(
        model_id=model_id, version=version, run_id=run_id, artifact_sha256=sha256,
        artifact_size=size, format=fmt, library=library, library_version=library_version,
        allow_pickle=allow_pickle, signature=signature, input_example=input_example,
        description=description, status="registered", created_at=utcnow(),
        created_by=ctx.actor,
    ))
    node = Node(type="model_version", id=f"{name}/{version}")
    if run_id is not None:
        add_edge(conn, child=node, parent=Node(type="run", id=run_id), relation="trained_by",
                 actor=ctx.actor)
    audit.append(ctx.db, conn, actor=ctx.actor, action="model_version.registered",
                 entity_type="model_version", entity_id=f"{name}/{version}", payload={
                     "run_id": run_id, "sha256": sha256, "format": fmt,
                     "allow_pickle": allow_pickle, "library": library,
                     "library_version": library_version})
    return version


def _model_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(registered_models)
                       .where(registered_models.c.name == name)).first()
    if row is None:
        raise NotFound(f"no registered model named {name!r}")
    return row


def _version_record(conn: Connection, name: str, row: Any) -> ModelVersion:
    aliases = list(conn.execute(select(model_aliases.c.alias).where(
        model_aliases.c.model_id == row.model_id, model_aliases.c.version == row.version)
        .order_by(model_aliases.c.alias)).scalars())
    return ModelVersion(
        name=name, version=row.version, run_id=row.run_id, sha256=row.artifact_sha256,
        size=row.artifact_size, format=row.format, library=row.library,
        library_version=row.library_version, allow_pickle=row.allow_pickle,
        signature=row.signature, input_example=row.input_example,
        description=row.description, status=row.status, aliases=aliases,
        created_at=row.created_at, created_by=row.created_by,
    )


def get_version(conn: Connection, name: str, version: int) -> ModelVersion:
    model = _model_row(conn, name)
    row = conn.execute(select(model_versions).where(
        model_versions.c.model_id == model.id, model_versions.c.version == version)).first()
    if row is None:
        raise NotFound(f"model {name!r} has no version {version}")
    return _version_record(conn, name, row)


def resolve(conn: Connection, ref: ModelRef) -> ModelVersion:
    """The version a URI names (through its alias when it has one)."""
    if ref.alias is None:
        assert ref.version is not None
        return get_version(conn, ref.name, ref.version)
    model = _model_row(conn, ref.name)
    version = conn.execute(select(model_aliases.c.version).where(
        model_aliases.c.model_id == model.id, model_aliases.c.alias == ref.alias)).scalar()
    if version is None:
        raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}")
    return get_version(conn, ref.name, int(version))


def list_versions(conn: Connection, name: str) -> list[ModelVersion]:
    model = _model_row(conn, name)
    rows = conn.execute(select(model_versions).where(model_versions.c.model_id == model.id)
                        .order_by(model_versions.c.version)).all()
    return [_version_record(conn, name, r) for r in rows]


def _model_records(conn: Connection, rows: list[Any]) -> list[RegisteredModel]:
    """Records for a page of model rows: three queries for the page, not three per model."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    aliases: dict[int, dict[str, int]] = {i: {} for i in ids}
    for mid, key, value in conn.execute(select(model_tags.c.model_id, model_tags.c.key,
                                               model_tags.c.value)
                                        .where(model_tags.c.model_id.in_(ids))).all():
        tags[mid][key] = value
    for mid, alias, version in conn.execute(
            select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model_id.in_(ids))).all():
        aliases[mid][alias] = version
    latest = dict(conn.execute(
        select(model_versions.c.model_id, func.max(model_versions.c.version))
        .where(model_versions.c.model_id.in_(ids))
        .group_by(model_versions.c.model_id)).all())
    return [RegisteredModel(
        name=r.name, description=r.description, owner=r.owner, risk_tier=r.risk_tier,
        tags=tags[r.id], aliases=aliases[r.id], latest_version=latest.get(r.id),
        created_at=r.created_at, created_by=r.created_by, business_purpose=r.business_purpose,
        lifecycle_status=r.lifecycle_status, validation_status=r.validation_status,
        next_review_date=r.next_review_date, vendor=r.vendor) for r in rows]


def get_model(conn: Connection, name: str) -> RegisteredModel:
    return _model_records(conn, [_model_row(conn, name)])[0]


def list_models(
    conn: Connection, *, prefix: str | None = None, tag: str | None = None,
    limit: int = 100, offset: int = 0,
) -> list[RegisteredModel]:
    """Models by name; ``prefix`` matches the start of the name, ``tag`` is ``KEY=VALUE``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidInput("limit must be an integer from 1 to 10000", field="limit")
    stmt = select(registered_models).order_by(registered_models.c.name)
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(registered_models.c.name.like(f"{escaped}%", escape="\\"))
    if tag:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise InvalidInput(f"tag filter must be KEY=VALUE, got {tag!r}", field="tag")
        stmt = stmt.where(select(model_tags.c.model_id).where(
            model_tags.c.model_id == registered_models.c.id, model_tags.c.key == key,
            model_tags.c.value == value).exists())
    rows = conn.execute(stmt.limit(limit).offset(offset)).all()
    return _model_records(conn, list(rows))


def archive_version(ctx: Context, name: str, version: int, *, reason: str | None) -> None:
    """Archive a version; one that an alias points at must be moved off first."""
    with ctx.db.write() as conn:
        current = get_version(conn, name, version)
        if current.status == "archived":
            return
        if current.aliases:
            raise Conflict(f"{current.uri} holds alias(es) {', '.join(current.aliases)}: "
                           "move or delete them before archiving")
        model = _model_row(conn, name)
        conn.execute(update(model_versions).where(
            model_versions.c.model_id == model.id, model_versions.c.version == version)
            .values(status="archived"))
        audit.append(ctx.db, conn, actor=ctx.actor, action="model_version.archived",
                     entity_type="model_version", entity_id=f"{name}/{version}",
                     reason=reason)


def version_id(conn: Connection, name: str, version: int) -> int:
    """The row id of a version, for records that hang off it (reports, approvals)."""
    found = conn.execute(select(model_versions.c.id).join(
        registered_models, registered_models.c.id == model_versions.c.model_id).where(
        registered_models.c.name == name, model_versions.c.version == version)).scalar()
    if found is None:
        get_version(conn, name, version)  # raises NotFound naming the model or the version
        raise NotFound(f"no version {version} of model {name!r}")
    return int(found)
