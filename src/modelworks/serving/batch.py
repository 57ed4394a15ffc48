"""Batch scoring of a CSV or Parquet file, chunk by chunk, with the serving checks.

Chunks are read with pyarrow (Parquet row groups re-sliced to ``chunk_rows``; CSV streamed),
checked against the version's signature like a request, predicted, and appended to the output
file, so memory stays bounded by one chunk. Batch scores are written to the output file, not
to the prediction log (that records served predictions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from ..errors import InvalidInput, NotFound
from ..registry.loading import load
from ..registry.uri import parse_model_uri
from .model_cache import ServedModel

__all__ = ["BatchSummary", "score_file"]

_SUFFIXES = (".csv", ".parquet", ".pq")


class BatchSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_uri: str
    rows: int
    chunks: int
    seconds: float
    output: Path


def _kind(path: Path, field: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise InvalidInput(f"{field} must be a .csv or .parquet file, got {path.name!r}",
                           field=field)
    return "csv" if suffix == ".csv" else "parquet"


def _chunks(path: Path, kind: str, rows: int) -> tuple[Iterator[pa.Table], int | None]:
    if kind == "parquet":
        file = pq.ParquetFile(path)
        return (pa.Table.from_batches([b]) for b in file.iter_batches(batch_size=rows)), \
            file.metadata.num_rows
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22))
    return (pa.Table.from_batches([b]) for b in reader), None


def score_file(ws: Any, uri: str, source: Path, target: Path, *, chunk_rows: int = 50_000,
               probabilities: bool = False,
               progress: Callable[[int, int | None], None] | None = None) -> BatchSummary:
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise NotFound(f"input file {str(source)!r} not found")
    in_kind, out_kind = _kind(source, "input"), _kind(target, "output")
    ref = parse_model_uri(uri)
    served = ServedModel(load(ws.ctx, str(ref)))
    started = time.perf_counter()
    chunks, total = _chunks(source, in_kind, chunk_rows)
    writer: Any = None
    done = n_chunks = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    try:
        for table in chunks:
            frame = table.to_pandas()
            rows = frame.to_dict(orient="records")
            try:
                predictions, probas = served.predict(served.inputs(rows), proba=probabilities)
            except InvalidInput as exc:
                raise InvalidInput(f"rows {done + 1}-{done + len(rows)}: {exc}",
                                   field=exc.field) from exc
            out = frame.assign(prediction=predictions)
            if probas is not None:
                for j, cls in enumerate(served.classes or range(len(probas[0]))):
                    out[f"proba_{cls}"] = [p[j] for p in probas]
            writer = _write(out, tmp, out_kind, writer)
            done += len(rows)
            n_chunks += 1
            if progress is not None:
                progress(done, total)
        if writer is None:
            raise InvalidInput(f"{source.name} holds no rows", field="input")
        if out_kind == "parquet":
            writer.close()
        tmp.replace(target)  # the output appears whole or not at all
    finally:
        if tmp.exists():
            tmp.unlink()
    return BatchSummary(model_uri=f"models:/{served.name}/{served.number}", rows=done,
                        chunks=n_chunks, seconds=time.perf_counter() - started, output=target)


def _write(frame: pd.DataFrame, path: Path, kind: str, writer: Any) -> Any:
    if kind == "csv":
        frame.to_csv(path, mode="a" if writer else "w", header=writer is None, index=False)
        return True
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer
