"""Numeric profiles: the summary record, moments, quantile edges, bin counts and merges."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, computed_field

from modelworks.errors import InvalidInput

__all__ = [
    "NumericSummary",
    "bin_counts",
    "check_edges",
    "epoch_seconds",
    "merge_moments",
    "merge_numeric",
    "moments",
    "quantile_edges",
    "summarize",
]


class NumericSummary(BaseModel):
    """Moments, extremes and bin counts of a numeric (or datetime, in epoch seconds) column.

    ``count`` is the number of finite values, the ones ``mean`` and ``m2`` describe; ±inf are
    non-missing but land only in ``below``/``above``. Bins are ``[a, b)`` except the last,
    which is closed. Identifier columns keep no extremes, edges or bins.
    """

    model_config = ConfigDict(frozen=True)

    count: int
    mean: float
    m2: float
    min: float | None = None
    max: float | None = None
    bin_edges: list[float] = []
    bin_counts: list[int] = []
    below: int = 0
    above: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0.0 below two values."""
        return float(np.sqrt(max(self.m2, 0.0) / (self.count - 1))) if self.count >= 2 else 0.0


def moments(values: np.ndarray) -> tuple[int, float, float]:
    """Count, mean and sum of squared deviations (m2) of finite float values."""
    count = int(values.size)
    if count == 0:
        return 0, 0.0, 0.0
    mean = float(values.mean())
    # Two-pass m2: exact enough and far more stable than sum(x^2) - n*mean^2.
    m2 = float(np.square(values - mean).sum())
    return count, mean, m2


def merge_moments(
    a: tuple[int, float, float], b: tuple[int, float, float]
) -> tuple[int, float, float]:
    """Combine two (count, mean, m2) triples exactly (Chan, Golub and LeVeque, 1979)."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    if n_a == 0 or n_b == 0:
        return (n, mean_b, m2_b) if n_a == 0 else (n, mean_a, m2_a)
    delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    m2 = m2_a + m2_b + delta * delta * n_a * n_b / n
    return n, mean, m2


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Deduplicated quantile edges of finite values; first is the min, last the max.

    A constant column gives ``[c, c]``: one closed bin, so its values are still counted.
    """
    if values.size == 0:
        return []
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    # Interpolation can land a hair inside the data; pin the ends to the exact extremes.
    edges[0], edges[-1] = values.min(), values.max()
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    return [float(edge) for edge in edges]


def check_edges(edges: Sequence[float]) -> str | None:
    """Why ``edges`` cannot bin values (a message), or ``None`` when they can."""
    array = np.asarray(edges, dtype=float)
    if array.ndim != 1 or array.size < 2:
        return "bin edges need at least two values"
    if not np.isfinite(array).all():
        return "bin edges must be finite"
    if (np.diff(array) < 0).any():
        return "bin edges must be sorted ascending"
    return None


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> tuple[list[int], int, int]:
    """Counts per bin and the numbers below the first and above the last edge.

    Bins are ``[a, b)`` except the last, which is closed on the right. ``values`` may hold
    ±inf (they land in below/above) but no NaN.
    """
    edge_array = np.asarray(edges, dtype=float)
    n_bins = edge_array.size - 1
    below_mask = values < edge_array[0]
    above_mask = values > edge_array[-1]
    inside = values[~(below_mask | above_mask)]
    index = np.searchsorted(edge_array, inside, side="right") - 1
    # The right end belongs to the last bin; duplicate edges can push it past the end.
    np.minimum(index, n_bins - 1, out=index)
    counts = np.bincount(index, minlength=n_bins)
    return [int(c) for c in counts], int(below_mask.sum()), int(above_mask.sum())


def epoch_seconds(series: pd.Series) -> np.ndarray:
    """Datetimes as float seconds since 1970-01-01 UTC; NaT becomes NaN."""
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    values = np.asarray(series.to_numpy())
    if values.dtype.kind != "M":
        values = values.astype("datetime64[us]")
    return (values - np.datetime64(0, "s")) / np.timedelta64(1, "s")


def summarize(
    values: np.ndarray, *, bins: int, edges: Sequence[float] | None, identifier: bool
) -> NumericSummary:
    """Summarise non-missing float values (±inf allowed) into quantile or given edges."""
    finite = values[np.isfinite(values)]
    count, mean, m2 = moments(finite)
    if identifier:
        return NumericSummary(count=count, mean=mean, m2=m2)
    edge_list = [float(e) for e in edges] if edges is not None else quantile_edges(finite, bins)
    if edge_list:
        counts, below, above = bin_counts(values, edge_list)
    else:  # no finite values and no edges: only infinities can be counted
        counts, below, above = [], int((values < 0).sum()), int((values > 0).sum())
    return NumericSummary(
        count=count,
        mean=mean,
        m2=m2,
        min=float(finite.min()) if count else None,
        max=float(finite.max()) if count else None,
        bin_edges=edge_list,
        bin_counts=counts,
        below=below,
        above=above,
    )


def merge_numeric(
    name: str, a: NumericSummary, b: NumericSummary, *, identifier: bool
) -> NumericSummary:
    """Merge two summaries of column ``name``; bins must have identical edges."""
    count, mean, m2 = merge_moments((a.count, a.mean, a.m2), (b.count, b.mean, b.m2))
    if identifier:
        return NumericSummary(count=count, mean=mean, m2=m2)
    if a.bin_edges == b.bin_edges:
        edges = a.bin_edges
        counts = [x + y for x, y in zip(a.bin_counts, b.bin_counts, strict=True)]
    elif not a.bin_edges and a.count == 0:  # a side without finite values has no bins to clash
        edges, counts = b.bin_edges, b.bin_counts
    elif not b.bin_edges and b.count == 0:
        edges, counts = a.bin_edges, a.bin_counts
    else:
        raise InvalidInput(
            f"cannot merge column {name!r}: the profiles were binned differently "
            f"({len(a.bin_edges)} vs {len(b.bin_edges)} edges, or different values); profile "
            "new data against the reference (profile_frame(df, reference=...))",
            field="bin_edges",
        )
    extremes = [v for v in (a.min, b.min, a.max, b.max) if v is not None]
    return NumericSummary(
        count=count,
        mean=mean,
        m2=m2,
        min=min(extremes) if extremes else None,
        max=max(extremes) if extremes else None,
        bin_edges=edges,
        bin_counts=counts,
        below=a.below + b.below,
        above=a.above + b.above,
    )
