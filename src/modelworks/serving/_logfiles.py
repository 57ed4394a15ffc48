"""The prediction log's two file formats: journal lines (JSON) and compacted Parquet.

A journal line is one record's fields as a JSON object, ending in ``\\n``; a line without its
newline is a torn write (the process died inside ``write()``) and is never returned. In
Parquet, ``inputs`` and ``output`` are JSON text: a model's inputs change between versions,
and one day's file holds every version of the model.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "COLUMNS",
    "ERROR",
    "decode_json_objects",
    "dumps",
    "encode_rows",
    "loads",
    "parse_lines",
    "read_parquet",
    "rows_from_table",
    "table_from_rows",
    "to_parquet",
    "utc_day",
]

logger = logging.getLogger("modelworks.serving.prediction_log")

COLUMNS = ("prediction_id", "request_id", "row", "ts", "endpoint", "model", "version",
           "inputs", "output", "proba", "latency_ms", "shadow")
# A prediction that raised inside the model is logged as one row per request with ``error``
# (the exception's type) and no output. Only such rows carry the key, and only Parquet files
# holding one have the column: files written before it existed read as they always did.
ERROR = "error"


def _default(value: Any) -> Any:
    """What JSON lacks: numpy scalars and arrays, dates, decimals, sets; else the text.

    Logging must never fail a request that has already been answered, so anything else is
    logged as its ``str``.
    """
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas arrays
        return value.tolist()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


try:  # orjson is ~5x faster; the stdlib fallback writes the same JSON (NaN aside)
    import orjson

    _OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value, default=_default, option=_OPTS)

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)
except ImportError:  # pragma: no cover - orjson is a dependency; kept for minimal installs
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default)

    def dumps(value: Any) -> bytes:
        return _encoder.encode(value).encode()

    def loads(data: bytes | str) -> Any:
        return json.loads(data)


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Journal lines for these rows, ready for one ``write()``."""
    return b"".join([dumps(row) + b"\n" for row in rows])


def _valid(row: Any) -> bool:
    """The fields compaction relies on have their types (a bad line must not block a file)."""
    if not isinstance(row, dict):
        return False
    ts, version = row.get("ts"), row.get("version")
    return (isinstance(row.get("prediction_id"), str) and isinstance(row.get("request_id"), str)
            and isinstance(row.get("model"), str)
            and isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts)
            and isinstance(version, int) and not isinstance(version, bool)
            and isinstance(row.get("row", 0), int))


def parse_lines(data: bytes, *, source: str = "journal") -> tuple[list[dict[str, Any]], int]:
    """The records of a journal segment and how many lines were dropped.

    The tail after the last newline is a torn write and is dropped silently (it was never
    acknowledged); a complete line that is not a valid record (a machine crash can leave
    zeroed blocks) is dropped with a warning.
    """
    end = data.rfind(b"\n")
    if end < 0:
        return [], 0
    out: list[dict[str, Any]] = []
    bad = 0
    for line in data[:end].split(b"\n"):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except ValueError:
            bad += 1
            continue
        if not _valid(row):
            bad += 1
            continue
        out.append(row)
    if bad:
        logger.warning("%s: dropped %d unreadable journal line(s)", source, bad)
    return out, bad


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        ("prediction_id", pa.string()), ("request_id", pa.string()), ("row", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")), ("endpoint", pa.string()),
        ("model", pa.string()), ("version", pa.int64()), ("inputs", pa.string()),
        ("output", pa.string()), ("proba", pa.list_(pa.float64())),
        ("latency_ms", pa.float64()), ("shadow", pa.bool_()),
    ])


def _proba(value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(p) for p in value]
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def table_from_rows(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A Parquet-ready table, sorted by time then prediction id."""
    import pyarrow as pa

    ordered = sorted(rows, key=lambda r: (float(r["ts"]), str(r["prediction_id"])))
    columns = {
        "prediction_id": [str(r["prediction_id"]) for r in ordered],
        "request_id": [str(r["request_id"]) for r in ordered],
        "row": [int(r.get("row") or 0) for r in ordered],
        "ts": [round(float(r["ts"]) * 1_000_000) for r in ordered],
        "endpoint": [r.get("endpoint") for r in ordered],
        "model": [str(r["model"]) for r in ordered],
        "version": [int(r["version"]) for r in ordered],
        "inputs": [dumps(r.get("inputs") or {}).decode() for r in ordered],
        "output": [dumps(r.get("output")).decode() for r in ordered],
        "proba": [_proba(r.get("proba")) for r in ordered],
        "latency_ms": [_float(r.get("latency_ms")) for r in ordered],
        "shadow": [bool(r.get("shadow", False)) for r in ordered],
    }
    table = pa.Table.from_pydict(columns, schema=_schema())
    errors = [r.get(ERROR) for r in ordered]
    if any(e is not None for e in errors):
        table = table.append_column(pa.field(ERROR, pa.string()), pa.array(
            [None if e is None else str(e) for e in errors], pa.string()))
    return table


def to_parquet(table: pa.Table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    # Row groups of 64k rows: a reader (the monitor) can stream a big file group by group.
    pq.write_table(table, sink, compression="zstd", row_group_size=65_536)
    return bytes(sink.getvalue().to_pybytes())


def read_parquet(data: bytes) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data))


def rows_from_table(table: pa.Table) -> list[dict[str, Any]]:
    """Journal-shaped rows (``ts`` in epoch seconds, inputs and output decoded)."""
    import pyarrow.compute as pc

    micros = pc.cast(table.column("ts"), "int64").to_pylist()
    cols = {name: table.column(name).to_pylist() for name in COLUMNS if name != "ts"}
    if ERROR in table.column_names:
        cols[ERROR] = table.column(ERROR).to_pylist()
    out = []
    for i, us in enumerate(micros):
        row = {name: values[i] for name, values in cols.items()}
        row["ts"] = us / 1_000_000
        row["inputs"] = loads(row["inputs"]) if row["inputs"] is not None else {}
        row["output"] = loads(row["output"]) if row["output"] is not None else None
        out.append(row)
    return out


def decode_json_objects(texts: pa.Array | pa.ChunkedArray, schema: pa.Schema | None = None, *,
                        infer_others: bool = True) -> pa.Table:
    """JSON object text per row (the log's ``inputs``) -> one Arrow table, decoded by Arrow's
    C++ JSON reader in one call — about 20x faster than ``loads`` per row plus a DataFrame.

    ``schema`` fixes the types of the columns it names (a value of another type raises
    ``pyarrow.ArrowInvalid``; callers fall back to ``loads``); other keys are inferred when
    ``infer_others``, else ignored. A key no row has is an all-null column when ``schema``
    names it. Null texts decode as empty objects.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    if schema is None:
        schema = pa.schema([])
    if len(texts) == 0:
        return schema.empty_table()
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not pa.types.is_string(texts.type):
        texts = texts.cast(pa.string())
    if texts.null_count:
        texts = texts.fill_null("{}")
    lines = pc.binary_join_element_wise(texts, pa.scalar(""), "\n")
    # The joined rows are one contiguous buffer: hand Arrow its bytes, not a copy.
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    lo, hi = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    data = lines.buffers()[2].slice(lo, hi - lo)
    return pj.read_json(pa.BufferReader(data), parse_options=pj.ParseOptions(
        explicit_schema=schema,
        unexpected_field_behavior="infer" if infer_others else "ignore"))
