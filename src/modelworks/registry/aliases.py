"""Aliases: movable names for versions (``staging``, ``production``), with full history.

Protected aliases (default: ``production``) go through promotion checks that later services
register (the governance gate). While none is registered, moving a protected alias needs
``force=True`` by a workspace admin, with a reason — and that is audited like any move.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, delete, insert, select

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied, PolicyViolation
from ..store.tables import alias_history, model_aliases, registered_models, role_bindings, utcnow
from .models import get_version
from .records import AliasMove, ModelVersion
from .uri import validate_alias, validate_model_name

__all__ = [
    "PROTECTED_ALIASES",
    "PromotionCheck",
    "PromotionRefusal",
    "alias_history_of",
    "delete_alias",
    "moves_touching",
    "promotion_checks",
    "promotion_refusals",
    "set_alias",
]

PROTECTED_ALIASES = frozenset({"production"})

# A check receives the connection, the acting context and the target version; it raises
# PolicyViolation to refuse. Later services append to this list at import.
PromotionCheck = Callable[[Connection, Context, ModelVersion, str], None]
promotion_checks: list[PromotionCheck] = []
# Called after a refused move rolled back, to put the refusal on the record.
PromotionRefusal = Callable[[Context, ModelVersion, str, PolicyViolation], None]
promotion_refusals: list[PromotionRefusal] = []


def _is_admin(conn: Connection, actor: str) -> bool:
    return conn.execute(select(role_bindings.c.id).where(
        role_bindings.c.principal == actor, role_bindings.c.role == "admin")).first() is not None


def _model_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(registered_models.c.id)
                         .where(registered_models.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no registered model named {name!r}")
    return int(found)


def _current(conn: Connection, model_id: int, alias: str) -> int | None:
    return conn.execute(select(model_aliases.c.version).where(
        model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)).scalar()


def set_alias(
    ctx: Context, name: str, alias: str, version: int, *, reason: str | None,
    force: bool = False,
) -> ModelVersion:
    validate_model_name(name)
    validate_alias(alias)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"version must be a positive integer, got {version!r}",
                           field="version")
    try:
        return _set_alias(ctx, name, alias, version, reason=reason, force=force)
    except PolicyViolation as exc:
        target = getattr(exc, "target", None)
        if isinstance(target, ModelVersion):
            for hook in promotion_refusals:
                hook(ctx, target, alias, exc)
        raise


def _set_alias(ctx: Context, name: str, alias: str, version: int, *, reason: str | None,
               force: bool) -> ModelVersion:
    with ctx.db.write() as conn:
        target = get_version(conn, name, version)
        if target.status == "archived":
            raise Conflict(f"{target.uri} is archived: an alias cannot point at it")
        model_id = _model_id(conn, name)
        forced = False
        if alias in PROTECTED_ALIASES:
            forced = _check_protected(conn, ctx, target, alias, reason=reason, force=force)
        previous = _current(conn, model_id, alias)
        if previous == version:
            return target
        ctx.db.upsert(conn, model_aliases, [{
            "model_id": model_id, "alias": alias, "version": version, "updated_at": utcnow(),
            "updated_by": ctx.actor}], keys=("model_id", "alias"),
            update=("version", "updated_at", "updated_by"))
        conn.execute(insert(alias_history).values(
            model_id=model_id, alias=alias, version=version, previous_version=previous,
            reason=reason, forced=forced, actor=ctx.actor, ts=utcnow()))
        audit.append(ctx.db, conn, actor=ctx.actor, action="model_alias.set",
                     entity_type="model", entity_id=name, reason=reason, payload={
                         "alias": alias, "version": version, "previous_version": previous,
                         "forced": forced})
        if forced:
            _break_glass(ctx, conn, target, alias, reason)
        return get_version(conn, name, version)


def _break_glass(ctx: Context, conn: Connection, target: ModelVersion, alias: str,
                 reason: str | None) -> None:
    """A forced move of a protected alias: its own audit event, shown in the model card."""
    audit.append(ctx.db, conn, actor=ctx.actor, action="model_alias.break_glass",
                 entity_type="model_version", entity_id=f"{target.name}/{target.version}",
                 reason=reason, payload={"alias": alias,
                                         "checks_bypassed": len(promotion_checks)})


def _check_protected(conn: Connection, ctx: Context, target: ModelVersion, alias: str, *,
                     reason: str | None, force: bool) -> bool:
    """Run the promotion checks; with none registered, demand an admin's forced move."""
    if promotion_checks and not force:
        for check in promotion_checks:
            try:
                check(conn, ctx, target, alias)
            except PolicyViolation as exc:
                exc.target = target  # type: ignore[attr-defined]  # for the refusal hooks
                raise
        return False
    if not force:
        raise PermissionDenied(
            f"alias {alias!r} is protected: until promotion checks are configured, moving "
            "it needs force=True (CLI: --force) by a workspace admin, with a reason")
    if not reason or not reason.strip():
        raise InvalidInput(f"forcing protected alias {alias!r} needs a reason", field="reason")
    if not _is_admin(conn, ctx.actor):
        raise PermissionDenied(f"only a workspace admin may force protected alias {alias!r}; "
                               f"{ctx.actor!r} is not one")
    return True


