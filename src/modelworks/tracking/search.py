"""Compile parsed run filters into SQLAlchemy expressions (never SQL strings).

Metric conditions and sorts read ``mw_latest_metrics`` (the latest value per run and key),
which an index on (key, value) serves, so a filtered, sorted page of 100 runs out of 100,000
touches few rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, not_, select
from sqlalchemy.sql import Subquery

from ..store.tables import experiments, latest_metrics, params, runs, tags
from .filters import Comparison, OrderTerm

__all__ = ["build_query", "search_runs"]

_ATTRIBUTE_COLUMNS = {
    "status": runs.c.status,
    "name": runs.c.name,
    "run_id": runs.c.id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return column.like(value)
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return not_(column.in_(list(value)))
    raise AssertionError(f"unhandled operator {op}")  # the parser admits no other


def _time_value(value: Any) -> Any:
    """Epoch milliseconds (what the parser yields) to the datetimes the column holds."""
    if isinstance(value, tuple):
        return tuple(_time_value(v) for v in value)
    return datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)


def _kv_condition(table: Any, cmp: Comparison) -> ColumnElement[bool]:
    """A run satisfies a param/tag/metric condition if a row with that key does."""
    column = table.c.value
    value: Any = cmp.value
    cond = _compare(column, cmp.op, value)
    return (
        select(table.c.run_id)
        .where(table.c.run_id == runs.c.id, table.c.key == cmp.key, cond)
        .exists()
    )


def _condition(cmp: Comparison) -> ColumnElement[bool]:
    if cmp.entity == "metrics":
        return _kv_condition(latest_metrics, cmp)
    if cmp.entity == "params":
        return _kv_condition(params, cmp)
    if cmp.entity == "tags":
        return _kv_condition(tags, cmp)
    column = _ATTRIBUTE_COLUMNS[cmp.key]
    value = _time_value(cmp.value) if cmp.key in ("start_time", "end_time") else cmp.value
    return _compare(column, cmp.op, value)


def build_query(
    *,
    experiment_ids: Sequence[int] | None,
    filters: Sequence[Comparison],
    order: Sequence[OrderTerm],
    limit: int,
    offset: int = 0,
    parent_id: str | None = None,
) -> Select[Any]:
    """A query for run ids (and experiment names), filtered, sorted and paged."""
    stmt: Select[Any] = select(runs.c.id, experiments.c.name.label("experiment_name")).join(
        experiments, experiments.c.id == runs.c.experiment_id
    )
    conds: list[ColumnElement[bool]] = []
    if experiment_ids is not None:
        conds.append(runs.c.experiment_id.in_(list(experiment_ids)))
    if parent_id is not None:
        conds.append(runs.c.parent_id == parent_id)
    # A metric compared directly (not NOT IN / !=) is served best by a join on the
    # (key, value) index; the rest become EXISTS.
    for i, cmp in enumerate(filters):
        if cmp.entity == "metrics" and cmp.op in ("=", "<", "<=", ">", ">=", "IN"):
            fm = latest_metrics.alias(f"fm{i}")
            stmt = stmt.join(
                fm,
                and_(fm.c.run_id == runs.c.id, fm.c.key == cmp.key,
                     _compare(fm.c.value, cmp.op, cmp.value)),
            )
        else:
            conds.append(_condition(cmp))
    if conds:
        stmt = stmt.where(and_(*conds))
    order_by: list[Any] = []
    for i, term in enumerate(order):
        column: Any
        if term.entity == "attributes":
            column = _ATTRIBUTE_COLUMNS[term.key]
        else:
            table = {"metrics": latest_metrics, "params": params, "tags": tags}[term.entity]
            alias: Subquery | Any = table.alias(f"o{i}")
            stmt = stmt.outerjoin(alias, and_(alias.c.run_id == runs.c.id,
                                              alias.c.key == term.key))
            column = alias.c.value
        # Runs without the key sort last either way, as MLflow does.
        order_by.append(column.is_(None))
        order_by.append(column.desc() if term.descending else column.asc())
    order_by.extend([runs.c.start_time.desc(), runs.c.id])
    return stmt.order_by(*order_by).limit(limit).offset(offset)




def search_runs(
    conn: Any,
    *,
    experiment: str | Sequence[str] | None,
    filter: str | None,
    order_by: Sequence[str] | str | None,
    limit: int,
    offset: int = 0,
    parent_id: str | None = None,
) -> list[Any]:
    """Runs matching the filter, as RunRecords, in the requested order."""
    from ..errors import InvalidInput, NotFound
    from .filters import parse_filter, parse_order_by
    from .runs import get_runs

    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50_000:
        raise InvalidInput("limit must be an integer from 1 to 50000", field="limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset must be a non-negative integer", field="offset")
    exp_ids: list[int] | None = None
    if experiment is not None:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        found = dict(conn.execute(select(experiments.c.name, experiments.c.id)
                                  .where(experiments.c.name.in_(names))).all())
        missing = [n for n in names if n not in found]
        if missing:
            raise NotFound(f"no experiment named {missing[0]!r}")
        exp_ids = list(found.values())
    stmt = build_query(experiment_ids=exp_ids, filters=parse_filter(filter),
                       order=parse_order_by(order_by), limit=limit, offset=offset,
                       parent_id=parent_id)
    ids = [row.id for row in conn.execute(stmt)]
    return get_runs(conn, ids)
