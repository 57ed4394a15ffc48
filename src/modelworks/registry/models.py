"""Registered models and their versions: the model inventory.

Version numbers are allocated under a lock on the model's row (PostgreSQL ``FOR UPDATE``;
SQLite's write transaction), inside the transaction that records the version, so concurrent
registrations get 1, 2, 3... with no gaps and no duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound
from ..lineage import LineageEdge, Node, add_new_edges
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
    "NewVersion",
    "archive_version",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "record_versions",
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


@dataclass(frozen=True)
class NewVersion:
    """A version to record: its stored bytes and what the registry keeps about them.

    ``model_description``, ``risk_tier`` and ``tags`` are used when this registration
    creates the model; an existing model keeps its own.
    """

    name: str
    sha256: str
    size: int
    fmt: str
    library: str | None
    library_version: str | None
    allow_pickle: bool
    run_id: str | None = None
    signature: dict[str, Any] | None = None
    input_example: list[dict[str, Any]] | None = None
    description: str | None = None
    model_description: str | None = None
    risk_tier: str | None = None
    tags: Mapping[str, Any] | None = None


_IN_CHUNK = 500  # keys per IN (...): well under SQLite's and PostgreSQL's parameter limits


def _chunked(keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(keys), _IN_CHUNK):
        yield keys[start:start + _IN_CHUNK]


def _check(entries: Sequence[NewVersion], conn: Connection) -> None:
    for entry in entries:
        validate_model_name(entry.name)
        if entry.risk_tier is not None and entry.risk_tier not in _TIERS:
            raise InvalidInput(f"risk_tier must be one of {', '.join(_TIERS)}, got "
                               f"{entry.risk_tier!r}", field="risk_tier")
        _tags(entry.tags)  # a mapping, or refused before anything is written
    wanted = sorted({e.run_id for e in entries if e.run_id is not None})
    found: set[str] = set()
    for part in _chunked(wanted):
        found.update(conn.execute(select(runs.c.id).where(runs.c.id.in_(part))).scalars())
    missing = [run_id for run_id in wanted if run_id not in found]
    if missing:
        raise NotFound(f"no run with id {missing[0]!r}")


def _create_models(ctx: Context, conn: Connection, entries: Sequence[NewVersion],
                   ids: dict[str, int]) -> list[audit.NewEvent]:
    """Create the models ``ids`` lacks (the first entry of a name describes it)."""
    first: dict[str, NewVersion] = {}
    for entry in entries:
        if entry.name not in ids:
            first.setdefault(entry.name, entry)
    if not first:
        return []
    # in name order: two writers creating the same models then wait on each other's rows
    # instead of deadlocking, and the loser reruns (``write_retrying``)
    first = dict(sorted(first.items()))
    now = utcnow()
    created = conn.execute(
        insert(registered_models).returning(registered_models.c.id, registered_models.c.name,
                                            sort_by_parameter_order=True),
        [{"name": e.name, "description": e.model_description, "owner": ctx.actor,
          "risk_tier": e.risk_tier or "medium", "created_at": now, "created_by": ctx.actor}
         for e in first.values()]).all()
    ids.update({row.name: int(row.id) for row in created})
    tag_maps = {name: _tags(e.tags) for name, e in first.items()}
    tag_rows = [{"model_id": ids[name], "key": k, "value": v}
                for name, tags in tag_maps.items() for k, v in tags.items()]
    if tag_rows:
        conn.execute(insert(model_tags), tag_rows)
    return [audit.NewEvent(action="model.created", entity_type="model", entity_id=name,
                           payload={"risk_tier": e.risk_tier or "medium",
                                    "description": e.model_description,
                                    "tags": tag_maps[name]})
            for name, e in first.items()]


def record_versions(ctx: Context, conn: Connection, entries: Sequence[NewVersion]) -> list[int]:
    """Record versions in the caller's transaction, creating models on first registration;
    with lineage (``trained_by`` the run) and audit. Returns the version numbers in order.

    A batch costs a handful of statements whatever its size — one per kind of row, not one
    per version — so ``train_many``'s single writer keeps up with its workers.
    """
    if not entries:
        return []
    _check(entries, conn)
    names = list(dict.fromkeys(e.name for e in entries))
    ids: dict[str, int] = {}
    for part in _chunked(names):
        ids.update((row.name, int(row.id)) for row in conn.execute(
            select(registered_models.c.id, registered_models.c.name)
            .where(registered_models.c.name.in_(part))))
    events = _create_models(ctx, conn, entries, ids)
    model_ids = sorted(ids.values())
    ctx.db.lock_for_update(conn, registered_models, model_ids)
    latest: dict[int, int] = {}
    for part in _chunked(model_ids):
        latest.update((int(model_id), int(top)) for model_id, top in conn.execute(
            select(model_versions.c.model_id, func.max(model_versions.c.version))
            .where(model_versions.c.model_id.in_(part))
            .group_by(model_versions.c.model_id)))
    now = utcnow()
    rows: list[dict[str, Any]] = []
    edges: list[LineageEdge] = []
    numbers: list[int] = []
    for e in entries:
        model_id = ids[e.name]
        version = latest[model_id] = (latest.get(model_id) or 0) + 1
        numbers.append(version)
        rows.append({
            "model_id": model_id, "version": version, "run_id": e.run_id,
            "artifact_sha256": e.sha256, "artifact_size": e.size, "format": e.fmt,
            "library": e.library, "library_version": e.library_version,
            "allow_pickle": e.allow_pickle, "signature": e.signature,
            "input_example": e.input_example, "description": e.description,
            "status": "registered", "created_at": now, "created_by": ctx.actor})
        node = Node(type="model_version", id=f"{e.name}/{version}")
        if e.run_id is not None:
            edges.append(LineageEdge(child=node, parent=Node(type="run", id=e.run_id),
                                     relation="trained_by", payload={}))
        events.append(audit.NewEvent(
            action="model_version.registered", entity_type="model_version", entity_id=node.id,
            payload={"run_id": e.run_id, "sha256": e.sha256, "format": e.fmt,
                     "allow_pickle": e.allow_pickle, "library": e.library,
                     "library_version": e.library_version}))
    conn.execute(insert(model_versions), rows)
    add_new_edges(conn, edges, actor=ctx.actor)
    audit.append_many(ctx.db, conn, actor=ctx.actor, events=events)
    return numbers


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
