"""Read the prediction log: compacted Parquet files plus, optionally, the live journal.

A journal segment is read only while no index row names it: a segment compacted between
the journal read and the index read is then taken from Parquet, so a prediction is returned
once, never twice, whichever moment the compactor picks.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, or_, select

from ..errors import InvalidInput, NotFound
from ..store.tables import prediction_files
from ._logfiles import (
    COLUMNS,
    ERROR,
    decode_json_objects,
    dumps,
    loads,
    parse_lines,
    read_parquet,
    rows_from_table,
    table_from_rows,
    utc_day,
)
from .ids import parse_prediction_id, request_time
from .records import PredictionRecord

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..context import Context

__all__ = ["ValueType", "as_utc", "get_prediction", "iter_prediction_frames",
           "read_predictions"]

ValueType = Literal["number", "string", "bool"]

_OPEN, _CLOSED = ".open", ".jsonl"
# Where to look for a prediction by id, around its request's arrival time.
_BEFORE, _AFTER = timedelta(seconds=1), timedelta(minutes=10)


def as_utc(value: datetime | str | None, field: str) -> datetime | None:
    """An aware UTC datetime; naive datetimes and ISO strings without offset are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{field} must be an ISO 8601 time, got {value!r}",
                               field=field) from None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime, got {type(value).__name__}",
                           field=field)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _epoch(value: datetime | str | None, field: str) -> float | None:
    """Epoch seconds of a bound (see ``as_utc``)."""
    parsed = as_utc(value, field)
    return None if parsed is None else parsed.timestamp()


def _journal(journal_dir: str | os.PathLike[str] | None) -> dict[str, list[dict[str, Any]]]:
    """Rows of every segment still in the journal, by segment stem."""
    if journal_dir is None:
        return {}
    folder = Path(journal_dir)
    if not folder.is_dir():
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (_OPEN, _CLOSED):
            continue
        stem = path.name[: -len(path.suffix)]
        if stem in out:
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # rolled over (.open -> .jsonl) or compacted meanwhile
            try:
                data = path.with_suffix(_CLOSED).read_bytes()
            except FileNotFoundError:
                continue  # compacted: the index read that follows finds it
        out[stem] = parse_lines(data, source=path.name)[0]
    return out


def _indexed(conn: Connection, stems: Iterable[str]) -> set[str]:
    stems = list(stems)
    if not stems:
        return set()
    seg = prediction_files.c.segment
    found = conn.execute(select(seg).where(
        or_(*(seg.startswith(f"{s}/", autoescape=True) for s in stems)))).scalars()
    return {name.split("/", 1)[0] for name in found}


def _files(conn: Connection, *, model: str | None, lo: float | None, hi: float | None
           ) -> list[Any]:
    pf = prediction_files
    query = select(pf.c.artifact_sha256, pf.c.min_ts, pf.c.max_ts)
    if model is not None:
        query = query.where(pf.c.model == model)
    if lo is not None:
        query = query.where(pf.c.day >= utc_day(lo),
                            pf.c.max_ts >= datetime.fromtimestamp(lo, UTC))
    if hi is not None:
        query = query.where(pf.c.day <= utc_day(hi),
                            pf.c.min_ts < datetime.fromtimestamp(hi, UTC))
    return list(conn.execute(query.order_by(pf.c.max_ts.desc(), pf.c.id)).all())


def _sources(ctx: Context, journal_dir: str | os.PathLike[str] | None, *, model: str | None,
             lo: float | None, hi: float | None) -> tuple[list[Any], list[dict[str, Any]]]:
    """The window's compacted files and its live journal rows not yet compacted (journal
    read first, index second: a segment compacted in between is taken from Parquet only)."""
    journal = _journal(journal_dir)
    with ctx.db.read() as conn:
        files = _files(conn, model=model, lo=lo, hi=hi)
        compacted = _indexed(conn, journal)
    return files, [r for stem, seg_rows in journal.items() if stem not in compacted
                   for r in seg_rows]


def _table_rows(ctx: Context, sha256: str, *, lo: float | None, hi: float | None,
                include_shadow: bool, prediction_id: str | None = None,
                include_errors: bool = False) -> list[dict[str, Any]]:
    import pyarrow.compute as pc

    table: pa.Table = read_parquet(ctx.artifacts.get_bytes(sha256))
    masks = [] if prediction_id is None else [
        pc.equal(table.column("prediction_id"), prediction_id)]
    return rows_from_table(_filtered(table, lo=lo, hi=hi, include_shadow=include_shadow,
                                     masks=masks, include_errors=include_errors))


