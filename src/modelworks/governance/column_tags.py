"""Tags on a dataset's columns (``sensitive``, ``identifier``, ``pseudonymized``, ...).

A tag belongs to a column name of a dataset and so holds for every version that has the
column. Scans add ``identifier``; pseudonymisation adds ``pseudonymized``; people add
``sensitive`` (or any tag). Each change is audited in its own transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput, NotFound
from ..store.tables import dataset_column_tags, dataset_versions, datasets, utcnow

__all__ = ["add_tags", "column_tags", "dataset_id", "tag_columns", "untag_columns"]

_TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def dataset_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no dataset named {name!r}")
    return int(found)


def _known_columns(conn: Connection, ds_id: int) -> set[str]:
    """Every column name of any version of the dataset."""
    known: set[str] = set()
    for schema in conn.execute(select(dataset_versions.c.schema)
                               .where(dataset_versions.c.dataset_id == ds_id)).scalars():
        known.update(schema)
    return known


def _check(columns: Sequence[str] | str, tag: str, known: set[str], name: str) -> list[str]:
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise InvalidInput(f"tag must be 1-64 lowercase letters, digits, '_', '-' or '.', "
                           f"got {tag!r}", field="tag")
    if isinstance(columns, str):
        columns = [columns]
    wanted = list(dict.fromkeys(str(c) for c in columns))
    if not wanted:
        raise InvalidInput("columns must name at least one column", field="columns")
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise InvalidInput(f"dataset {name!r} has no column {unknown[0]!r} "
                           f"(columns: {sorted(known)})", field="columns")
    return wanted


def add_tags(conn: Connection, ds_id: int, columns: Iterable[str], tag: str, actor: str
             ) -> list[str]:
    """Tag the columns in the caller's transaction; returns those newly tagged."""
    have = set(conn.execute(select(dataset_column_tags.c.column).where(
        dataset_column_tags.c.dataset_id == ds_id, dataset_column_tags.c.tag == tag)).scalars())
    new = [c for c in dict.fromkeys(columns) if c not in have]
    if new:
        now = utcnow()
        conn.execute(insert(dataset_column_tags), [
            {"dataset_id": ds_id, "column": c, "tag": tag, "set_at": now, "set_by": actor}
            for c in new])
    return new


def tag_columns(ctx: Context, dataset: str, columns: Sequence[str] | str,
                tag: str = "sensitive") -> dict[str, list[str]]:
    """Tag columns of a dataset (every version); returns the dataset's tags afterwards."""
    def work(conn: Connection) -> dict[str, list[str]]:
        ds_id = dataset_id(conn, dataset)
        wanted = _check(columns, tag, _known_columns(conn, ds_id), dataset)
        new = add_tags(conn, ds_id, wanted, tag, ctx.actor)
        if new:
            audit.append(ctx.db, conn, actor=ctx.actor, action="dataset.columns_tagged",
                         entity_type="dataset", entity_id=ds_id,
                         payload={"dataset": dataset, "tag": tag, "columns": new})
        return column_tags(conn, dataset)

    # Two writers tagging the same column at once: the loser reruns and finds the tag.
    return ctx.db.write_retrying(work)


def untag_columns(ctx: Context, dataset: str, columns: Sequence[str] | str,
                  tag: str = "sensitive") -> dict[str, list[str]]:
    """Remove a tag from columns; returns the dataset's tags afterwards."""
    with ctx.db.write() as conn:
        ds_id = dataset_id(conn, dataset)
        wanted = _check(columns, tag, _known_columns(conn, ds_id), dataset)
        t = dataset_column_tags
        removed = list(conn.execute(select(t.c.column).where(
            t.c.dataset_id == ds_id, t.c.tag == tag, t.c.column.in_(wanted))).scalars())
        if removed:
            conn.execute(delete(t).where(t.c.dataset_id == ds_id, t.c.tag == tag,
                                         t.c.column.in_(removed)))
            audit.append(ctx.db, conn, actor=ctx.actor, action="dataset.columns_untagged",
                         entity_type="dataset", entity_id=ds_id,
                         payload={"dataset": dataset, "tag": tag, "columns": sorted(removed)})
        return column_tags(conn, dataset)


def column_tags(conn_or_ctx: Connection | Context, dataset: str) -> dict[str, list[str]]:
    """``{column: [tags]}`` of a dataset, sorted."""
    if isinstance(conn_or_ctx, Context):
        with conn_or_ctx.db.read() as conn:
            return column_tags(conn, dataset)
    conn = conn_or_ctx
    ds_id = dataset_id(conn, dataset)
    t = dataset_column_tags
    out: dict[str, list[str]] = {}
    for row in conn.execute(select(t.c.column, t.c.tag).where(t.c.dataset_id == ds_id)
                            .order_by(t.c.column, t.c.tag)):
        out.setdefault(row.column, []).append(row.tag)
    return out
