"""Reference profiles of model versions: what monitoring compares new data with.

A version's reference is profiled from data it is known by — its training data (the
``train`` datasets its run used), its validation data, or a named dataset version — over its
signature's input columns plus a ``prediction`` column (the version's own predictions on that
data). The profile (``drift/profile.py``: mergeable cells and counts, raw values for small
references) is stored as JSON in the artifact store and indexed per version and source, so a
monitor run reads only the window's data. ``Workspace.register_model`` stores the training
reference when the run recorded its training data; ``Workspace.validate`` stores the
validation reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, select

from .. import audit
from ..context import Context
from ..data.datasets import get_dataset_version, load_dataset
from ..data.hashing import content_hash
from ..errors import InvalidInput, NotFound
from ..lineage.edges import Node, edges_of
from ..registry.loading import LoadedModel, load
from ..registry.models import resolve, version_id
from ..registry.records import ModelVersion
from ..registry.uri import parse_model_uri
from ..store.tables import reference_profiles, utcnow
from .drift.profile import ReferenceProfile, profile_reference

__all__ = ["LABEL", "LABELS_SUFFIX", "PREDICTION", "ReferenceRecord", "current_frame",
           "get_reference", "model_failed", "store_reference", "training_frame"]

PREDICTION = "prediction"
LABEL = "label"  # the one column of a ``<source>-labels`` reference
LABELS_SUFFIX = "-labels"


class ReferenceRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    model: str
    version: int
    source: str
    rows: int
    data_hash: str | None
    profile_sha256: str
    created_at: datetime
    created_by: str


def _inputs(version: ModelVersion) -> list[str]:
    return [c["name"] for c in (version.signature or {}).get("inputs", [])]


def training_frame(ctx: Context, version: ModelVersion) -> pd.DataFrame | None:
    """The version's training rows (its run's ``train`` datasets), or None if unrecorded."""
    if version.run_id is None:
        return None
    with ctx.db.read() as conn:
        used = [e for e in edges_of(conn, [Node(type="run", id=version.run_id)])
                if e.parent.type == "dataset_version"
                and str(e.payload.get("role", "")).lower().startswith("train")]
        found = [get_dataset_version(conn, str(e.payload["dataset"]), int(e.payload["version"]))
                 for e in used]
    if not found:
        return None
    return pd.concat([load_dataset(ctx, v) for v in found], ignore_index=True)


def current_frame(loaded: LoadedModel, data: pd.DataFrame, *, with_prediction: bool = True
                  ) -> pd.DataFrame:
    """The signature's columns of ``data`` (what the model sees) plus its predictions."""
    names = _inputs(loaded.version)
    if not names:
        raise InvalidInput(f"{loaded.version.uri} has no signature: nothing to monitor",
                           field="model")
    missing = [n for n in names if n not in data.columns]
    if len(missing) == len(names):
        raise InvalidInput(f"the data has none of {loaded.version.uri}'s input columns "
                           f"({', '.join(names[:5])}...)", field="data")
    frame = data[[n for n in names if n in data.columns]].copy()
    if with_prediction and not missing:
        try:
            frame[PREDICTION] = loaded.predict(frame)
        except InvalidInput:
            raise
        except Exception as exc:  # the model's own failure: say which model and why
            raise model_failed(loaded, exc) from exc
    return frame


def model_failed(loaded: LoadedModel, exc: Exception) -> InvalidInput:
    """A model that raised on the given data: a client-facing error naming ``data``."""
    return InvalidInput(f"{loaded.version.uri} could not predict on the data: "
                        f"{type(exc).__name__}: {exc}", field="data")


def store_reference(ctx: Context, uri: str, data: pd.DataFrame, *, source: str,
                    bins: int = 100, label: str | None = None) -> ReferenceRecord:
    """Profile ``data`` as the version's reference called ``source`` (replacing an older
    one of the same source); audited. With ``label`` (a column of ``data``) its values are
    profiled too, as the reference ``<source>-labels`` (one column, ``label``): what a
    regression's label drift compares the window's feedback with."""
    loaded = load(ctx, uri)
    frame = current_frame(loaded, data)
    if frame.empty:
        raise InvalidInput("the reference data has no rows", field="data")
    digest = content_hash(data) if len(data) <= 5_000_000 else None
    if label is not None:
        if label not in data.columns:
            raise InvalidInput(f"label column {label!r} is not in the data", field="label")
        labels = pd.DataFrame({LABEL: data[label].to_numpy()})
        _save(ctx, loaded.version, f"{source}{LABELS_SUFFIX}",
              profile_reference(labels, bins=bins), len(labels), digest)
    return _save(ctx, loaded.version, source, profile_reference(frame, bins=bins), len(frame),
                 digest)