def _filtered(table: pa.Table, *, lo: float | None, hi: float | None, include_shadow: bool,
              version: int | None = None, masks: list[Any] | None = None,
              include_errors: bool = False) -> pa.Table:
    """The rows of a log table in ``[lo, hi)``, of ``version``, shadows and failed
    predictions (``error`` rows) only if asked."""
    import pyarrow.compute as pc

    masks = list(masks or [])
    micros = pc.cast(table.column("ts"), "int64")
    if lo is not None:
        masks.append(pc.greater_equal(micros, round(lo * 1_000_000)))
    if hi is not None:
        masks.append(pc.less(micros, round(hi * 1_000_000)))
    if not include_shadow:
        masks.append(pc.invert(table.column("shadow")))
    if version is not None:
        masks.append(pc.equal(table.column("version"), version))
    if not include_errors and ERROR in table.column_names:
        masks.append(pc.is_null(table.column(ERROR)))
    if masks:
        mask = masks[0]
        for extra in masks[1:]:
            mask = pc.and_(mask, extra)
        table = table.filter(mask)
    return table


def _keep(row: dict[str, Any], *, model: str | None, lo: float | None, hi: float | None,
          include_shadow: bool, include_errors: bool = False) -> bool:
    ts = float(row["ts"])
    return ((model is None or row["model"] == model)
            and (lo is None or ts >= lo) and (hi is None or ts < hi)
            and (include_shadow or not row.get("shadow", False))
            and (include_errors or row.get(ERROR) is None))


def _frame(rows: list[dict[str, Any]], *, errors: bool = False) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    data = {name: [r.get(name) for r in rows] for name in COLUMNS}
    micros = np.array([round(float(r["ts"]) * 1_000_000) for r in rows], dtype="int64")
    frame = pd.DataFrame({
        **{name: pd.Series(data[name], dtype=object) for name in COLUMNS},
        "row": pd.Series(data["row"], dtype="int64"),
        "ts": pd.to_datetime(micros, unit="us", utc=True),
        "version": pd.Series(data["version"], dtype="int64"),
        "latency_ms": pd.Series(data["latency_ms"], dtype="float64"),
        "shadow": pd.Series([bool(s) for s in data["shadow"]], dtype="bool"),
    })
    if errors:
        frame[ERROR] = pd.Series([r.get(ERROR) for r in rows], dtype=object)
    return frame[[*COLUMNS, ERROR] if errors else list(COLUMNS)]


def read_predictions(
    ctx: Context,
    *,
    model: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    include_shadow: bool = False,
    journal_dir: str | os.PathLike[str] | None = None,
    with_feedback: bool = False,
    limit: int | None = None,
    include_errors: bool = False,
) -> pd.DataFrame:
    """Logged predictions as a DataFrame, oldest first.

    Columns: ``prediction_id, request_id, row, ts`` (UTC), ``endpoint, model, version,
    inputs`` (a dict per row, sensitive columns already filtered), ``output`` (the JSON
    value returned), ``proba`` (a list or None), ``latency_ms, shadow``; with
    ``with_feedback`` also ``label`` (the latest label received, or None).

    ``since`` is inclusive and ``until`` exclusive; naive datetimes are UTC. Shadow answers
    (never returned to clients) are left out unless ``include_shadow``. With
    ``journal_dir`` the rows still in that journal (not yet compacted) are included.
    ``limit`` keeps the newest rows and reads only the files it needs. With
    ``include_errors`` the requests that failed inside the model are included too, one row
    each, with an ``error`` column (the exception's type; None on answered rows).
    """
    if model is not None and not isinstance(model, str):
        raise InvalidInput("model must be a model name", field="model")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise InvalidInput("limit must be a positive integer", field="limit")
    lo, hi = _epoch(since, "since"), _epoch(until, "until")
    files, journal_rows = _sources(ctx, journal_dir, model=model, lo=lo, hi=hi)
    rows = [r for r in journal_rows if _keep(r, model=model, lo=lo, hi=hi,
                                             include_shadow=include_shadow,
                                             include_errors=include_errors)]
    for f in files:  # newest first, so a limit can stop early
        if limit is not None and len(rows) >= limit:
            kth = heapq.nlargest(limit, (float(r["ts"]) for r in rows))[-1]
            if f.max_ts.timestamp() < kth:
                break
        rows.extend(_table_rows(ctx, f.artifact_sha256, lo=lo, hi=hi,
                                include_shadow=include_shadow,
                                include_errors=include_errors))
    rows.sort(key=lambda r: (float(r["ts"]), str(r["prediction_id"]), bool(r.get("shadow"))))
    if limit is not None:
        rows = rows[-limit:]
    frame = _frame(rows, errors=include_errors)
    if with_feedback:
        import pandas as pd

        from .feedback import feedback_for

        labels = feedback_for(ctx, frame["prediction_id"].tolist())
        frame["label"] = pd.Series([labels.get(pid) for pid in frame["prediction_id"]],
                                   index=frame.index, dtype=object)
    return frame


# --- streaming: the window chunk by chunk, inputs decoded into columns -----------------------


