"""Model serialisation formats: one interface (``base.ModelFormat``), one module per library.

Formats are registered by name as ``"module:Class"`` and imported on first use, so an
optional library is imported only when a model of its kind is saved or loaded. Safe formats
are tried first; pickle is used only when the caller passes ``allow_pickle=True``.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from functools import cache
from typing import Any, cast

from ...errors import InvalidInput
from .base import ModelFormat, SavedModel

__all__ = [
    "FORMATS",
    "ModelFormat",
    "SavedModel",
    "detect_format",
    "get_format",
    "load_model",
    "save_model",
]

FORMATS: dict[str, str] = {
    "lightgbm": ".lightgbm:LightGBMFormat",
    "xgboost": ".xgboost:XGBoostFormat",
    "boosted-pipeline": ".boosted_pipeline:BoostedPipelineFormat",
    "onnx": ".onnx:OnnxFormat",
    "sklearn": ".sklearn:SklearnFormat",
    "pickle": ".pickle:PickleFormat",
}
# Tried in this order by ``detect_format``; pickle is the opt-in fallback, never detected.
# Native formats come before sklearn: LGBMClassifier and XGBClassifier are sklearn estimators.
# A Pipeline ending in a LightGBM/XGBoost model is a sklearn estimator skops cannot trust.
_SAFE_ORDER = ("lightgbm", "xgboost", "boosted-pipeline", "onnx", "sklearn")


@cache
def get_format(name: str) -> ModelFormat:
    """The format registered as ``name``.

    Raises:
        InvalidInput: (field ``format``) no such format, or its library is not installed.
    """
    target = FORMATS.get(name)
    if target is None:
        raise InvalidInput(
            f"unknown model format {name!r}; known formats: {', '.join(sorted(FORMATS))}",
            field="format",
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name, __name__)
    except ImportError as exc:
        raise InvalidInput(
            f"model format {name!r} needs a library that is not installed: {exc}",
            field="format",
        ) from exc
    return cast(ModelFormat, getattr(module, class_name)())


def detect_format(model: Any, *, allow_pickle: bool) -> ModelFormat:
    """The first safe format that can save ``model``; pickle only when ``allow_pickle``.

    Raises:
        InvalidInput: (field ``model``) no safe format fits and pickle was not allowed.
    """
    for name in _SAFE_ORDER:
        try:
            fmt = get_format(name)
        except InvalidInput:  # library not installed: a model of its kind cannot exist here
            continue
        try:
            fits = fmt.can_save(model)
        except ImportError:  # same: an optional library missing or broken
            continue
        if fits:
            return fmt
    if allow_pickle:
        return get_format("pickle")
    raise InvalidInput(
        f"no safe format can save a model of type {type(model).__module__}."
        f"{type(model).__qualname__}; supported formats: {', '.join(_SAFE_ORDER)}; "
        "pass allow_pickle=True to opt in to pickle (loading it runs code from the bytes)",
        field="model",
    )


def save_model(model: Any, *, allow_pickle: bool = False) -> SavedModel:
    """Serialise ``model`` in the format ``detect_format`` picks."""
    fmt = detect_format(model, allow_pickle=allow_pickle)
    return SavedModel(
        format=fmt.name,
        data=fmt.save(model),
        library=fmt.library,
        library_version=fmt.library_version(),
    )


def load_model(
    saved: SavedModel,
    *,
    trusted_types: Collection[str] = (),
    allow_pickle: bool = False,
) -> Any:
    """Rebuild the model in ``saved`` with the format it was written in."""
    return get_format(saved.format).load(
        saved.data, trusted_types=trusted_types, allow_pickle=allow_pickle
    )
