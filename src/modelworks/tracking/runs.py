"""Runs: create, log params/tags/artifacts/datasets, end, read back.

Every change here is audited in its own transaction; metric points are not (too many), but
the run's end event records how many were written.
"""

from __future__ import annotations

import os
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, bindparam, insert, literal, select, union_all, update

from .. import audit
from ..context import Context
from ..errors import Conflict, InvalidInput, NotFound
from ..lineage import Node, add_edge, edges_of
from ..records import ArtifactEntry, DatasetUse, DatasetVersion, RunRecord, RunStatus
from ..store.artifacts import safe_relpath
from ..store.tables import (
    dataset_versions,
    datasets,
    experiments,
    latest_metrics,
    params,
    run_artifacts,
    runs,
    tags,
    utcnow,
)
from .environment import capture_environment
from .experiments import ensure_experiment, validate_name

__all__ = [
    "create_run",
    "end_run",
    "get_run",
    "get_runs",
    "log_artifact",
    "log_params",
    "require_running",
    "set_tags",
    "use_dataset",
]

_MAX_KEY = 256
# Hot-path statements, built once with bound parameters: building a statement costs more
# than SQLAlchemy's cached execution of it, and every run passes through these.
_RUN_STATE = select(runs.c.id, runs.c.status, runs.c.metric_count).where(
    runs.c.id == bindparam("rid"))
_PARAMS_OF = select(params.c.key, params.c.value).where(
    params.c.run_id == bindparam("rid"), params.c.key.in_(bindparam("keys", expanding=True)))
_INSERT_RUN = insert(runs)
_INSERT_PARAMS = insert(params)
_INSERT_TAGS = insert(tags)
_RUNS_BY_ID = (
    select(runs, experiments.c.name.label("experiment_name"))
    .join(experiments, experiments.c.id == runs.c.experiment_id)
    .where(runs.c.id.in_(bindparam("ids", expanding=True)))
)
# Params and tags (both text) in one round trip; metrics apart, as floats: a union needs one
# value type, and casting floats to text loses digits on SQLite.
_TEXT_KV_BY_RUN = union_all(*(
    select(literal(name).label("kind"), table.c.run_id, table.c.key, table.c.value)
    .where(table.c.run_id.in_(bindparam("ids", expanding=True)))
    for name, table in (("params", params), ("tags", tags))
))
_METRICS_BY_RUN = select(latest_metrics.c.run_id, latest_metrics.c.key,
                         latest_metrics.c.value).where(
    latest_metrics.c.run_id.in_(bindparam("ids", expanding=True)))
_RECORDS = TypeAdapter(list[RunRecord])
_END_RUN = update(runs).where(runs.c.id == bindparam("rid")).values(
    status=bindparam("new_status"), end_time=bindparam("new_end"), error=bindparam("new_error"))
_MAX_VALUE = 65_535
_ERROR_CHARS = 8_000


def _kv(items: Mapping[str, Any] | None, *, kind: str) -> dict[str, str]:
    if items is None:
        return {}
    if not isinstance(items, Mapping):
        raise InvalidInput(f"{kind} must be a mapping of names to values", field=kind)
    out: dict[str, str] = {}
    for key, value in items.items():
        if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
            raise InvalidInput(
                f"{kind} name must be a non-empty string of at most {_MAX_KEY} characters, "
                f"got {key!r}", field=kind,
            )
        text = value if isinstance(value, str) else str(value)
        if len(text) > _MAX_VALUE:
            raise InvalidInput(f"{kind} {key!r} value is longer than {_MAX_VALUE} characters",
                               field=kind)
        out[key] = text
    return out


def require_running(conn: Connection, run_id: str) -> Any:
    row = conn.execute(_RUN_STATE, {"rid": run_id}).first()
    if row is None:
        raise NotFound(f"no run with id {run_id!r}")
    if row.status != "RUNNING":
        raise Conflict(f"run {run_id} is {row.status}: a finished run cannot be changed")
    return row