def delete_alias(ctx: Context, name: str, alias: str, *, reason: str | None,
                 force: bool = False) -> None:
    validate_alias(alias)
    with ctx.db.write() as conn:
        model_id = _model_id(conn, name)
        previous = _current(conn, model_id, alias)
        if previous is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}")
        forced = False
        if alias in PROTECTED_ALIASES:
            # Taking a model out of service is no promotion: no gate, but an admin with a
            # reason (``force`` is accepted and changes nothing).
            if not reason or not reason.strip():
                raise InvalidInput(f"deleting protected alias {alias!r} needs a reason",
                                   field="reason")
            if not _is_admin(conn, ctx.actor):
                raise PermissionDenied(f"only a workspace admin may delete protected alias "
                                       f"{alias!r}; {ctx.actor!r} is not one")
        conn.execute(delete(model_aliases).where(model_aliases.c.model_id == model_id,
                                                 model_aliases.c.alias == alias))
        conn.execute(insert(alias_history).values(
            model_id=model_id, alias=alias, version=None, previous_version=previous,
            reason=reason, forced=forced, actor=ctx.actor, ts=utcnow()))
        audit.append(ctx.db, conn, actor=ctx.actor, action="model_alias.deleted",
                     entity_type="model", entity_id=name, reason=reason,
                     payload={"alias": alias, "previous_version": previous, "forced": forced})


def alias_history_of(conn: Connection, name: str, alias: str) -> list[AliasMove]:
    """Every move of the alias, oldest first."""
    model_id = _model_id(conn, name)
    rows = conn.execute(select(alias_history).where(
        alias_history.c.model_id == model_id, alias_history.c.alias == alias)
        .order_by(alias_history.c.id)).all()
    return [AliasMove(name=name, alias=alias, version=r.version,
                      previous_version=r.previous_version, reason=r.reason, forced=r.forced,
                      actor=r.actor, at=r.ts) for r in rows]


def moves_touching(conn: Connection, name: str, version: int) -> list[AliasMove]:
    """Alias moves onto or off ``version``, oldest first."""
    model_id = _model_id(conn, name)
    rows = conn.execute(select(alias_history).where(
        alias_history.c.model_id == model_id,
        (alias_history.c.version == version) | (alias_history.c.previous_version == version),
    ).order_by(alias_history.c.id)).all()
    return [AliasMove(name=name, alias=r.alias, version=r.version,
                      previous_version=r.previous_version, reason=r.reason, forced=r.forced,
                      actor=r.actor, at=r.ts) for r in rows]
