"""Deployments (endpoints): a traffic split over model URIs, shadows and an on/off switch.

A deployment's routes are model URIs with weights in percent that sum to 100. The first route
is the *main entry*; any other route with traffic is a *canary*. An alias entry
(``models:/NAME@ALIAS``) follows the alias as it moves: the server resolves it, not this module.
Shadows get a copy of each request; their answers are logged, never returned.

Every change is one write transaction holding the new spec, a ``mw_deployment_history`` entry
and an audit event (``deployment.<action>``). ``promote`` onto an alias main entry moves the
alias through the registry (``registry.aliases.set_alias``), so a protected alias passes the
governance gate. That move is the registry's own audited transaction and comes first: were
the deployment's write to fail afterwards, the alias has moved and the canary route still
points at the version the alias now names — the same answers, and the move on the record.

The gate rule for an endpoint that serves a protected alias (``production``; any route or
the fallback names one, before or after the change): every pinned version that *gains*
traffic — a new route, a larger share, a promotion, a rollback target, a new fallback — must
pass every applicable policy now (``governance.evaluation.evaluate_version``), else
``PolicyViolation`` lists the failed rules and the failing evaluation is stored. An unprotected
alias (``staging``) cannot gain traffic there at all: it moves without the gate, so pin its
version instead. Less traffic never needs the gate, and shadows never answer, so they are free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound
from ..registry.aliases import set_alias
from ..registry.models import resolve
from ..registry.uri import ModelRef, parse_model_uri
from ..store.tables import deployment_history as history_table
from ..store.tables import deployments, utcnow
from ._deployment_rules import (
    canonical_uri,
    check_added,
    check_gate,
    gaining,
    reason_text,
    recording_refusals,
    resolve_uri,
    routes_from,
    shadows_from,
    validate_deployment_name,
    weight,
    write,
)
from .routing import (
    AliasChange,
    Deployment,
    DeploymentDisabled,
    DeploymentEvent,
    DeploymentStatus,
    Route,
    choose,
    shadows_of,
)

__all__ = [
    "AliasChange",
    "Deployment",
    "DeploymentDisabled",
    "DeploymentEvent",
    "DeploymentStatus",
    "Route",
    "TrafficListener",
    "choose",
    "create_deployment",
    "deployment_history",
    "disable",
    "enable",
    "get_deployment",
    "list_deployments",
    "promote",
    "rollback",
    "set_shadows",
    "set_traffic",
    "shadows_of",
    "traffic_listeners",
    "validate_deployment_name",
]

_SPEC_ACTIONS = frozenset({"created", "traffic_changed", "shadows_changed", "promoted"})

TrafficListener = Callable[[Context, Connection, "Deployment", "Deployment"], None]
# Later services follow an endpoint's changes here, in the transaction that makes each one,
# (monitoring closes the retrain runs whose canary left the endpoint): they register, serving
# never imports them.
traffic_listeners: list[TrafficListener] = []


# --- storage -----------------------------------------------------------------------------


def _record(row: Any) -> Deployment:
    return Deployment(
        name=row.name, status=row.status,
        routes=[Route.model_validate(r) for r in row.spec.get("routes", [])],
        shadows=list(row.spec.get("shadows", [])), fallback=row.fallback,
        disabled_reason=row.disabled_reason, created_at=row.created_at,
        created_by=row.created_by, updated_at=row.updated_at, updated_by=row.updated_by)


def _load(conn: Connection, name: str) -> tuple[int, Deployment]:
    validate_deployment_name(name)
    row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
    if row is None:
        names = list(conn.execute(select(deployments.c.name).order_by(deployments.c.name)
                                  .limit(10)).scalars())
        raise NotFound(f"no deployment named {name!r} (deployments: "
                       f"{', '.join(names) or 'none'})")
    return int(row.id), _record(row)


def _locked(ctx: Context, conn: Connection, name: str) -> tuple[int, Deployment]:
    """The deployment, read again under its row lock (writers to it queue up)."""
    ctx.db.lock_for_update(conn, deployments, _load(conn, name)[0])
    return _load(conn, name)


def _spec(dep: Deployment) -> dict[str, Any]:
    return {"routes": [r.model_dump() for r in dep.routes], "shadows": list(dep.shadows)}


def _state(dep: Deployment) -> dict[str, Any]:
    return {**_spec(dep), "status": dep.status, "fallback": dep.fallback,
            "disabled_reason": dep.disabled_reason}


def _same(a: Deployment, b: Deployment) -> bool:
    return _state(a) == _state(b)


def _log(ctx: Context, conn: Connection, dep_id: int, before: Deployment | None,
         after: Deployment, *, action: str, reason: str | None,
         extra: Mapping[str, Any] | None = None) -> None:
    """The history entry and the audit event of one change, in the caller's transaction."""
    state = {**_state(after), **(extra or {})}
    conn.execute(insert(history_table).values(
        deployment_id=dep_id, action=action, spec=state, status=after.status, reason=reason,
        actor=ctx.actor, ts=utcnow()))
    payload = dict(state)
    if before is not None:
        payload["previous"] = _state(before)
    audit.append(ctx.db, conn, actor=ctx.actor, action=f"deployment.{action}",
                 entity_type="deployment", entity_id=after.name, reason=reason,
                 payload=payload)


