"""Experiments: named groups of runs, created on first use."""

from __future__ import annotations

import re

from sqlalchemy import Connection, bindparam, func, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput, NotFound
from ..records import Experiment
from ..store.tables import experiments, runs, utcnow

__all__ = ["ensure_experiment", "get_experiment", "list_experiments", "validate_name"]

_EXPERIMENT_ID = select(experiments.c.id).where(experiments.c.name == bindparam("name"))
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/@+-]{0,255}$")


def validate_name(value: object, *, field: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            f"{field} must be 1-256 characters: letters, digits, space and _ . : / @ + -, "
            f"starting with a letter or digit; got {value!r}",
            field=field,
        )
    return value


def ensure_experiment(ctx: Context, conn: Connection, name: str) -> int:
    """The experiment's id, creating (and auditing) it in the caller's transaction."""
    validate_name(name, field="experiment")
    memo_key = ("experiment_id", name)
    if memo_key in ctx.db.memo:  # experiments are never renamed or deleted
        return int(ctx.db.memo[memo_key])
    found = conn.execute(_EXPERIMENT_ID, {"name": name}).scalar()
    if found is not None:
        ctx.db.memo[memo_key] = int(found)  # committed, so safe to remember
        return int(found)
    exp_id = conn.execute(
        experiments.insert().values(name=name, created_at=utcnow(), created_by=ctx.actor)
        .returning(experiments.c.id)
    ).scalar_one()
    audit.append(ctx.db, conn, actor=ctx.actor, action="experiment.created",
                 entity_type="experiment", entity_id=exp_id, payload={"name": name})
    return int(exp_id)


def _to_record(row: object, run_count: int = 0) -> Experiment:
    return Experiment(id=row.id, name=row.name, created_at=row.created_at,  # type: ignore[attr-defined]
                      created_by=row.created_by, run_count=run_count)  # type: ignore[attr-defined]


def get_experiment(conn: Connection, name: str) -> Experiment:
    row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
    if row is None:
        raise NotFound(f"no experiment named {name!r}")
    count = conn.execute(
        select(func.count()).select_from(runs).where(runs.c.experiment_id == row.id)
    ).scalar_one()
    return _to_record(row, count)


def list_experiments(conn: Connection) -> list[Experiment]:
    counts: dict[int, int] = dict(
        conn.execute(select(runs.c.experiment_id, func.count()).group_by(runs.c.experiment_id))
        .all()
    )
    rows = conn.execute(select(experiments).order_by(experiments.c.id)).all()
    return [_to_record(r, counts.get(r.id, 0)) for r in rows]
