"""Read the prediction log: compacted Parquet files plus, optionally, the live journal.

A journal segment is read only while no index row names it: a segment compacted between
the journal read and the index read is then taken from Parquet, so a prediction is returned
once, never twice, whichever moment the compactor picks.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, or_, select

from ..errors import InvalidInput, NotFound
from ..store.tables import prediction_files
from ._logfiles import COLUMNS, parse_lines, read_parquet, rows_from_table, utc_day
from .ids import parse_prediction_id, request_time
from .records import PredictionRecord

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..context import Context

__all__ = ["as_utc", "get_prediction", "read_predictions"]

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


def _table_rows(ctx: Context, sha256: str, *, lo: float | None, hi: float | None,
                include_shadow: bool, prediction_id: str | None = None
                ) -> list[dict[str, Any]]:
    import pyarrow.compute as pc

    table: pa.Table = read_parquet(ctx.artifacts.get_bytes(sha256))
    masks = []
    if prediction_id is not None:
        masks.append(pc.equal(table.column("prediction_id"), prediction_id))
    micros = pc.cast(table.column("ts"), "int64")
    if lo is not None:
        masks.append(pc.greater_equal(micros, round(lo * 1_000_000)))
    if hi is not None:
        masks.append(pc.less(micros, round(hi * 1_000_000)))
    if not include_shadow:
        masks.append(pc.invert(table.column("shadow")))
    if masks:
        mask = masks[0]
        for extra in masks[1:]:
            mask = pc.and_(mask, extra)
        table = table.filter(mask)
    return rows_from_table(table)


def _keep(row: dict[str, Any], *, model: str | None, lo: float | None, hi: float | None,
          include_shadow: bool) -> bool:
    ts = float(row["ts"])
    return ((model is None or row["model"] == model)
            and (lo is None or ts >= lo) and (hi is None or ts < hi)
            and (include_shadow or not row.get("shadow", False)))


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
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
    return frame[list(COLUMNS)]


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
) -> pd.DataFrame:
    """Logged predictions as a DataFrame, oldest first.

    Columns: ``prediction_id, request_id, row, ts`` (UTC), ``endpoint, model, version,
    inputs`` (a dict per row, sensitive columns already filtered), ``output`` (the JSON
    value returned), ``proba`` (a list or None), ``latency_ms, shadow``; with
    ``with_feedback`` also ``label`` (the latest label received, or None).

    ``since`` is inclusive and ``until`` exclusive; naive datetimes are UTC. Shadow answers
    (never returned to clients) are left out unless ``include_shadow``. With
    ``journal_dir`` the rows still in that journal (not yet compacted) are included.
    ``limit`` keeps the newest rows and reads only the files it needs.
    """
    if model is not None and not isinstance(model, str):
        raise InvalidInput("model must be a model name", field="model")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise InvalidInput("limit must be a positive integer", field="limit")
    lo, hi = _epoch(since, "since"), _epoch(until, "until")
    journal = _journal(journal_dir)
    with ctx.db.read() as conn:
        files = _files(conn, model=model, lo=lo, hi=hi)
        compacted = _indexed(conn, journal)
    rows = [r for stem, seg_rows in journal.items() if stem not in compacted
            for r in seg_rows if _keep(r, model=model, lo=lo, hi=hi,
                                          include_shadow=include_shadow)]
    for f in files:  # newest first, so a limit can stop early
        if limit is not None and len(rows) >= limit:
            kth = heapq.nlargest(limit, (float(r["ts"]) for r in rows))[-1]
            if f.max_ts.timestamp() < kth:
                break
        rows.extend(_table_rows(ctx, f.artifact_sha256, lo=lo, hi=hi,
                                include_shadow=include_shadow))
    rows.sort(key=lambda r: (float(r["ts"]), str(r["prediction_id"]), bool(r.get("shadow"))))
    if limit is not None:
        rows = rows[-limit:]
    frame = _frame(rows)
    if with_feedback:
        import pandas as pd

        from .feedback import feedback_for

        labels = feedback_for(ctx, frame["prediction_id"].tolist())
        frame["label"] = pd.Series([labels.get(pid) for pid in frame["prediction_id"]],
                                   index=frame.index, dtype=object)
    return frame


def _record(row: dict[str, Any]) -> PredictionRecord:
    return PredictionRecord(**{name: row.get(name) for name in COLUMNS if name in row})


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
                                     prediction_id=prediction_id))
    if not found:
        raise NotFound(f"no prediction {prediction_id!r} in the prediction log (a prediction "
                       "reaches it when its journal segment is compacted, within "
                       "prediction_log_compact_seconds)")
    found.sort(key=lambda r: bool(r.get("shadow")))
    return _record(found[0])
