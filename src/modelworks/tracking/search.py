"""Compile parsed run filters into SQLAlchemy expressions (never SQL strings).

Metric conditions and sorts read ``mw_latest_metrics`` (the latest value per run and key),
which an index on (key, value) serves, so a filtered, sorted page of 100 runs out of 100,000
touches few rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, not_, select
from sqlalchemy.sql import Subquery

from ..store.tables import experiments, latest_metrics, params, runs, tags
from .filters import Comparison, OrderTerm

__all__ = ["find_run_ids", "search_runs"]

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


_KV_TABLES = {"metrics": latest_metrics, "params": params, "tags": tags}


def _filtered(
    experiment_ids: Sequence[int] | None,
    filters: Sequence[Comparison],
    parent_id: str | None,
) -> tuple[Select[Any], dict[str, Any]]:
    """Run ids passing the filters, and the joined metric aliases by key (for reuse)."""
    stmt: Select[Any] = select(runs.c.id)
    conds: list[ColumnElement[bool]] = []
    if experiment_ids is not None:
        conds.append(runs.c.experiment_id.in_(list(experiment_ids)))
    if parent_id is not None:
        conds.append(runs.c.parent_id == parent_id)
    # A metric compared directly (not NOT IN / !=) is served best by a join on the
    # (key, value) index; the rest become EXISTS.
    joined: dict[str, Any] = {}
    for i, cmp in enumerate(filters):
        if cmp.entity == "metrics" and cmp.op in ("=", "<", "<=", ">", ">=", "IN"):
            fm = latest_metrics.alias(f"fm{i}")
            stmt = stmt.join(
                fm,
                and_(fm.c.run_id == runs.c.id, fm.c.key == cmp.key,
                     _compare(fm.c.value, cmp.op, cmp.value)),
            )
            joined.setdefault(cmp.key, fm)
        else:
            conds.append(_condition(cmp))
    if conds:
        stmt = stmt.where(and_(*conds))
    return stmt, joined


def _sorted(stmt: Select[Any], terms: Sequence[OrderTerm], *, start: int = 1
            ) -> tuple[Select[Any], list[Any]]:
    """ORDER BY terms for secondary sort keys; runs without the key sort last."""
    order_by: list[Any] = []
    for i, term in enumerate(terms, start=start):
        column: Any
        if term.entity == "attributes":
            column = _ATTRIBUTE_COLUMNS[term.key]
        else:
            alias: Subquery | Any = _KV_TABLES[term.entity].alias(f"o{i}")
            stmt = stmt.outerjoin(alias, and_(alias.c.run_id == runs.c.id,
                                              alias.c.key == term.key))
            column = alias.c.value
        order_by.append(column.is_(None))
        order_by.append(column.desc() if term.descending else column.asc())
    return stmt, order_by


_EXPERIMENT_IDS = select(experiments.c.name, experiments.c.id).where(
    experiments.c.name.in_(bindparam("names", expanding=True)))
_TIEBREAK = (runs.c.start_time.desc(), runs.c.id)


def _direction(column: Any, term: OrderTerm) -> Any:
    return column.desc() if term.descending else column.asc()


def find_run_ids(
    conn: Connection,
    *,
    experiment_ids: Sequence[int] | None,
    filters: Sequence[Comparison],
    order: Sequence[OrderTerm],
    limit: int,
    offset: int = 0,
    parent_id: str | None = None,
) -> list[str]:
    """Ids of the runs matching ``filters``, sorted and paged.

    Sorting by a metric, param or tag first walks the (key, value) index over runs that
    have a value — a page of 100 out of 100,000 then reads about 100 index entries instead
    of sorting every match — and only if the page is not full continues with the runs that
    have none (they sort last, as in MLflow; a NaN metric counts as none).
    """
    base, joined = _filtered(experiment_ids, filters, parent_id)
    if not order or order[0].entity == "attributes":
        stmt, order_by = _sorted(base, order, start=0)
        stmt = stmt.order_by(*order_by, *_TIEBREAK).limit(limit).offset(offset)
        return [row.id for row in conn.execute(stmt)]

    first, rest = order[0], order[1:]
    if first.entity == "metrics" and first.key in joined:
        # The filter already keeps only runs with a (non-NaN) value: sort on its join.
        stmt, order_by = _sorted(base, rest)
        stmt = stmt.order_by(_direction(joined[first.key].c.value, first), *order_by,
                             *_TIEBREAK).limit(limit).offset(offset)
        return [row.id for row in conn.execute(stmt)]

    table = _KV_TABLES[first.entity]
    has = table.alias("o0")
    with_value = base.join(has, and_(has.c.run_id == runs.c.id, has.c.key == first.key,
                                     has.c.value.is_not(None)))
    stmt, order_by = _sorted(with_value, rest)
    stmt = stmt.order_by(_direction(has.c.value, first), *order_by, *_TIEBREAK)
    head = [row.id for row in conn.execute(stmt.limit(offset + limit))]
    if len(head) >= offset + limit:
        return head[offset:]
    page = head[offset:]
    without = base.where(~select(table.c.run_id).where(
        table.c.run_id == runs.c.id, table.c.key == first.key, table.c.value.is_not(None)
    ).exists())
    stmt, order_by = _sorted(without, rest)
    stmt = (stmt.order_by(*order_by, *_TIEBREAK)
            .limit(limit - len(page)).offset(max(0, offset - len(head))))
    return page + [row.id for row in conn.execute(stmt)]


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
        found = dict(conn.execute(_EXPERIMENT_IDS, {"names": names}).all())
        missing = [n for n in names if n not in found]
        if missing:
            raise NotFound(f"no experiment named {missing[0]!r}")
        exp_ids = list(found.values())
    ids = find_run_ids(conn, experiment_ids=exp_ids, filters=parse_filter(filter),
                       order=parse_order_by(order_by), limit=limit, offset=offset,
                       parent_id=parent_id)
    return get_runs(conn, ids)
