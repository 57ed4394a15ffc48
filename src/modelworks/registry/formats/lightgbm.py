"""LightGBM models in LightGBM's own text format: loading parses trees, never runs code.

The payload is one JSON header line (what to rebuild) and then ``Booster.model_to_string()``.
A raw ``lightgbm.Booster`` loads back as a Booster; a fitted ``LGBMModel`` loads back as a
``LightGBMPredictor`` whose ``predict`` / ``predict_proba`` match the scikit-learn wrapper.
lightgbm is imported only when needed, so modelworks works without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from importlib import metadata
from typing import Any

import numpy as np

from ...errors import IntegrityError, InvalidInput
from ._imports import require

__all__ = ["LightGBMFormat", "LightGBMPredictor"]

_NAME = "lightgbm"


def _lgb() -> Any:
    return require("lightgbm", format_name=_NAME, extra="lightgbm")


class LightGBMPredictor:
    """A LightGBM Booster that predicts like the ``LGBMClassifier`` / ``LGBMRegressor`` saved."""

    def __init__(self, booster: Any, classes: np.ndarray | None, estimator: str) -> None:
        self.booster = booster
        self.classes_ = classes  # None for a regressor / ranker
        self.estimator = estimator

    def predict_proba(self, x: Any) -> np.ndarray:
        if self.classes_ is None:
            raise AttributeError(f"{self.estimator} is not a classifier: no predict_proba")
        proba = np.asarray(self.booster.predict(x))
        return np.vstack([1.0 - proba, proba]).T if proba.ndim == 1 else proba

    def predict(self, x: Any) -> np.ndarray:
        if self.classes_ is None:
            return np.asarray(self.booster.predict(x))
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]


class LightGBMFormat:
    """``lightgbm.Booster`` and fitted ``lightgbm.LGBMModel`` as LightGBM model text."""

    name = _NAME
    library = "lightgbm"
    executes_code_on_load = False

    def library_version(self) -> str:
        return metadata.version(self.library)

    def can_save(self, model: Any) -> bool:
        lgb = sys.modules.get("lightgbm")  # a LightGBM model cannot exist before its import
        if lgb is None:
            return False
        if isinstance(model, lgb.Booster):
            return True
        return isinstance(model, lgb.LGBMModel) and bool(model.__sklearn_is_fitted__())

    def save(self, model: Any) -> bytes:
        if not self.can_save(model):
            msg = f"{type(model).__qualname__} is not a lightgbm Booster or fitted LGBMModel"
            raise InvalidInput(msg, field="model")
        lgb = _lgb()
        header: dict[str, Any] = {"format": _NAME, "kind": "booster"}
        booster = model
        if isinstance(model, lgb.LGBMModel):
            if callable(model.objective):
                raise InvalidInput(
                    "a LightGBM model with a custom objective function cannot be saved "
                    "natively: its predictions depend on Python code",
                    field="model",
                )
            booster = model.booster_
            header["estimator"] = f"{type(model).__module__}.{type(model).__qualname__}"
            header["kind"] = "estimator"
            if isinstance(model, lgb.LGBMClassifier):
                header["classes"] = np.asarray(model.classes_).tolist()
        try:
            head = json.dumps(header).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"classes are not JSON: {exc}", field="model") from exc
        return head + b"\n" + booster.model_to_string().encode("utf-8")

    def load(
        self,
        data: bytes,
        *,
        trusted_types: Collection[str] = (),  # nothing but trees is loaded
        allow_pickle: bool = False,
    ) -> Any:
        head, _, body = data.partition(b"\n")
        lgb = _lgb()
        try:
            header = json.loads(head)  # ValueError covers JSON and UTF-8 errors
            if not isinstance(header, dict) or header.get("format") != _NAME:
                raise ValueError("missing the lightgbm header")
            booster = lgb.Booster(model_str=body.decode("utf-8"))
        except (lgb.basic.LightGBMError, ValueError) as exc:
            raise IntegrityError(f"not a lightgbm model payload: {exc}") from exc
        if header.get("kind") != "estimator":
            return booster
        classes = header.get("classes")
        return LightGBMPredictor(
            booster,
            None if classes is None else np.asarray(classes),
            str(header.get("estimator", "lightgbm model")),
        )
