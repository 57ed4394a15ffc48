"""The driver half of ``train_many``: store a chunk's models and register them at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ..context import Context
from ..registry.models import NewVersion, record_versions
from ..store.artifacts import ArtifactRef

__all__ = ["register_batch"]


def register_batch(ctx: Context, items: list[tuple[str, dict[str, Any]]], *, run_id: str,
                   group_by: str) -> list[tuple[Any, int | None, str | None]]:
    """Register ``(model name, train_chunk item)`` pairs in one transaction.

    Returns ``(group, version, error)`` per item. One bad registration would roll the
    whole transaction back, so a failed batch is retried item by item to find it and keep
    the rest: one commit per chunk normally, and no group lost to another's failure.
    """
    if not items:
        return []
    # bytes before the records that point at them (the workers usually stored them already)
    refs = [ArtifactRef(sha256=item["sha256"], size=item["size"]) if "sha256" in item
            else ctx.artifacts.put_bytes(item["data"]) for _, item in items]

    entries = [NewVersion(
        name=name, sha256=ref.sha256, size=ref.size, fmt=item["format"], library=item["library"],
        library_version=item["library_version"], allow_pickle=item["executes_code"],
        run_id=run_id, signature=item["signature"], input_example=item["input_example"],
        model_description=f"{group_by} = {item['group']}",
        tags={"group_by": group_by, "group": item["group"]})
        for (name, item), ref in zip(items, refs, strict=True)]

    def work(conn: Connection) -> list[tuple[Any, int | None, str | None]]:
        versions = record_versions(ctx, conn, entries)
        return [(item["group"], version, None)
                for (_, item), version in zip(items, versions, strict=True)]

    try:
        return ctx.db.write_retrying(work)
    except Exception as exc:
        if len(items) == 1:
            return [(items[0][1]["group"], None, f"{type(exc).__name__}: {exc}")]
    return [result for pair in items
            for result in register_batch(ctx, [pair], run_id=run_id, group_by=group_by)]