def _save(ctx: Context, conn: Connection, dep_id: int, before: Deployment,
          after: Deployment, *, action: str, reason: str,
          extra: Mapping[str, Any] | None = None) -> Deployment:
    now = utcnow()
    after = after.model_copy(update={"updated_at": now, "updated_by": ctx.actor})
    # Other keys of the spec (``canary_rules``, see ``canary``) outlive traffic changes.
    stored = conn.execute(select(deployments.c.spec).where(deployments.c.id == dep_id)
                          ).scalar_one()
    conn.execute(update(deployments).where(deployments.c.id == dep_id).values(
        status=after.status, spec={**stored, **_spec(after)}, fallback=after.fallback,
        disabled_reason=after.disabled_reason, updated_at=now, updated_by=ctx.actor))
    _log(ctx, conn, dep_id, before, after, action=action, reason=reason, extra=extra)
    for listener in traffic_listeners:
        listener(ctx, conn, before, after)
    return after


# --- reading -----------------------------------------------------------------------------


def get_deployment(conn: Connection, name: str) -> Deployment:
    return _load(conn, name)[1]


def list_deployments(conn: Connection) -> list[Deployment]:
    rows = conn.execute(select(deployments).order_by(deployments.c.name)).all()
    return [_record(r) for r in rows]


def _events(conn: Connection, dep_id: int, name: str) -> list[DeploymentEvent]:
    rows = conn.execute(select(history_table)
                        .where(history_table.c.deployment_id == dep_id)
                        .order_by(history_table.c.id)).all()
    return [DeploymentEvent(
        id=r.id, deployment=name, action=r.action, status=r.status,
        routes=[Route.model_validate(x) for x in r.spec.get("routes", [])],
        shadows=list(r.spec.get("shadows", [])), fallback=r.spec.get("fallback"),
        reason=r.reason, actor=r.actor, at=r.ts, undoes=r.spec.get("undoes"),
        alias_change=(AliasChange.model_validate(r.spec["alias_change"])
                      if r.spec.get("alias_change") else None),
        forced=bool(r.spec.get("forced", False))) for r in rows]


def deployment_history(conn: Connection, name: str) -> list[DeploymentEvent]:
    """Every change of the deployment, oldest first."""
    return _events(conn, _load(conn, name)[0], name)


# --- changes -----------------------------------------------------------------------------


def create_deployment(
    ctx: Context, name: str, *, model: str, canary: str | None = None, percent: float = 0,
    shadows: Sequence[str] = (), reason: str | None = None,
) -> Deployment:
    """A new endpoint: ``model`` gets ``100 - percent`` of traffic, ``canary`` the rest.

    Raises:
        Conflict: a deployment with this name exists.
        NotFound: a model URI does not resolve (the message names it).
        InvalidInput: a malformed name, URI or percentage (``field`` names it).
        PolicyViolation: the gate rule (module docstring) refused a pinned version.
    """
    validate_deployment_name(name)
    main = canonical_uri(model, "model")
    share = weight(percent, "percent")
    routes = [Route(model=main, weight=100.0 - share)]
    if canary is None:
        if share != 0:
            raise InvalidInput("percent needs a canary", field="percent")
    else:
        second = canonical_uri(canary, "canary")
        if second == main:
            raise InvalidInput(f"canary {second} is the main model", field="canary")
        routes.append(Route(model=second, weight=share))
    shadow_list = shadows_from(shadows, routes)
    note = None if reason is None else reason_text(reason, "a deployment")

    def work(conn: Connection) -> Deployment:
        if conn.execute(select(deployments.c.id).where(deployments.c.name == name)).first():
            raise Conflict(f"a deployment named {name!r} already exists")
        now = utcnow()
        dep = Deployment(name=name, status="active", routes=routes, shadows=shadow_list,
                         fallback=None, disabled_reason=None, created_at=now,
                         created_by=ctx.actor, updated_at=now, updated_by=ctx.actor)
        resolve_uri(conn, main, "model")
        if canary is not None:
            resolve_uri(conn, routes[1].model, "canary")
        check_added(conn, None, dep)
        check_gate(ctx, conn, gaining(None, dep), store=True)
        dep_id = conn.execute(insert(deployments).values(
            name=name, status="active", spec=_spec(dep), fallback=None, disabled_reason=None,
            created_at=now, created_by=ctx.actor, updated_at=now, updated_by=ctx.actor,
        ).returning(deployments.c.id)).scalar_one()
        _log(ctx, conn, int(dep_id), None, dep, action="created", reason=note)
        return dep

    try:
        return write(ctx, work)
    except SAIntegrityError as exc:  # created by someone else at the same moment
        raise Conflict(f"a deployment named {name!r} already exists") from exc


