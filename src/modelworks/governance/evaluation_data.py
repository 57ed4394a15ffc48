"""The inputs of a validation: the data, the label, the model's features and predictions.

Everything here turns user input into checked arrays, or raises ``InvalidInput`` naming the
field: ``data``, ``label``, ``sensitive_features``, ``task``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import InvalidInput, NotFound
from ..registry.loading import LoadedModel
from ..registry.signatures import check_input

__all__ = ["Prepared", "Task", "infer_task", "predict", "prepare", "read_frame"]

Task = Literal["classification", "regression"]
_TASKS = ("classification", "regression")
_FEW_CLASSES = 20  # a label with at most this many distinct int/bool/str values is a class


def read_frame(data: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """A DataFrame as given, or read from a CSV/Parquet path."""
    if isinstance(data, pd.DataFrame):
        return data.rename(columns=str)
    if not isinstance(data, str | os.PathLike):
        raise InvalidInput("data must be a pandas DataFrame, a CSV/Parquet path or a "
                           f"DatasetVersion, got {type(data).__name__}", field="data")
    path = Path(data)
    if not path.is_file():
        raise NotFound(f"no data file at {str(path)!r}")
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".parquet", ".pq")):
            return pd.read_parquet(path).rename(columns=str)
        if suffix.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(path).rename(columns=str)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"cannot read {str(path)!r}: {exc}", field="data") from exc
    raise InvalidInput(f"data file {str(path)!r} must end in .csv or .parquet", field="data")


@dataclass
class Prepared:
    """The checked inputs: model features, label values, sensitive columns."""

    frame: pd.DataFrame  # the data as given
    features: pd.DataFrame
    feature_names: list[str]
    y: pd.Series
    sensitive: pd.DataFrame


def _listing(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _fitted_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def prepare(loaded: LoadedModel, frame: pd.DataFrame, *, label: str,
            sensitive_features: Sequence[str]) -> Prepared:
    if frame.shape[0] == 0:
        raise InvalidInput("data has no rows", field="data")
    columns = [str(c) for c in frame.columns]
    if not isinstance(label, str) or label not in frame.columns:
        raise InvalidInput(f"label column {label!r} is not in the data (columns: "
                           f"{_listing(columns)})", field="label")
    missing = [s for s in sensitive_features if s not in frame.columns]
    if missing:
        raise InvalidInput(f"sensitive feature(s) {_listing(missing)} not in the data "
                           f"(columns: {_listing(columns)})", field="sensitive_features")
    y = frame[label]
    if y.isna().any():
        raise InvalidInput(f"label column {label!r} has {int(y.isna().sum())} missing "
                           "values", field="label")
    if loaded.signature is not None:
        names = [c.name for c in loaded.signature.inputs]
        try:
            features = check_input(loaded.signature,
                                   frame[[c for c in frame.columns if c in set(names)]])
        except InvalidInput as exc:
            raise InvalidInput(f"data cannot be given to {loaded.version.uri}: {exc}",
                               field="data") from exc
    else:
        names = _fitted_names(loaded.model) or [c for c in columns if c != label]
        absent = [n for n in names if n not in frame.columns]
        if absent:
            raise InvalidInput(f"data is missing model input column(s) {_listing(absent)}",
                               field="data")
        features = frame[names]
    if label in names:
        raise InvalidInput(f"label column {label!r} is one of the model's inputs",
                           field="label")
    return Prepared(frame=frame, features=features, feature_names=list(names), y=y,
                    sensitive=frame[list(sensitive_features)])


def _is_classifier(model: Any) -> bool | None:
    try:
        from sklearn.base import is_classifier, is_regressor
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None
    if is_classifier(model):
        return True
    if is_regressor(model):
        return False
    return None


def infer_task(loaded: LoadedModel, y: pd.Series, task: str | None) -> Task:
    """The explicit task; else the signature's output kind; else the model; else the label."""
    if task is not None:
        if task not in _TASKS:
            raise InvalidInput(f"task must be one of {', '.join(_TASKS)}, got {task!r}",
                               field="task")
        return task  # type: ignore[return-value]
    output = loaded.signature.output if loaded.signature is not None else None
    if output in ("class", "probability"):
        return "classification"
    if output == "number":
        return "regression"
    kind = _is_classifier(loaded.model)
    if kind is not None:
        return "classification" if kind else "regression"
    if hasattr(loaded.model, "predict_proba"):
        return "classification"
    dtype = y.dtype
    discrete = (pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype)
                or pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
                or isinstance(dtype, pd.CategoricalDtype))
    return "classification" if discrete and y.nunique() <= _FEW_CLASSES else "regression"


@dataclass
class Predictions:
    """Class indices (classification) or numbers (regression), and class probabilities."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None


def _classes(model: Any, y: pd.Series, raw_pred: np.ndarray) -> list[Any]:
    known = getattr(model, "classes_", None)
    if known is not None:
        return list(known)
    return sorted(set(pd.unique(y)) | set(pd.unique(pd.Series(raw_pred))), key=str)


def _indices(values: Any, classes: list[Any], *, what: str) -> np.ndarray:
    index = pd.Index(classes)
    codes = index.get_indexer(pd.Index(values))
    if (codes < 0).any():
        unknown = sorted({str(v) for v, c in zip(values, codes, strict=True) if c < 0})
        raise InvalidInput(f"{what} has values the model does not predict: "
                           f"{_listing(unknown)} (model classes: "
                           f"{_listing([str(c) for c in classes])})", field="label")
    return codes.astype(np.int64)


def predict(loaded: LoadedModel, prepared: Prepared, task: Task,
            classes: list[Any] | None = None) -> Predictions:
    """Run the model once on the checked features (``classes`` fixes the class order)."""
    model = loaded.model
    raw = np.asarray(model.predict(prepared.features))
    if task == "regression":
        try:
            y_true = prepared.y.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"label column {prepared.y.name!r} is not numeric: a "
                               "regression needs numbers (or pass task='classification')",
                               field="label") from exc
        return Predictions(y_true=y_true, y_pred=raw.astype(np.float64).ravel(), proba=None,
                           classes=None)
    own = _classes(model, prepared.y, raw)
    classes = classes if classes is not None else own
    y_values = prepared.y.to_numpy()
    if len(pd.unique(prepared.y)) < 2:
        raise InvalidInput(f"label column {prepared.y.name!r} has one class "
                           f"({y_values[0]!r}): classification metrics need at least two",
                           field="label")
    y_true = _indices(y_values, classes, what=f"label column {prepared.y.name!r}")
    y_pred = _indices(raw.ravel(), classes, what="the model's predictions")
    proba = None
    if hasattr(model, "predict_proba"):
        got = np.asarray(model.predict_proba(prepared.features), dtype=np.float64)
        if got.ndim == 2 and got.shape[1] == len(own):
            # columns in the model's class order, placed in the report's order
            proba = np.zeros((len(y_true), len(classes)))
            proba[:, _indices(own, classes, what="the model's classes")] = got
    return Predictions(y_true=y_true, y_pred=y_pred, proba=proba, classes=classes)
