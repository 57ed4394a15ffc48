"""NumPy-only preprocessing for the common scikit-learn pipeline, verified before use.

A ``Pipeline(ColumnTransformer([...]), final)`` — one-hot encoded categories, scaled and
imputed numbers, passed-through columns — spends most of a one-row answer in scikit-learn's
per-call machinery (column selection, validation, a sparse matrix and its conversion): 3.4
ms for a dozen columns, against microseconds of arithmetic. Here the fitted transformers'
parameters are read once and the design matrix is built with NumPy from the checked
DataFrame; the final step predicts on it (compiled too when it is linear). Supported:
``OneHotEncoder(handle_unknown="ignore")`` on string categories, ``StandardScaler``,
``SimpleImputer`` on numbers, a ``Pipeline`` of those two, ``"passthrough"`` and ``"drop"``
(also as the remainder). Anything else keeps scikit-learn's path. A compiled predictor is
kept only if it reproduces the pipeline's ``predict`` exactly and ``predict_proba`` to
1e-12 on probe rows that cover every category and missing numbers; at request time a
matrix with a missing value the pipeline would not have imputed goes to scikit-learn, so
its own error is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..registry.signatures import Signature, check_input
from .compiled import compile_linear

__all__ = ["CompiledPipeline", "compile_pipeline"]

Block = Callable[[pd.DataFrame, np.ndarray], None]  # fills its columns of the matrix

_TOLERANCE = 1e-12


def _numeric(columns: list[str], steps: Sequence[Any], start: int) -> tuple[Block, int] | None:
    """Imputation then scaling (either may be absent) of numeric columns."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    fill: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    for est in steps:
        if type(est) is SimpleImputer and fill is None and mean is None and scale is None:
            stats = np.asarray(est.statistics_, dtype=np.float64)
            if est.add_indicator or len(stats) != len(columns) or not np.isfinite(stats).all():
                return None
            if not (est.missing_values is np.nan or (isinstance(est.missing_values, float)
                                                     and np.isnan(est.missing_values))):
                return None
            fill = stats
        elif type(est) is StandardScaler and mean is None and scale is None:
            mean = None if est.mean_ is None or not est.with_mean else \
                np.asarray(est.mean_, dtype=np.float64)
            scale = None if est.scale_ is None or not est.with_std else \
                np.asarray(est.scale_, dtype=np.float64)
        else:
            return None
    width = len(columns)
    stop = start + width

    def block(frame: pd.DataFrame, out: np.ndarray) -> None:
        x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        if fill is not None:
            x = np.where(np.isnan(x), fill, x)
        if mean is not None:
            x = x - mean
        if scale is not None:
            x = x / scale
        out[:, start:stop] = x

    return block, stop


def _one_hot(columns: list[str], encoder: Any, start: int) -> tuple[Block, int] | None:
    if (encoder.handle_unknown != "ignore" or getattr(encoder, "drop_idx_", None) is not None
            or getattr(encoder, "_infrequent_enabled", False)):
        return None
    indexes: list[dict[str, int]] = []
    offsets: list[int] = []
    position = start
    for levels in encoder.categories_:
        if not all(isinstance(v, str) for v in levels):
            return None
        indexes.append({v: i for i, v in enumerate(levels)})
        offsets.append(position)
        position += len(levels)
    stop = position

    def block(frame: pd.DataFrame, out: np.ndarray) -> None:
        rows = np.arange(len(frame))
        for column, index, offset in zip(columns, indexes, offsets, strict=True):
            found = np.fromiter((index.get(v, -1) if isinstance(v, str) else -1
                                 for v in frame[column].tolist()), dtype=np.intp,
                                count=len(frame))
            hit = found >= 0
            out[rows[hit], offset + found[hit]] = 1.0

    return block, stop


def _identity(trans: Any) -> bool:
    """A fitted ``remainder="passthrough"``: scikit-learn keeps it as a FunctionTransformer
    without a function."""
    from sklearn.preprocessing import FunctionTransformer

    return type(trans) is FunctionTransformer and trans.func is None