def create_run(
    ctx: Context,
    *,
    experiment: str,
    name: str | None,
    params_: Mapping[str, Any] | None,
    tags_: Mapping[str, Any] | None,
    parent_id: str | None,
    cwd: str | None = None,
) -> str:
    param_map = _kv(params_, kind="params")
    tag_map = _kv(tags_, kind="tags")
    run_id = uuid.uuid4().hex
    run_name = validate_name(name, field="name") if name is not None else f"run-{run_id[:8]}"
    env_fields = capture_environment(cwd).model_dump()

    def work(conn: Connection) -> None:
        exp_id = ensure_experiment(ctx, conn, experiment)
        if parent_id is not None and conn.execute(_RUN_STATE, {"rid": parent_id}).first() is None:
            raise NotFound(f"no parent run with id {parent_id!r}")
        conn.execute(_INSERT_RUN, {
            "id": run_id, "experiment_id": exp_id, "parent_id": parent_id, "name": run_name,
            "status": "RUNNING", "start_time": utcnow(), "actor": ctx.actor, "metric_count": 0,
            "end_time": None, "error": None, **env_fields,
        })
        if param_map:
            conn.execute(_INSERT_PARAMS, [{"run_id": run_id, "key": k, "value": v}
                                          for k, v in param_map.items()])
        if tag_map:
            conn.execute(_INSERT_TAGS, [{"run_id": run_id, "key": k, "value": v}
                                        for k, v in tag_map.items()])
        audit.append(ctx.db, conn, actor=ctx.actor, action="run.created", entity_type="run",
                     entity_id=run_id, payload={
                         "experiment": experiment, "name": run_name, "parent_id": parent_id,
                         "params": param_map, "tags": tag_map, **env_fields,
                     })

    ctx.db.write_retrying(work)
    return run_id


def log_params(
    ctx: Context, run_id: str, values: Mapping[str, Any], *, conn: Connection | None = None
) -> None:
    """Params are immutable: the same value again is a no-op, another value a Conflict."""
    new = _kv(values, kind="params")
    if not new:
        return
    if conn is None:
        with ctx.db.write() as own:
            _log_params(ctx, own, run_id, new)
    else:
        _log_params(ctx, conn, run_id, new)


def _log_params(ctx: Context, conn: Connection, run_id: str, new: dict[str, str]) -> None:
    require_running(conn, run_id)
    existing = dict(conn.execute(_PARAMS_OF, {"rid": run_id, "keys": list(new)}).all())
    for key, value in new.items():
        if key in existing and existing[key] != value:
            raise Conflict(
                f"param {key!r} of run {run_id} is already {existing[key]!r}; params are "
                f"immutable, so {value!r} is refused (use a tag or a metric for values "
                "that change)"
            )
    fresh = {k: v for k, v in new.items() if k not in existing}
    if not fresh:
        return
    conn.execute(_INSERT_PARAMS, [{"run_id": run_id, "key": k, "value": v}
                                  for k, v in fresh.items()])
    audit.append(ctx.db, conn, actor=ctx.actor, action="run.params_logged",
                 entity_type="run", entity_id=run_id, payload={"params": fresh})


def set_tags(
    ctx: Context, run_id: str, values: Mapping[str, Any], *, conn: Connection | None = None
) -> None:
    new = _kv(values, kind="tags")
    if not new:
        return
    if conn is None:
        with ctx.db.write() as own:
            _set_tags(ctx, own, run_id, new)
    else:
        _set_tags(ctx, conn, run_id, new)


def _set_tags(ctx: Context, conn: Connection, run_id: str, new: dict[str, str]) -> None:
    require_running(conn, run_id)
    ctx.db.upsert(conn, tags, [{"run_id": run_id, "key": k, "value": v}
                               for k, v in new.items()],
                  keys=("run_id", "key"), update=("value",))
    audit.append(ctx.db, conn, actor=ctx.actor, action="run.tags_set", entity_type="run",
                 entity_id=run_id, payload={"tags": new})


def end_run(
    ctx: Context,
    run_id: str,
    *,
    status: RunStatus,
    error: BaseException | str | None = None,
    conn: Connection | None = None,
) -> None:
    """End a RUNNING run; with ``conn``, inside the caller's transaction."""
    if status not in ("FINISHED", "FAILED"):
        raise InvalidInput("status must be FINISHED or FAILED", field="status")
    if conn is None:
        with ctx.db.write() as own:
            _end(ctx, own, run_id, status, error)
    else:
        _end(ctx, conn, run_id, status, error)


def _end(ctx: Context, conn: Connection, run_id: str, status: RunStatus,
         error: BaseException | str | None) -> None:
    text: str | None
    if isinstance(error, BaseException):
        text = "".join(traceback.format_exception(error))[-_ERROR_CHARS:]
    else:
        text = error
    count = require_running(conn, run_id).metric_count
    conn.execute(_END_RUN, {"rid": run_id, "new_status": status, "new_end": utcnow(),
                            "new_error": text})
    payload: dict[str, Any] = {"status": status, "metric_points": int(count)}
    if text:
        payload["error"] = text.strip().splitlines()[-1][:500]
    audit.append(ctx.db, conn, actor=ctx.actor, action="run.ended", entity_type="run",
                 entity_id=run_id, payload=payload)


