"""The driver's writes: pipeline and step run rows, lineage, cache entries, audit events.

Each state change is one transaction with what belongs to it: a finished step's row, its
tracked run's end, the lineage edge from its output to that run, its metrics and its cache
entry commit together, so a crash never leaves a cache entry without its run.

Lineage (edges read "child was made from parent"):

* ``artifact:<sha256> --produced_by--> run:<step run>``  the step's output
* ``run:<step run> --used:<param>--> artifact:<sha256>``  each stored input it read
* ``run:<step run> --step_of--> pipeline_run:<id>``
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, update

from .. import audit
from ..context import Context
from ..lineage import Node, add_edge
from ..store.tables import pipeline_runs, step_runs, utcnow
from ..tracking import runs as _runs
from ..tracking.metrics import check_key, check_value, write_points
from . import cache as _cache
from .dag import Dag
from .records import CACHED, FAILED, FINISHED, PENDING, RUNNING, SKIPPED

__all__ = ["Used", "finish_pipeline", "start_pipeline", "step_cached", "step_failed",
           "step_finished", "step_retrying", "step_started", "steps_skipped"]

_ERROR_CHARS = 8_000

Used = tuple[str, str, str | None, str]  # (param, sha256, producer node or None, format)


def start_pipeline(ctx: Context, *, pipeline_run_id: str, pipeline: str, run_id: str,
                   executor: str, params: Mapping[str, Any], dag: Dag) -> dict[str, int]:
    """Insert the run and a PENDING row per node (audited); returns step row ids by node."""
    now = utcnow()
    with ctx.db.write() as conn:
        conn.execute(insert(pipeline_runs).values(
            id=pipeline_run_id, pipeline=pipeline, run_id=run_id, status=RUNNING,
            executor=executor, params=dict(params), dag=dag.model_dump(mode="json"),
            outputs={"kind": dag.output_kind, "items": {}}, error=None, started_at=now,
            finished_at=None, created_by=ctx.actor))
        conn.execute(insert(step_runs), [
            {"pipeline_run_id": pipeline_run_id, "node": n.id, "step": n.step[:300],
             "run_id": None, "status": PENDING, "cached": False, "cache_key": None,
             "output_sha256": None, "output_format": None, "attempts": 0, "error": None,
             "started_at": None, "finished_at": None} for n in dag.nodes])
        ids = dict(conn.execute(select(step_runs.c.node, step_runs.c.id).where(
            step_runs.c.pipeline_run_id == pipeline_run_id)).all())
        audit.append(ctx.db, conn, actor=ctx.actor, action="pipeline.started",
                     entity_type="pipeline_run", entity_id=pipeline_run_id, payload={
                         "pipeline": pipeline, "path": dag.path, "executor": executor,
                         "params": dict(params), "run_id": run_id,
                         "nodes": [n.id for n in dag.nodes]})
    return {str(k): int(v) for k, v in ids.items()}


def step_cached(ctx: Context, *, step_run_id: int, key: str, hit: _cache.CacheHit) -> str | None:
    """Record a cache hit; returns the tracked run that first made the output."""
    now = utcnow()
    with ctx.db.write() as conn:
        source = None
        if hit.step_run_id is not None:
            source = conn.execute(select(step_runs.c.run_id).where(
                step_runs.c.id == hit.step_run_id)).scalar()
        conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(
            status=CACHED, cached=True, cache_key=key, output_sha256=hit.sha256,
            output_format=hit.format, run_id=source, started_at=now, finished_at=now))
    return source


def step_started(ctx: Context, *, step_run_id: int, run_id: str, pipeline_run_id: str,
                 key: str | None, used: Sequence[Used]) -> None:
    """RUNNING on its tracked run, with the lineage of what it reads."""
    with ctx.db.write() as conn:
        conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(
            status=RUNNING, run_id=run_id, cache_key=key, attempts=1, started_at=utcnow()))
        run = Node(type="run", id=run_id)
        add_edge(conn, child=run, parent=Node(type="pipeline_run", id=pipeline_run_id),
                 relation="step_of", actor=ctx.actor)
        for param, sha, producer, fmt in used:
            add_edge(conn, child=run, parent=Node(type="artifact", id=sha),
                     relation=f"used:{param}", actor=ctx.actor,
                     payload={"node": producer, "format": fmt})


def step_retrying(ctx: Context, *, step_run_id: int, attempts: int, errors: str) -> None:
    with ctx.db.write() as conn:
        conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(
            attempts=attempts, error=errors[-_ERROR_CHARS:]))


def step_finished(ctx: Context, *, step_run_id: int, run_id: str, node: str, step: str,
                  pipeline_run_id: str, attempts: int, errors: str | None, sha256: str,
                  fmt: str, type_: str, metrics: Iterable[tuple[str, float, int]],
                  cache_key: str | None) -> None:
    """FINISHED: row, output lineage, metrics, cache entry and the run's end together."""
    now = utcnow()
    ts = time.time()
    points = [(run_id, check_key(k), check_value(k, v), int(s), ts) for k, v, s in metrics]
    with ctx.db.write() as conn:
        conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(
            status=FINISHED, attempts=attempts, output_sha256=sha256, output_format=fmt,
            error=errors[-_ERROR_CHARS:] if errors else None, finished_at=now))
        add_edge(conn, child=Node(type="artifact", id=sha256), parent=Node(type="run", id=run_id),
                 relation="produced_by", actor=ctx.actor,
                 payload={"node": node, "step": step, "format": fmt, "type": type_,
                          "pipeline_run": pipeline_run_id})
        if points:
            write_points(ctx.db, conn, points)
        if cache_key is not None:
            _cache.store(ctx.db, conn, key=cache_key, step=step, sha256=sha256, fmt=fmt,
                         type_=type_, step_run_id=step_run_id)
        _runs.end_run(ctx, run_id, status="FINISHED", conn=conn)