def _blocks(ct: Any) -> tuple[list[Block], int] | None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    blocks: list[Block] = []
    width = 0
    for _, trans, columns in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        names = list(columns) if isinstance(columns, list | tuple | np.ndarray | pd.Index) else None
        if names is None or not all(isinstance(c, str) for c in names):
            return None  # positions, slices, callables: not read here
        if not names:
            continue
        built: tuple[Block, int] | None
        if (isinstance(trans, str) and trans == "passthrough") or _identity(trans):
            built = _numeric(names, [], width)
        elif type(trans) is OneHotEncoder:
            built = _one_hot(names, trans, width)
        elif type(trans) is Pipeline:
            built = _numeric(names, [step for _, step in trans.steps], width)
        else:
            built = _numeric(names, [trans], width)
        if built is None:
            return None
        block, width = built
        blocks.append(block)
    return blocks, width


def _probes(signature: Signature, example: list[dict[str, Any]], seed: int = 0
            ) -> pd.DataFrame:
    """The example rows, perturbed copies, every category of every category column, and
    missing numbers where the signature allows them."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = [dict(r) for r in example]
    levels = max([len(s.categories or []) for s in signature.inputs], default=0)
    for i in range(max(64, levels)):
        row = dict(example[i % len(example)])
        for spec in signature.inputs:
            value = row.get(spec.name)
            if spec.dtype == "float" and isinstance(value, int | float):
                row[spec.name] = float(value) + float(rng.normal()) * (abs(float(value)) + 1.0)
                if spec.nullable and i % 7 == 0:
                    row[spec.name] = None
            elif spec.dtype == "category" and spec.categories:
                row[spec.name] = spec.categories[i % len(spec.categories)]  # each one
        rows.append(row)
    return check_input(signature, rows)


class CompiledPipeline:
    """``transform`` builds the design matrix; ``final`` predicts on it; ``predict`` and
    ``predict_proba`` do both, as the pipeline's own would."""

    def __init__(self, model: Any, blocks: list[Block], width: int) -> None:
        self.model = model
        self.blocks = blocks
        self.width = width
        final = model.steps[-1][1]
        self.final = _Final(final.predict, getattr(final, "predict_proba", None))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), self.width))
        for block in self.blocks:
            block(frame, out)
        if np.isnan(out).any():  # a number the pipeline leaves missing: its own error
            self.model.predict(frame)
        return out

    def predict(self, frame: pd.DataFrame) -> Any:
        return self.final.predict(self.transform(frame))

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        assert self.final.predict_proba is not None
        return self.final.predict_proba(self.transform(frame))


class _Final:
    def __init__(self, predict: Callable[[np.ndarray], Any],
                 predict_proba: Callable[[np.ndarray], Any] | None) -> None:
        self.predict = predict
        self.predict_proba = predict_proba


def compile_pipeline(model: Any, signature: Signature | None,
                     example: list[dict[str, Any]] | None) -> CompiledPipeline | None:
    """A compiled ``Pipeline(ColumnTransformer, final)`` over checked DataFrames, or None."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None
    if (type(model) is not Pipeline or len(model.steps) != 2 or signature is None
            or not example):
        return None
    ct, final = model.steps[0][1], model.steps[1][1]
    if type(ct) is not ColumnTransformer or hasattr(final, "feature_names_in_"):
        return None
    try:
        built = _blocks(ct)
        if built is None:
            return None
        compiled = CompiledPipeline(model, *built)
        probe = _probes(signature, example)
        try:
            model.predict(probe)
        except ValueError:  # it does not take missing numbers: probe without them
            probe = probe.dropna().reset_index(drop=True)
        linear = compile_linear(final, compiled.transform(probe))
        if linear is not None:
            compiled.final = _Final(linear[0], linear[1])
        if not np.array_equal(np.asarray(compiled.predict(probe)),
                              np.asarray(model.predict(probe))):
            return None
        if compiled.final.predict_proba is not None and hasattr(model, "predict_proba") and \
                not np.allclose(compiled.predict_proba(probe), model.predict_proba(probe),
                                rtol=0, atol=_TOLERANCE):
            return None
    except Exception:  # anything unexpected: keep scikit-learn's own path
        return None
    return compiled
