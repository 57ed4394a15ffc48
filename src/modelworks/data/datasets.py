"""Dataset versions: immutable, content-addressed Parquet snapshots with profiles.

Logging the same content again returns the version already recorded, so a training script
can log its data on every run without multiplying versions.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput, NotFound
from ..records import DatasetRecord, DatasetVersion
from ..store.tables import dataset_versions, datasets, utcnow
from ..tracking.experiments import validate_name
from .hashing import content_hash
from .profiles import profile_frame

__all__ = [
    "get_dataset_version",
    "list_dataset_versions",
    "list_datasets",
    "load_dataset",
    "log_dataset",
    "parse_dataset_ref",
]

def _read(data: pd.DataFrame | str | os.PathLike[str]) -> tuple[pd.DataFrame, str | None]:
    if isinstance(data, pd.DataFrame):
        return data, None
    if not isinstance(data, str | os.PathLike):
        raise InvalidInput(
            f"data must be a pandas DataFrame or a CSV/Parquet path, got {type(data).__name__}",
            field="data",
        )
    path = Path(data)
    if not path.is_file():
        raise NotFound(f"no data file at {str(path)!r}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path), str(path)
        if suffix in (".csv", ".txt") or suffix.endswith(".gz"):
            return pd.read_csv(path), str(path)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"cannot read {str(path)!r}: {exc}", field="data") from exc
    raise InvalidInput(f"data file {str(path)!r} must end in .csv or .parquet", field="data")


def _snapshot(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    try:
        df.to_parquet(buf, index=False)
    except (ValueError, TypeError) as exc:  # e.g. mixed-type object columns
        raise InvalidInput(f"data cannot be stored as Parquet: {exc}", field="data") from exc
    return buf.getvalue()


def _record(row: Any) -> DatasetVersion:
    return DatasetVersion(
        id=row.id,
        name=row.name,
        version=row.version,
        content_hash=row.content_hash,
        artifact_sha256=row.artifact_sha256,
        columns=row.schema,
        row_count=row.row_count,
        profile=row.profile,
        source=row.source,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _version_query() -> Any:
    return select(dataset_versions, datasets.c.name).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def _existing(conn: Connection, name: str, digest: str) -> DatasetVersion | None:
    row = conn.execute(
        _version_query().where(datasets.c.name == name, dataset_versions.c.content_hash == digest)
    ).first()
    return _record(row) if row else None


def log_dataset(
    ctx: Context,
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    name: str,
    source: str | None = None,
    on_logged: Callable[[Connection, DatasetVersion], None] | None = None,
) -> DatasetVersion:
    """Record ``data`` as the dataset's next version, or return the equal one recorded.

    ``on_logged(conn, version)`` runs in the transaction that records (or finds) the version,
    for a caller whose own records must exist exactly when the version does.
    """
    validate_name(name, field="name")
    df, path = _read(data)
    if df.columns.duplicated().any():
        dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise InvalidInput(f"data has duplicate column names: {dupes}", field="data")
    df = df.rename(columns=str)
    digest = content_hash(df)
    with ctx.db.read() as conn:
        found = _existing(conn, name, digest)
    if found is not None:
        if on_logged is not None:
            existing, then = found, on_logged
            return ctx.db.write_retrying(lambda conn: _then(conn, existing, then))
        return found
    ref = ctx.artifacts.put_bytes(_snapshot(df))  # bytes before the record that points at them
    profile = profile_frame(df).model_dump(mode="json")
    columns = {str(c): str(t) for c, t in df.dtypes.items()}

    def work(conn: Connection) -> DatasetVersion:
        found = _existing(conn, name, digest)
        if found is not None:
            return _then(conn, found, on_logged)
        ds_id = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
        if ds_id is None:
            ds_id = conn.execute(
                insert(datasets)
                .values(name=name, created_at=utcnow(), created_by=ctx.actor)
                .returning(datasets.c.id)
            ).scalar_one()
            audit.append(
                ctx.db,
                conn,
                actor=ctx.actor,
                action="dataset.created",
                entity_type="dataset",
                entity_id=ds_id,
                payload={"name": name},
            )
        version = (
            conn.execute(
                select(func.max(dataset_versions.c.version)).where(
                    dataset_versions.c.dataset_id == ds_id
                )
            ).scalar()
            or 0
        ) + 1
        vid = conn.execute(
            insert(dataset_versions)
            .values(
                dataset_id=ds_id,
                version=version,
                content_hash=digest,
                artifact_sha256=ref.sha256,
                schema=columns,
                row_count=len(df),
                profile=profile,
                source=source or path,
                created_at=utcnow(),
                created_by=ctx.actor,
            )
            .returning(dataset_versions.c.id)
        ).scalar_one()
        audit.append(
            ctx.db,
            conn,
            actor=ctx.actor,
            action="dataset_version.logged",
            entity_type="dataset_version",
            entity_id=vid,
            payload={
                "dataset": name,
                "version": version,
                "content_hash": digest,
                "artifact_sha256": ref.sha256,
                "rows": len(df),
                "columns": list(columns),
            },
        )
        row = conn.execute(_version_query().where(dataset_versions.c.id == vid)).first()
        return _then(conn, _record(row), on_logged)

    # Another process may create the dataset or take this version number first: the
    # transaction then reruns and finds its row.
    return ctx.db.write_retrying(work)


def _then(conn: Connection, version: DatasetVersion,
          on_logged: Callable[[Connection, DatasetVersion], None] | None) -> DatasetVersion:
    if on_logged is not None:
        on_logged(conn, version)
    return version


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:VERSION`` (the CLI's form)."""
    name, sep, ver = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if not sep:
        return ref, None
    if not ver.isdigit():
        raise InvalidInput(
            f"dataset version must be a positive integer, got {ver!r}", field="version"
        )
    return name, int(ver)


def get_dataset_version(conn: Connection, name: str, version: int | None = None) -> DatasetVersion:
    stmt = _version_query().where(datasets.c.name == name)
    if version is None:
        stmt = stmt.order_by(dataset_versions.c.version.desc()).limit(1)
    else:
        stmt = stmt.where(dataset_versions.c.version == version)
    row = conn.execute(stmt).first()
    if row is None:
        exists = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first()
        if exists is None:
            raise NotFound(f"no dataset named {name!r}")
        raise NotFound(f"dataset {name!r} has no version {version}")
    return _record(row)


def list_dataset_versions(conn: Connection, name: str) -> list[DatasetVersion]:
    rows = conn.execute(
        _version_query().where(datasets.c.name == name).order_by(dataset_versions.c.version)
    ).all()
    if not rows:
        raise NotFound(f"no dataset named {name!r}")
    return [_record(r) for r in rows]


def list_datasets(conn: Connection) -> list[DatasetRecord]:
    stats = {
        r.dataset_id: r
        for r in conn.execute(
            select(
                dataset_versions.c.dataset_id,
                func.max(dataset_versions.c.version).label("v"),
                func.count().label("n"),
            ).group_by(dataset_versions.c.dataset_id)
        )
    }
    out = []
    for r in conn.execute(select(datasets).order_by(datasets.c.name)):
        s = stats.get(r.id)
        out.append(
            DatasetRecord(
                id=r.id,
                name=r.name,
                created_at=r.created_at,
                created_by=r.created_by,
                latest_version=s.v if s else None,
                version_count=s.n if s else 0,
            )
        )
    return out


def load_dataset(ctx: Context, version: DatasetVersion) -> pd.DataFrame:
    """The snapshot's rows, verified against the stored hash before parsing."""
    return pd.read_parquet(io.BytesIO(ctx.artifacts.get_bytes(version.artifact_sha256)))
