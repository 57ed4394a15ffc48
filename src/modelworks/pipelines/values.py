"""Values between steps as bytes in safe formats, and back.

DataFrames travel as Parquet, Series as one-column Parquet, NumPy arrays as ``.npy``
(``allow_pickle=False``), models in the registry's formats (skops for scikit-learn, the
native formats of LightGBM and XGBoost, ONNX), and plain data (numbers, strings, lists and
dicts of them) as JSON. Nothing else is stored unless its step opted in to pickle, because
loading a pickle runs code from its bytes.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

__all__ = ["FORMAT_VERSION", "Encoded", "decode", "encode", "is_json", "type_name"]

# Part of every cache key: bump it when an encoding changes, so old outputs are not reused.
FORMAT_VERSION = 1
_SERIES_COLUMN = "__series__"


@dataclass(frozen=True)
class Encoded:
    data: bytes
    format: str  # json | parquet | series.parquet | npy | model:<format> | pickle
    type: str  # the value's module.qualname, for messages and the record


def type_name(value: Any) -> str:
    t = type(value)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def is_json(value: Any) -> bool:
    """Plain JSON data whose round trip gives it back (tuples come back as lists)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json(v) for k, v in value.items())
    return False


# Below this many cells a frame converts faster on one thread: Arrow's pandas conversion
# otherwise starts a thread pool per call, which costs more than a small frame's work.
_THREADED_CELLS = 1_000_000


def _parquet(frame: Any, what: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    threads = frame.size >= _THREADED_CELLS
    buf = io.BytesIO()
    try:
        table = pa.Table.from_pandas(frame, nthreads=None if threads else 1)
        pq.write_table(table, buf)
    except (TypeError, ValueError, ImportError) as exc:
        raise InvalidInput(f"{what} cannot be written as Parquet: {exc}",
                           field="output") from exc
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid, ...)
        raise InvalidInput(f"{what} cannot be written as Parquet: "
                           f"{type(exc).__name__}: {exc}", field="output") from exc
    return buf.getvalue()


def _read_parquet(data: bytes) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # ParquetFile over the bytes: read_table's dataset layer costs ~0.5 ms more a call.
    table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=len(data) > (8 << 20))
    return table.to_pandas(use_threads=table.num_rows * table.num_columns >= _THREADED_CELLS)


def encode(value: Any, *, step: str, allow_pickle: bool = False,
           subject: str | None = None) -> Encoded:
    """``value`` as bytes in the first safe format that fits.

    ``subject`` starts error messages (default: "step 'name' returned <type>").

    Raises:
        InvalidInput: (field ``output``) no safe format holds the value and ``allow_pickle``
            is False; the message names the step and the type.
    """
    what = f"{subject or f'step {step!r} returned'} {type_name(value)}, which"
    if is_json(value):
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"{what} cannot be written as JSON: {exc}",
                               field="output") from exc
        return Encoded(text.encode(), "json", type_name(value))
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return Encoded(_parquet(value, what), "parquet", type_name(value))
    if isinstance(value, pd.Series):
        name = value.name
        frame = value.to_frame(name=_SERIES_COLUMN)
        frame.attrs["series_name"] = name if isinstance(name, str | int | float) else None
        return Encoded(_parquet(frame, what), "series.parquet", type_name(value))
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            if allow_pickle:
                return _pickled(value)
            raise InvalidInput(f"{what} holds Python objects (dtype=object): .npy stores "
                               "only plain dtypes without pickle; convert it (e.g. "
                               "astype(str)) or opt in with @step(allow_pickle=True)",
                               field="output")
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return Encoded(buf.getvalue(), "npy", type_name(value))
    if isinstance(value, np.generic):
        return encode(value.item(), step=step, allow_pickle=allow_pickle, subject=subject)
    saved = _model(value)
    if saved is not None:
        return saved
    if allow_pickle:
        return _pickled(value)
    raise InvalidInput(
        f"{what} has no safe format to pass between steps; safe are DataFrames and "
        "Series (Parquet), NumPy arrays (.npy), models (skops, LightGBM, XGBoost, ONNX) and "
        "JSON data (numbers, strings, lists and dicts of them); return one of those, or "
        "opt in to pickle with @step(allow_pickle=True) (loading a pickle runs code from "
        "its bytes)", field="output")


def _pickled(value: Any) -> Encoded:
    return Encoded(pickle.dumps(value, protocol=5), "pickle", type_name(value))


def _model(value: Any) -> Encoded | None:
    from ..registry.formats import detect_format

    try:
        fmt = detect_format(value, allow_pickle=False)
    except InvalidInput:
        return None
    return Encoded(fmt.save(value), f"model:{fmt.name}", type_name(value))


def decode(data: bytes, fmt: str, *, allow_pickle: bool = False) -> Any:
    """The value ``encode`` wrote as ``fmt``.

    Raises:
        InvalidInput: (field ``allow_pickle``) a pickled value without ``allow_pickle``, or
            an unknown format.
    """
    if fmt == "json":
        return json.loads(data)
    if fmt in ("parquet", "series.parquet"):
        frame = _read_parquet(data)
        if fmt == "parquet":
            return frame
        series = frame[_SERIES_COLUMN]
        series.name = frame.attrs.get("series_name")
        return series
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt.startswith("model:"):
        from ..registry.formats import get_format

        return get_format(fmt.partition(":")[2]).load(data)
    if fmt == "pickle":
        if not allow_pickle:
            raise InvalidInput("this value was stored with pickle, and loading a pickle runs "
                               "code from its bytes: pass allow_pickle=True to load it",
                               field="allow_pickle")
        return pickle.loads(data)
    raise InvalidInput(f"unknown value format {fmt!r}", field="format")
