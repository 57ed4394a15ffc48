"""Roles held per actor: ``viewer``, ``developer``, ``validator``, ``admin``.

The acting identity comes from the Context (declared in local mode, authenticated by the
platform API later); everything here only asks "does this actor hold that role?", so only the
identity source changes when tokens arrive.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, delete, insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput, NotFound, PermissionDenied
from ..store.tables import role_bindings, utcnow

__all__ = ["ROLES", "RoleBinding", "grant_role", "has_role", "list_roles", "require_role",
           "revoke_role", "roles_of"]

ROLES = ("viewer", "developer", "validator", "admin")


class RoleBinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: str
    role: str
    granted_by: str
    granted_at: datetime


def _check(user: str, role: str) -> tuple[str, str]:
    if not isinstance(user, str) or not user.strip() or len(user) > 256:
        raise InvalidInput("user must be a non-empty name of at most 256 characters",
                           field="user")
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}", field="role")
    return user.strip(), role


def roles_of(conn: Connection, actor: str) -> set[str]:
    return set(conn.execute(select(role_bindings.c.role)
                            .where(role_bindings.c.principal == actor)).scalars())


def has_role(conn: Connection, actor: str, role: str) -> bool:
    return role in roles_of(conn, actor)


def require_role(conn: Connection, actor: str, role: str, doing: str) -> None:
    if not has_role(conn, actor, role):
        raise PermissionDenied(f"{doing} needs the {role!r} role; {actor!r} does not hold it "
                               f"(an admin grants it: modelworks roles grant {actor} {role})")


def grant_role(ctx: Context, user: str, role: str) -> RoleBinding:
    """Give ``user`` the role (admins only; audited). Granting a held role is a no-op."""
    user, role = _check(user, role)
    with ctx.db.write() as conn:
        require_role(conn, ctx.actor, "admin", "granting roles")
        row = conn.execute(select(role_bindings).where(role_bindings.c.principal == user,
                                                       role_bindings.c.role == role)).first()
        if row is None:
            now = utcnow()
            conn.execute(insert(role_bindings).values(principal=user, role=role,
                                                      granted_by=ctx.actor, granted_at=now))
            audit.append(ctx.db, conn, actor=ctx.actor, action="role.granted",
                         entity_type="user", entity_id=user, payload={"role": role})
            return RoleBinding(user=user, role=role, granted_by=ctx.actor, granted_at=now)
        return RoleBinding(user=row.principal, role=row.role, granted_by=row.granted_by,
                           granted_at=row.granted_at)


def revoke_role(ctx: Context, user: str, role: str) -> None:
    """Take the role away (admins only; audited); the last admin cannot be removed."""
    user, role = _check(user, role)
    with ctx.db.write() as conn:
        require_role(conn, ctx.actor, "admin", "revoking roles")
        if not has_role(conn, user, role):
            raise NotFound(f"{user!r} does not hold the {role!r} role")
        if role == "admin":
            admins = conn.execute(select(role_bindings.c.principal)
                                  .where(role_bindings.c.role == "admin")).scalars().all()
            if len(admins) == 1:
                raise InvalidInput("the workspace's last admin cannot be removed", field="user")
        conn.execute(delete(role_bindings).where(role_bindings.c.principal == user,
                                                 role_bindings.c.role == role))
        audit.append(ctx.db, conn, actor=ctx.actor, action="role.revoked",
                     entity_type="user", entity_id=user, payload={"role": role})


def list_roles(conn: Connection, user: str | None = None) -> list[RoleBinding]:
    stmt = select(role_bindings).order_by(role_bindings.c.principal, role_bindings.c.role)
    if user is not None:
        stmt = stmt.where(role_bindings.c.principal == user)
    return [RoleBinding(user=r.principal, role=r.role, granted_by=r.granted_by,
                        granted_at=r.granted_at) for r in conn.execute(stmt)]