_STREAMED = ["prediction_id", "ts", "version", "inputs", "output", "proba", "shadow"]


def iter_prediction_frames(
    ctx: Context,
    *,
    model: str,
    version: int | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    journal_dir: str | os.PathLike[str] | None = None,
    chunk_rows: int = 65_536,
    with_feedback: bool = False,
    include_shadow: bool = False,
    columns: Mapping[str, ValueType | None] | None = None,
    output_type: ValueType | None = None,
) -> Iterator[pd.DataFrame]:
    """The predictions of ``model`` (``version``) in ``[since, until)`` as DataFrames of at
    most ``chunk_rows`` rows, so a window of any size is read in bounded memory.

    Each frame holds the logged inputs as columns (``columns``: only those, a type fixing
    how each decodes — ``number``, ``string``, ``bool`` — or None to infer it; default:
    every input), then ``prediction`` (the decoded output), ``proba`` (an array per row or
    None), ``prediction_id``, ``ts`` (UTC), ``version`` and, ``with_feedback``, ``label``
    (the latest label received, or None). A metadata column shadows an input of its name.
    An input column is in a frame when some row of the frame has the key (a JSON null is a
    missing value, as in ``read_predictions``); a value of another type than asked for is
    decoded as sent, so the caller sees it.

    Compacted files come oldest first, read one Parquet row group at a time (groups
    outside the window are skipped on their statistics), then the rows still in the
    journal. The order within the window is by file, not strictly by time: monitoring
    needs the rows once each, not sorted. ``read_predictions`` returns the same rows.
    """
    if not isinstance(model, str) or not model:
        raise InvalidInput("model must be a model name", field="model")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidInput("version must be an integer", field="version")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidInput("chunk_rows must be a positive integer", field="chunk_rows")
    lo, hi = _epoch(since, "since"), _epoch(until, "until")
    files, journal_rows = _sources(ctx, journal_dir, model=model, lo=lo, hi=hi)
    live = [r for r in journal_rows if _keep(r, model=model, lo=lo, hi=hi,
                                             include_shadow=include_shadow)
            and (version is None or r.get("version") == version)]
    del journal_rows

    def frame(table: pa.Table) -> pd.DataFrame:
        out = _decoded(table, columns=columns, output_type=output_type)
        if with_feedback:
            import numpy as np

            from .feedback import feedback_for

            ids = table.column("prediction_id").to_pylist()
            labels = feedback_for(ctx, ids)
            label = np.full(len(ids), None, dtype=object)
            if labels:
                label[:] = [labels.get(pid) for pid in ids]
            out["label"] = label
        return out

    for f in sorted(files, key=lambda f: (f.min_ts, f.artifact_sha256)):
        for table in _file_tables(ctx, f.artifact_sha256, lo=lo, hi=hi, version=version,
                                  include_shadow=include_shadow, chunk_rows=chunk_rows):
            yield frame(table)
    if live:
        table = table_from_rows(live)  # the journal's rows take the compacted files' path
        del live
        for start in range(0, table.num_rows, chunk_rows):
            yield frame(table.slice(start, chunk_rows))


def _file_tables(ctx: Context, sha256: str, *, lo: float | None, hi: float | None,
                 version: int | None, include_shadow: bool, chunk_rows: int
                 ) -> Iterator[pa.Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(pa.BufferReader(ctx.artifacts.get_bytes(sha256)))
    groups = _row_groups(parquet, lo, hi)
    if not groups:
        return
    wanted = [*_STREAMED, ERROR] if ERROR in parquet.schema_arrow.names else _STREAMED
    for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=groups,
                                      columns=wanted):
        table = _filtered(pa.Table.from_batches([batch]), lo=lo, hi=hi,
                          include_shadow=include_shadow, version=version)
        if table.num_rows:
            yield table


def _row_groups(parquet: Any, lo: float | None, hi: float | None) -> list[int]:
    """The row groups whose ``ts`` statistics overlap ``[lo, hi)`` (all, without them)."""
    meta = parquet.metadata
    everything = list(range(meta.num_row_groups))
    if (lo is None and hi is None) or not meta.num_row_groups:
        return everything
    first = meta.row_group(0)
    where = [j for j in range(first.num_columns) if first.column(j).path_in_schema == "ts"]
    if not where:
        return everything
    keep = []
    for i in everything:
        stats = meta.row_group(i).column(where[0]).statistics
        if stats is None or not stats.has_min_max:
            keep.append(i)
            continue
        low, high = _seconds(stats.min), _seconds(stats.max)
        if (lo is None or high is None or high >= lo) and (hi is None or low is None
                                                           or low < hi):
            keep.append(i)
    return keep


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime):
        return as_utc(value, "ts").timestamp()  # type: ignore[union-attr]
    if isinstance(value, int):
        return value / 1_000_000
    return None