def log_artifact(
    ctx: Context, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None
) -> list[ArtifactEntry]:
    """Store a file, or a folder's files, under the run; returns what was recorded."""
    src = Path(local_path)
    if not src.exists():
        raise NotFound(f"no file or folder at {str(src)!r}")
    prefix = safe_relpath(artifact_path) if artifact_path else None
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file())
        names = [p.relative_to(src).as_posix() for p in files]
        if prefix is None:
            prefix = src.name
    else:
        files, names = [src], [src.name]
    entries: list[ArtifactEntry] = []
    for file, rel in zip(files, names, strict=True):
        name = safe_relpath(f"{prefix}/{rel}" if prefix else rel)
        ref = ctx.artifacts.put_file(file)  # bytes first: a record never points at nothing
        entries.append(ArtifactEntry(path=name, sha256=ref.sha256, size=ref.size))
    if not entries:
        raise InvalidInput(f"folder {str(src)!r} holds no files", field="local_path")
    with ctx.db.write() as conn:
        require_running(conn, run_id)
        ctx.db.upsert(conn, run_artifacts,
                      [{"run_id": run_id, **e.model_dump()} for e in entries],
                      keys=("run_id", "path"), update=("sha256", "size"))
        audit.append(ctx.db, conn, actor=ctx.actor, action="run.artifacts_logged",
                     entity_type="run", entity_id=run_id,
                     payload={"artifacts": [e.model_dump() for e in entries]})
    return entries


def use_dataset(ctx: Context, run_id: str, version: DatasetVersion, role: str) -> None:
    """Record that the run read this dataset version (lineage edge run -> dataset version)."""
    if not isinstance(role, str) or not role.strip():
        raise InvalidInput("role must be a non-empty string such as 'train'", field="role")
    with ctx.db.write() as conn:
        require_running(conn, run_id)
        if conn.execute(select(dataset_versions.c.id)
                        .where(dataset_versions.c.id == version.id)).first() is None:
            raise NotFound(f"no dataset version {version.uri}")
        add_edge(conn, child=Node(type="run", id=run_id),
                 parent=Node(type="dataset_version", id=str(version.id)),
                 relation=f"used:{role}", actor=ctx.actor,
                 payload={"dataset": version.name, "version": version.version,
                          "content_hash": version.content_hash, "role": role})
        audit.append(ctx.db, conn, actor=ctx.actor, action="run.dataset_used",
                     entity_type="run", entity_id=run_id,
                     payload={"dataset": version.name, "version": version.version,
                              "content_hash": version.content_hash, "role": role})


def get_runs(
    conn: Connection, run_ids: list[str], *, detail: bool = False
) -> list[RunRecord]:
    """Records for the ids, in the given order (missing ids are skipped)."""
    if not run_ids:
        return []
    # .all() everywhere: iterating a result fetches row by row, ~10 us a row in SQLAlchemy.
    result = conn.execute(_RUNS_BY_ID, {"ids": run_ids})
    keys = ["experiment" if k == "experiment_name" else k for k in result.keys()]  # noqa: SIM118
    fields = {row[0]: dict(zip(keys, row, strict=True)) for row in result.all()}
    for record in fields.values():
        record.update(params={}, tags={}, metrics={}, artifacts=[], datasets=[])
    for kind, rid, key, value in conn.execute(_TEXT_KV_BY_RUN, {"ids": run_ids}).all():
        fields[rid][kind][key] = value
    for rid, key, value in conn.execute(_METRICS_BY_RUN, {"ids": run_ids}).all():
        fields[rid]["metrics"][key] = float("nan") if value is None else value
    out = []
    for rid in run_ids:
        f = fields.get(rid)
        if f is None:
            continue
        if detail:
            f["artifacts"] = [
                ArtifactEntry(path=p, sha256=s, size=n) for p, s, n in conn.execute(
                    select(run_artifacts.c.path, run_artifacts.c.sha256, run_artifacts.c.size)
                    .where(run_artifacts.c.run_id == rid).order_by(run_artifacts.c.path))
            ]
            f["datasets"] = _datasets_used(conn, rid)
        out.append(f)
    # One validation call for the page: pydantic-core's loop beats even model_construct.
    return _RECORDS.validate_python(out)


def _datasets_used(conn: Connection, run_id: str) -> list[DatasetUse]:
    found = []
    for edge in edges_of(conn, [Node(type="run", id=run_id)]):
        if edge.parent.type != "dataset_version":
            continue
        row = conn.execute(
            select(datasets.c.name, dataset_versions.c.version, dataset_versions.c.content_hash)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(dataset_versions.c.id == int(edge.parent.id))
        ).first()
        if row is not None:
            found.append(DatasetUse(dataset=row.name, version=row.version,
                                    content_hash=row.content_hash,
                                    role=edge.payload.get("role", edge.relation)))
    return found


def get_run(conn: Connection, run_id: str) -> RunRecord:
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInput("run_id must be a non-empty string", field="run_id")
    found = get_runs(conn, [run_id], detail=True)
    if not found:
        raise NotFound(f"no run with id {run_id!r}")
    return found[0]