def _save(ctx: Context, version: ModelVersion, source: str, profile: ReferenceProfile,
          rows: int, digest: str | None) -> ReferenceRecord:
    ref = ctx.artifacts.put_bytes(profile.model_dump_json().encode("utf-8"))

    def work(conn: Connection) -> ReferenceRecord:
        vid = version_id(conn, version.name, version.version)
        now = utcnow()
        ctx.db.upsert(conn, reference_profiles, [{
            "model_version_id": vid, "source": source, "data_hash": digest, "rows": rows,
            "profile_sha256": ref.sha256, "created_at": now, "created_by": ctx.actor}],
            keys=("model_version_id", "source"),
            update=("data_hash", "rows", "profile_sha256", "created_at", "created_by"))
        row_id = conn.execute(select(reference_profiles.c.id).where(
            reference_profiles.c.model_version_id == vid,
            reference_profiles.c.source == source)).scalar_one()
        audit.append(ctx.db, conn, actor=ctx.actor, action="model_version.reference_stored",
                     entity_type="model_version", entity_id=f"{version.name}/{version.version}",
                     payload={"source": source, "rows": rows,
                              "profile_sha256": ref.sha256, "data_hash": digest})
        return ReferenceRecord(id=int(row_id), model=version.name, version=version.version,
                               source=source, rows=rows, data_hash=digest,
                               profile_sha256=ref.sha256, created_at=now, created_by=ctx.actor)

    return ctx.db.write_retrying(work)


def get_reference(ctx: Context, uri: str, source: str = "training"
                  ) -> tuple[ReferenceRecord, ReferenceProfile]:
    """The stored reference of the version ``uri`` names (NotFound naming what is missing)."""
    with ctx.db.read() as conn:
        version = resolve(conn, parse_model_uri(uri))
        vid = version_id(conn, version.name, version.version)
        row = conn.execute(select(reference_profiles).where(
            reference_profiles.c.model_version_id == vid,
            reference_profiles.c.source == source)).first()
        if row is None:
            sources = conn.execute(select(reference_profiles.c.source).where(
                reference_profiles.c.model_version_id == vid)).scalars().all()
    if row is None:
        known = f"; it has {', '.join(sources)}" if sources else \
            " (it has none: log its training data with run.use_dataset(..., role='train'), " \
            "validate it, or pass a dataset)"
        raise NotFound(f"{version.uri} has no {source!r} reference profile{known}")
    profile = ReferenceProfile.model_validate_json(ctx.artifacts.get_bytes(row.profile_sha256))
    record = ReferenceRecord(id=row.id, model=version.name, version=version.version,
                             source=row.source, rows=row.rows, data_hash=row.data_hash,
                             profile_sha256=row.profile_sha256, created_at=row.created_at,
                             created_by=row.created_by)
    return record, profile


def reference_for(ctx: Context, uri: str, reference: str | Any) -> tuple[ReferenceRecord,
                                                                         ReferenceProfile]:
    """``training``/``validation`` (stored), a DatasetVersion or ``dataset:NAME[:V]``: the
    latter two are profiled now and stored under that source."""
    from ..records import DatasetVersion

    if isinstance(reference, DatasetVersion):
        source = f"dataset:{reference.name}:{reference.version}"
        try:
            return get_reference(ctx, uri, source)
        except NotFound:
            store_reference(ctx, uri, load_dataset(ctx, reference), source=source)
            return get_reference(ctx, uri, source)
    if not isinstance(reference, str) or not reference:
        raise InvalidInput("reference must be 'training', 'validation', 'dataset:NAME[:V]' "
                           "or a DatasetVersion", field="reference")
    if reference.startswith("dataset:"):
        name, _, number = reference[len("dataset:"):].partition(":")
        with ctx.db.read() as conn:
            found = get_dataset_version(conn, name, int(number) if number.isdigit() else None)
        return reference_for(ctx, uri, found)
    if reference == "training":
        try:
            return get_reference(ctx, uri, "training")
        except NotFound:
            with ctx.db.read() as conn:
                version = resolve(conn, parse_model_uri(uri))
            frame = training_frame(ctx, version)
            if frame is None:
                raise
            store_reference(ctx, version.uri, frame, source="training")
            return get_reference(ctx, uri, "training")
    return get_reference(ctx, uri, reference)
