"""Is the validation data held out? Compare it with the data the version was trained on.

The training data is what the version's run recorded with ``run.use_dataset`` (lineage
edges run -> dataset version), except the datasets it used in an evaluation role (``test``,
``validation``, ``holdout``, ``eval``...): validating on the run's own test set is held out.

Two checks:
- by content hash: the validation data is byte-for-byte one of the training dataset versions;
- by rows: each validation row's feature values (the model's input columns both frames have)
  are hashed, values normalised first (numbers as float64, everything else as text, so
  ``1`` and ``1.0`` match), and looked up among the training rows' hashes.

``held_out`` is True when no training version matches by hash and the overlap is below
``OVERLAP_TOLERANCE``; False otherwise — and also False when the run recorded no training
dataset (or the version has no run): held-out-ness must be shown, not assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, select

from ..data.datasets import load_dataset
from ..records import DatasetVersion
from ..store.tables import dataset_versions, datasets, lineage_edges

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["EVALUATION_ROLES", "OVERLAP_TOLERANCE", "HeldOutCheck", "check_held_out",
           "row_hashes", "training_datasets"]

OVERLAP_TOLERANCE = 0.01  # a few duplicated rows happen in real data; 1% is a leak
EVALUATION_ROLES = frozenset({"test", "testing", "validation", "valid", "val", "holdout",
                              "hold-out", "hold_out", "eval", "evaluation"})


class TrainingData(BaseModel):
    model_config = ConfigDict(frozen=True)

    dataset: str
    version: int
    role: str
    content_hash: str
    rows: int
    overlap_rows: int | None = None


class HeldOutCheck(BaseModel):
    """The outcome: ``held_out``, why, and the figures behind it."""

    model_config = ConfigDict(frozen=True)

    held_out: bool
    reason: str
    data_hash: str
    hash_match: bool
    overlap_rows: int
    overlap_fraction: float
    compared_columns: list[str]
    training: list[TrainingData]


def training_datasets(conn: Connection, run_id: str | None
                      ) -> list[tuple[DatasetVersion, str]]:
    """(dataset version, role) for each training dataset the run recorded."""
    if run_id is None:
        return []
    from ..data.datasets import _record

    edges = conn.execute(select(lineage_edges.c.parent_id, lineage_edges.c.relation).where(
        lineage_edges.c.child_type == "run", lineage_edges.c.child_id == run_id,
        lineage_edges.c.parent_type == "dataset_version")).all()
    out = []
    for parent_id, relation in edges:
        role = relation.partition(":")[2] or relation
        if role.lower() in EVALUATION_ROLES or not parent_id.isdigit():
            continue
        row = conn.execute(select(dataset_versions, datasets.c.name).join(
            datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(dataset_versions.c.id == int(parent_id))).first()
        if row is not None:
            out.append((_record(row), role))
    return out


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    cols = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(
                series.dtype):
            cols[name] = series.astype("float64")
        else:
            cols[name] = series.astype("object").where(series.notna(), None).astype(str)
    return pd.DataFrame(cols, index=frame.index)


def row_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A 64-bit hash of each row's values in ``columns`` (normalised; index ignored)."""
    if not columns:
        return np.empty(0, dtype=np.uint64)
    part = _normalised(frame[list(columns)])
    return pd.util.hash_pandas_object(part, index=False).to_numpy(dtype=np.uint64)


def check_held_out(
    ctx: Context, conn: Connection, *, run_id: str | None, data: pd.DataFrame,
    data_hash: str, features: Sequence[str],
) -> HeldOutCheck:
    """Compare ``data`` (hash ``data_hash``) with the run's training dataset versions."""
    found = training_datasets(conn, run_id)
    if not found:
        why = ("the version has no training run" if run_id is None
               else f"run {run_id} recorded no training dataset (run.use_dataset)")
        return HeldOutCheck(held_out=False, reason=f"not shown to be held out: {why}",
                            data_hash=data_hash, hash_match=False, overlap_rows=0,
                            overlap_fraction=0.0, compared_columns=[], training=[])
    mine: dict[tuple[str, ...], np.ndarray] = {}  # the validation rows' hashes per column set
    seen: set[str] = set()
    overlap_mask = np.zeros(len(data), dtype=bool)
    training = []
    hash_match = False
    for version, role in found:
        hash_match |= version.content_hash == data_hash
        train = load_dataset(ctx, version)
        columns = tuple(c for c in features if c in train.columns and c in data.columns)
        overlap = None
        if columns:
            if columns not in mine:
                mine[columns] = row_hashes(data, columns)
            hit = np.isin(mine[columns], row_hashes(train, columns))
            overlap_mask |= hit
            overlap = int(hit.sum())
            seen.update(columns)
        training.append(TrainingData(dataset=version.name, version=version.version, role=role,
                                     content_hash=version.content_hash,
                                     rows=version.row_count, overlap_rows=overlap))
    rows = int(overlap_mask.sum())
    fraction = rows / len(data) if len(data) else 0.0
    names = ", ".join(f"{t.dataset}:{t.version}" for t in training)
    if hash_match:
        held, reason = False, f"the data is a training dataset version ({names})"
    elif not seen:
        held, reason = False, (f"no model input column in common with the training data "
                               f"({names}): row overlap cannot be checked")
    elif fraction >= OVERLAP_TOLERANCE:
        held, reason = False, (f"{rows:,} of {len(data):,} rows ({fraction:.1%}) also occur "
                               f"in the training data ({names})")
    else:
        held, reason = True, (f"differs from the training data ({names}) by hash; "
                              f"{rows:,} overlapping rows ({fraction:.2%}, tolerance "
                              f"{OVERLAP_TOLERANCE:.0%})")
    return HeldOutCheck(held_out=held, reason=reason, data_hash=data_hash,
                        hash_match=hash_match, overlap_rows=rows, overlap_fraction=fraction,
                        compared_columns=sorted(seen), training=training)