def step_failed(ctx: Context, *, step_run_id: int, run_id: str | None, attempts: int,
                error: str) -> None:
    with ctx.db.write() as conn:
        conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(
            status=FAILED, attempts=attempts, error=error[-_ERROR_CHARS:],
            finished_at=utcnow()))
        if run_id is not None:
            _runs.end_run(ctx, run_id, status="FAILED", error=error[-_ERROR_CHARS:], conn=conn)


def steps_skipped(ctx: Context, step_run_ids: Sequence[int], reason: str) -> None:
    if not step_run_ids:
        return
    with ctx.db.write() as conn:
        conn.execute(update(step_runs).where(step_runs.c.id.in_(list(step_run_ids))).values(
            status=SKIPPED, error=reason[:_ERROR_CHARS]))


def finish_pipeline(ctx: Context, *, pipeline_run_id: str, pipeline: str, run_id: str,
                    status: str, output_kind: str, outputs: Mapping[str, Mapping[str, Any]],
                    steps: Mapping[str, str], error: str | None) -> None:
    """The run's outcome, its tracked run's end and ``pipeline.finished``, together."""
    with ctx.db.write() as conn:
        conn.execute(update(pipeline_runs).where(pipeline_runs.c.id == pipeline_run_id).values(
            status=status, outputs={"kind": output_kind, "items": dict(outputs)},
            error=error[-_ERROR_CHARS:] if error else None, finished_at=utcnow()))
        _runs.end_run(ctx, run_id, status="FINISHED" if status == FINISHED else "FAILED",
                      error=error[-_ERROR_CHARS:] if error else None, conn=conn)
        audit.append(ctx.db, conn, actor=ctx.actor, action="pipeline.finished",
                     entity_type="pipeline_run", entity_id=pipeline_run_id, payload={
                         "pipeline": pipeline, "status": status, "steps": dict(steps),
                         "cached": sorted(n for n, s in steps.items() if s == CACHED),
                         "outputs": {k: v.get("sha256") for k, v in outputs.items()},
                         "error": _last_line(error)})


def _last_line(text: str | None) -> str | None:
    lines = (text or "").strip().splitlines()
    return lines[-1][:500] if lines else None