def _change(ctx: Context, name: str, action: str, reason: str,
            edit: Callable[[Connection, Deployment], Deployment]) -> Deployment:
    """Load under lock, apply ``edit``, check and save; a no-op change records nothing."""

    def work(conn: Connection) -> Deployment:
        dep_id, before = _locked(ctx, conn, name)
        after = edit(conn, before)
        if _same(before, after):
            return before
        check_added(conn, before, after)
        check_gate(ctx, conn, gaining(before, after), store=True)
        return _save(ctx, conn, dep_id, before, after, action=action, reason=reason)

    return write(ctx, work)


def set_traffic(ctx: Context, name: str, routes: Mapping[str, float] | Sequence[Route], *,
                reason: str) -> Deployment:
    """Replace the traffic split; the main entry stays first if it keeps a route.

    A shadow that becomes a route stops being a shadow (it now answers).
    """
    why = reason_text(reason, "changing traffic")
    new = routes_from(routes)

    def edit(conn: Connection, dep: Deployment) -> Deployment:
        ordered = sorted(new, key=lambda r: r.model != dep.main.model)  # stable: main first
        served = {r.model for r in ordered}
        return dep.model_copy(update={
            "routes": ordered, "shadows": [s for s in dep.shadows if s not in served]})

    return _change(ctx, name, "traffic_changed", why, edit)


def set_shadows(ctx: Context, name: str, shadows: Sequence[str], *, reason: str) -> Deployment:
    """Replace the shadows (each gets a copy of every request; never answers)."""
    why = reason_text(reason, "changing shadows")

    def edit(conn: Connection, dep: Deployment) -> Deployment:
        return dep.model_copy(update={"shadows": shadows_from(shadows, dep.routes)})

    return _change(ctx, name, "shadows_changed", why, edit)


def disable(ctx: Context, name: str, *, reason: str, fallback: str | None = None
            ) -> Deployment:
    """Switch the endpoint off: 503 with ``reason``, or every request to ``fallback``."""
    why = reason_text(reason, "disabling a deployment")
    target = None if fallback is None else canonical_uri(fallback, "fallback")

    def edit(conn: Connection, dep: Deployment) -> Deployment:
        return dep.model_copy(update={"status": "disabled", "disabled_reason": why,
                                      "fallback": target})

    return _change(ctx, name, "disabled", why, edit)


def enable(ctx: Context, name: str, *, reason: str) -> Deployment:
    """Switch the endpoint back on (its routes as they were; the fallback is dropped)."""
    why = reason_text(reason, "enabling a deployment")

    def edit(conn: Connection, dep: Deployment) -> Deployment:
        return dep.model_copy(update={"status": "active", "disabled_reason": None,
                                      "fallback": None})

    return _change(ctx, name, "enabled", why, edit)


def _current_alias(conn: Connection, name: str, alias: str) -> int | None:
    try:
        return resolve(conn, ModelRef(name=name, alias=alias)).version
    except NotFound:
        return None


def _commit_move(ctx: Context, name: str, before: Deployment, after: Deployment, *,
                 action: str, reason: str, move: AliasChange | None, force: bool,
                 extra: Mapping[str, Any]) -> Deployment:
    """Move the alias through the registry (and its gate), then record the deployment."""
    if move is not None:
        from ..governance import gate  # noqa: F401  (registers the promotion gate)

        set_alias(ctx, move.model, move.alias, move.version, force=force,
                  reason=f"deployment {name!r} {action.replace('_', ' ')}: {reason}")

    def work(conn: Connection) -> Deployment:
        dep_id, now = _locked(ctx, conn, name)
        if now.routes != before.routes or now.shadows != before.shadows:
            raise Conflict(f"deployment {name!r} changed meanwhile; look at it again"
                           + (f" (alias {move.alias} of {move.model} is now at version "
                              f"{move.version})" if move else ""))
        if not force:
            check_gate(ctx, conn, gaining(now, after), store=True)
        done = _save(ctx, conn, dep_id, now, after.model_copy(update={
            "status": now.status, "fallback": now.fallback,
            "disabled_reason": now.disabled_reason}), action=action, reason=reason,
            extra={**extra, "alias_change": move.model_dump() if move else None,
                   "forced": force})
        if force:
            audit.append(ctx.db, conn, actor=ctx.actor, action="deployment.break_glass",
                         entity_type="deployment", entity_id=name, reason=reason,
                         payload={"action": action})
        return done

    return write(ctx, work)