_ARROW_TYPES = {"number": "float64", "string": "string", "bool": "bool"}


def _decoded(table: pa.Table, *, columns: Mapping[str, ValueType | None] | None,
             output_type: ValueType | None) -> pd.DataFrame:
    import pandas as pd
    import pyarrow.compute as pc

    frame = _inputs_frame(table.column("inputs"), columns)
    meta = {
        "prediction": _outputs(table.column("output"), output_type),
        "proba": table.column("proba").to_pandas().to_numpy(dtype=object),
        "prediction_id": table.column("prediction_id").to_pandas().to_numpy(dtype=object),
        "ts": pd.to_datetime(pc.cast(table.column("ts"), "int64").to_numpy(), unit="us",
                             utc=True),
        "version": table.column("version").to_numpy(),
    }
    frame = frame.drop(columns=[c for c in meta if c in frame.columns])
    return frame.assign(**meta)


def _inputs_frame(texts: Any, columns: Mapping[str, ValueType | None] | None
                  ) -> pd.DataFrame:
    """Decode with Arrow (typed as asked); a value of another type falls back to ``loads``
    per row for this chunk, so the caller sees the value as sent."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    typed = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in (columns or {}).items()
                       if kind is not None])
    infer = columns is None or any(kind is None for kind in columns.values())
    try:
        decoded = decode_json_objects(texts, typed, infer_others=infer)
    except pa.ArrowInvalid:
        records = [loads(t) if t is not None else {} for t in texts.to_pylist()]
        frame = pd.DataFrame.from_records([r if isinstance(r, dict) else {} for r in records],
                                          index=pd.RangeIndex(len(records)))
        if columns is not None:
            frame = frame[[c for c in columns if c in frame.columns]]
        return frame
    names = list(columns) if columns is not None else decoded.column_names
    keep = []
    for name in names:
        if name not in decoded.column_names:
            continue
        column = decoded.column(name)
        if column.null_count == len(column) and len(column) and not pc.any(
                pc.match_substring(texts, dumps(name).decode() + ":")).as_py():
            continue  # no row has the key: the column is absent, not missing
        keep.append(name)
    return decoded.select(keep).to_pandas()


def _outputs(texts: Any, output_type: ValueType | None) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    wrapped = pc.binary_join_element_wise('{"p":', texts.fill_null("null"), "}", "")
    typed = pa.schema([] if output_type is None else [("p", _ARROW_TYPES[output_type])])
    try:
        decoded = decode_json_objects(wrapped, typed, infer_others=True)
        return decoded.column("p").to_pandas().to_numpy()
    except (pa.ArrowInvalid, KeyError):
        import numpy as np

        values = np.empty(len(texts), dtype=object)
        values[:] = [loads(t) if t is not None else None for t in texts.to_pylist()]
        return values


def _record(row: dict[str, Any]) -> PredictionRecord:
    return PredictionRecord(**{name: row.get(name) for name in (*COLUMNS, ERROR)
                               if name in row})


def get_prediction(ctx: Context, prediction_id: str, *,
                   journal_dir: str | os.PathLike[str] | None = None) -> PredictionRecord:
    """One logged prediction; the served answer when a shadow answered the same row too.

    The request id carries its arrival time, so only files around it are read.
    """
    if not isinstance(prediction_id, str):
        raise InvalidInput("prediction_id must be a string REQUEST_ID:ROW",
                           field="prediction_id")
    request_id, _ = parse_prediction_id(prediction_id)
    arrived = request_time(request_id)
    found = [r for seg_rows in _journal(journal_dir).values() for r in seg_rows
             if r.get("prediction_id") == prediction_id]
    # None found, or only a shadow's answer: the served one may be compacted already.
    if all(r.get("shadow") for r in found):
        pf = prediction_files
        with ctx.db.read() as conn:
            files = conn.execute(select(pf.c.artifact_sha256).where(
                pf.c.max_ts >= arrived - _BEFORE, pf.c.min_ts <= arrived + _AFTER)
                .order_by(pf.c.id)).scalars().all()
            if not files:  # no file spans the arrival: a record stamped much later?
                days = [utc_day((arrived + timedelta(days=d)).timestamp()) for d in (0, 1)]
                files = conn.execute(select(pf.c.artifact_sha256).where(pf.c.day.in_(days))
                                     .order_by(pf.c.id)).scalars().all()
        for sha in files:
            found.extend(_table_rows(ctx, sha, lo=None, hi=None, include_shadow=True,
                                     prediction_id=prediction_id, include_errors=True))
    if not found:
        raise NotFound(f"no prediction {prediction_id!r} in the prediction log (a prediction "
                       "reaches it when its journal segment is compacted, within "
                       "prediction_log_compact_seconds)")
    found.sort(key=lambda r: bool(r.get("shadow")))
    return _record(found[0])
