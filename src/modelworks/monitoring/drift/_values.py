"""Column values for drift profiles: kinds, finite values, cells and quantile edges."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from modelworks.errors import InvalidInput

__all__ = [
    "Kind",
    "check_frame",
    "column_kind",
    "column_labels",
    "count_cells",
    "finite_values",
    "quantile_edges",
    "top_counts",
]

Kind = Literal["numeric", "categorical"]

# Extra quantile levels in each tail (see quantile_edges).
_TAILS = np.array([1e-5, 1e-4, 1e-3, 3e-3])


def quantile_edges(ordered: np.ndarray, bins: int) -> np.ndarray:
    """Distinct quantiles at ``bins`` equal steps plus a few in each tail, min and max exact.

    The tail levels keep the outermost cells narrow: a wide cell holding values of both
    sides is where the Wasserstein bound is loose.
    """
    levels = np.unique(np.r_[np.linspace(0.0, 1.0, bins + 1), _TAILS, 1.0 - _TAILS])
    edges = np.quantile(ordered, levels)
    edges[0], edges[-1] = ordered[0], ordered[-1]
    return np.unique(edges)


def count_cells(edges: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count and sum per cell (``2k + 1`` of them), and which values sit on an edge."""
    right = np.searchsorted(edges, values, side="right")
    if edges.size:
        at_edge = (right > 0) & (edges[np.maximum(right - 1, 0)] == values)
    else:
        at_edge = np.zeros(values.size, dtype=bool)
    cell = 2 * right - at_edge
    size = 2 * edges.size + 1
    counts = np.bincount(cell, minlength=size)
    sums = np.bincount(cell, weights=values, minlength=size)
    return counts, sums, at_edge


def top_counts(counts: dict[str, int], limit: int) -> tuple[dict[str, int], int]:
    """The ``limit`` largest counts (ties by name), and the sum of the rest."""
    if len(counts) <= limit:
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return {k: int(v) for k, v in ranked}, 0
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = {k: int(v) for k, v in ranked[:limit]}
    return kept, int(sum(v for _, v in ranked[limit:]))


def column_kind(series: pd.Series) -> Kind | None:
    """Numbers are numeric; booleans, strings, categoricals and objects are categorical."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_object_dtype(dtype):
        return "categorical"
    return None


def finite_values(series: pd.Series, name: str) -> tuple[np.ndarray, int]:
    """The finite values as float64 and how many values were not (missing or ±inf)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    ):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    elif pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(
        series, skipna=True
    ) in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
        values = pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        raise InvalidInput(
            f"column {name!r} is numeric in the reference but {dtype} in the current data",
            field=name,
        )
    finite = np.isfinite(values)
    if finite.all():
        return values, 0
    return values[finite], int(values.size - finite.sum())


def check_frame(df: object, field: str, *, allow_empty: bool = False) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(
            f"{field} must be a pandas DataFrame, got {type(df).__name__}", field=field
        )
    duplicated = sorted({str(c) for c in df.columns[df.columns.astype(str).duplicated()]})
    if duplicated:
        raise InvalidInput(
            f"{field} data has duplicate column names: {', '.join(map(repr, duplicated))}",
            field=field,
        )
    if not allow_empty and len(df) == 0:
        raise InvalidInput(f"{field} data has no rows", field=field)


def column_labels(df: pd.DataFrame) -> dict[str, object]:
    """Column names as strings (how profiles name them), mapped to the frame's labels."""
    return {str(label): label for label in df.columns}