def promote(ctx: Context, name: str, *, reason: str) -> Deployment:
    """The canary's version becomes the main entry, and the canary route goes.

    An alias main entry (``claims@production``) stays and keeps all traffic: the alias moves
    onto the canary's version through the registry, so a protected alias passes the gate. A
    pinned main entry is replaced by the canary's URI.

    Raises:
        Conflict: the deployment has no canary, or more than one, or the canary is another
            model than an alias main entry.
        PolicyViolation: the gate refused the alias move or the new main version.
    """
    why = reason_text(reason, "promoting")
    with recording_refusals(ctx), ctx.db.read() as conn:
        _, dep = _load(conn, name)
        canaries = dep.canaries
        if len(canaries) != 1:
            raise Conflict(f"deployment {name!r} has {len(canaries)} canaries: promote needs "
                           "exactly one (set the traffic first)")
        canary = canaries[0]
        target = resolve_uri(conn, canary.model, "canary")
        main = parse_model_uri(dep.main.model)
        rest = [r for r in dep.routes[1:] if r.model != canary.model]
        move = None
        if main.alias is not None:
            if target.name != main.name:
                raise Conflict(f"canary {canary.model} is not a version of {main.name}: "
                               f"alias {main.alias} can only move to one")
            current = resolve_uri(conn, dep.main.model, "routes[0]").version
            if current != target.version:
                move = AliasChange(model=main.name, alias=main.alias,
                                   previous_version=current, version=target.version)
            routes = [Route(model=dep.main.model, weight=100.0), *rest]
        else:
            routes = [Route(model=canary.model, weight=100.0), *rest]
        after = dep.model_copy(update={"routes": routes})
        check_gate(ctx, conn, gaining(dep, after), store=False)  # before the alias moves
    return _commit_move(ctx, name, dep, after, action="promoted", reason=why, move=move,
                        force=False, extra={"canary": canary.model,
                                            "version": f"{target.name}/{target.version}"})


def rollback(ctx: Context, name: str, *, reason: str, force: bool = False) -> Deployment:
    """Go back to the routes and shadows before the last change not yet rolled back.

    Each rollback undoes one more change (traffic, shadows, promotion); disabling and
    enabling are not undone by it. If the undone change was a promotion that moved an alias,
    the alias moves back through the registry — for a protected alias through the gate again,
    which may refuse (``PolicyViolation``: e.g. the old version's periodic review is overdue,
    or it regresses against the version now in production). An admin can then pass
    ``force=True`` with the reason: break glass for the alias and the gate rule, audited as
    ``model_alias.break_glass`` and ``deployment.break_glass``. (Or move the alias back with
    ``set_alias(..., force=True)`` first: a rollback finding the alias already back moves
    nothing.)

    Raises:
        Conflict: nothing to roll back, or the alias was moved elsewhere since the promotion.
    """
    why = reason_text(reason, "rolling back")
    with recording_refusals(ctx), ctx.db.read() as conn:
        dep_id, dep = _load(conn, name)
        stack: list[DeploymentEvent] = []
        for event in _events(conn, dep_id, name):
            if event.action in _SPEC_ACTIONS:
                stack.append(event)
            elif event.action == "rolled_back" and stack:
                stack.pop()
        if len(stack) < 2:
            raise Conflict(f"deployment {name!r} has no earlier change to roll back")
        undo, target = stack[-1], stack[-2]
        after = dep.model_copy(update={"routes": target.routes, "shadows": target.shadows})
        check_added(conn, dep, after)
        move = None
        if undo.alias_change is not None:
            done = undo.alias_change
            current = _current_alias(conn, done.model, done.alias)
            if current == done.version:
                move = AliasChange(model=done.model, alias=done.alias,
                                   previous_version=done.version,
                                   version=done.previous_version)
            elif current != done.previous_version:
                raise Conflict(
                    f"alias {done.alias} of {done.model} is at version {current}, not "
                    f"{done.version} where the promotion put it: move it to "
                    f"{done.previous_version} yourself (models alias set), then roll back")
        if force:
            from ..governance.roles import require_role

            require_role(conn, ctx.actor, "admin", "forcing a rollback (break glass)")
        else:
            check_gate(ctx, conn, gaining(dep, after), store=False)  # before the alias moves
    return _commit_move(ctx, name, dep, after, action="rolled_back", reason=why, move=move,
                        force=force, extra={"undoes": undo.id})
