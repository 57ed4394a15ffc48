"""XGBoost models as XGBoost's own UBJSON: loading parses trees, never runs code.

The payload is one JSON header line (estimator kind, classes, objective, prediction settings)
and then ``Booster.save_raw("ubj")``. A raw ``xgboost.Booster`` loads back as a Booster; a
fitted ``XGBModel`` as an ``XGBoostPredictor`` that predicts like the scikit-learn wrapper.
xgboost is imported only when needed, so modelworks works without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection
from typing import Any

import numpy as np

from ...errors import IntegrityError, InvalidInput
from ._imports import require

__all__ = ["XGBoostFormat", "XGBoostPredictor"]

_NAME = "xgboost"


def _xgb() -> Any:
    return require("xgboost", format_name=_NAME, extra="xgboost")


class XGBoostPredictor:
    """An XGBoost Booster that predicts like the ``XGBClassifier`` / ``XGBRegressor`` saved."""

    def __init__(self, booster: Any, header: dict[str, Any]) -> None:
        self.booster, self.header = booster, header
        self.objective = header.get("objective")
        classes = header.get("classes")
        self.classes_ = None if classes is None else np.asarray(classes)

    def _predict(self, x: Any, *, margin: bool = False) -> np.ndarray:
        xgb, h = _xgb(), self.header
        if not isinstance(x, xgb.DMatrix):
            x = xgb.DMatrix(x, missing=h["missing"], enable_categorical=h["enable_categorical"])
        rng = tuple(h["iteration_range"])
        return np.asarray(self.booster.predict(x, output_margin=margin, iteration_range=rng))

    def predict_proba(self, x: Any) -> np.ndarray:
        if self.classes_ is None:
            raise AttributeError(f"{self.header['estimator']} is not a classifier")
        if self.objective == "multi:softmax":
            margin = self._predict(x, margin=True)
            exp = np.exp(margin - margin.max(axis=1, keepdims=True))
            return np.asarray(exp / exp.sum(axis=1, keepdims=True))
        proba = self._predict(x)
        return np.vstack([1.0 - proba, proba]).T if proba.ndim == 1 else proba

    def predict(self, x: Any) -> np.ndarray:
        out = self._predict(x)
        if self.classes_ is None:
            return out
        if out.ndim > 1 and len(self.classes_) != 2:
            index = np.argmax(out, axis=1)
        elif out.ndim > 1 and out.shape[1] != 1:  # multi-label: one 0/1 column per label
            return (out > 0.5).astype(int)
        elif self.objective == "multi:softmax":
            index = out.astype(np.int32)
        else:
            index = (out > 0.5).astype(int)
        return self.classes_[index]


class XGBoostFormat:
    """``xgboost.Booster`` and fitted ``xgboost.XGBModel`` as XGBoost UBJSON."""

    name = _NAME
    library = "xgboost"
    executes_code_on_load = False

    def library_version(self) -> str:
        # The module's own version: the distribution may be "xgboost" or "xgboost-cpu".
        import xgboost

        return str(xgboost.__version__)

    def can_save(self, model: Any) -> bool:
        xgb = sys.modules.get("xgboost")  # an XGBoost model cannot exist before its import
        if xgb is None:
            return False
        if isinstance(model, xgb.Booster):
            return True
        return isinstance(model, xgb.XGBModel) and bool(model.__sklearn_is_fitted__())

    def save(self, model: Any) -> bytes:
        if not self.can_save(model):
            msg = f"{type(model).__qualname__} is not an xgboost Booster or fitted XGBModel"
            raise InvalidInput(msg, field="model")
        xgb = _xgb()
        header: dict[str, Any] = {"format": _NAME, "kind": "booster"}
        booster = model
        if isinstance(model, xgb.XGBModel):
            if callable(model.objective):
                msg = "a custom objective is Python code; XGBoost cannot save it natively"
                raise InvalidInput(msg, field="model")
            booster = model.get_booster()
            stop = model.best_iteration + 1 if "best_iteration" in booster.attributes() else 0
            header.update(
                kind="estimator",
                estimator=f"{type(model).__module__}.{type(model).__qualname__}",
                objective=model.objective,
                missing=float(model.missing),
                enable_categorical=bool(model.enable_categorical),
                iteration_range=[0, 0 if model.booster == "gblinear" else int(stop)],
            )
            if isinstance(model, xgb.XGBClassifier):
                header["classes"] = np.asarray(model.classes_).tolist()
        head = json.dumps(header).encode("utf-8")  # settings and integer classes: always JSON
        return head + b"\n" + bytes(booster.save_raw("ubj"))

    def load(
        self,
        data: bytes,
        *,
        trusted_types: Collection[str] = (),  # nothing but trees is loaded
        allow_pickle: bool = False,
    ) -> Any:
        head, _, body = data.partition(b"\n")
        xgb = _xgb()
        try:
            header = json.loads(head)  # ValueError covers JSON and UTF-8 errors
            if not isinstance(header, dict) or header.get("format") != _NAME:
                raise ValueError("missing the xgboost header")
            booster = xgb.Booster()
            booster.load_model(bytearray(body))
        except (xgb.core.XGBoostError, ValueError) as exc:
            raise IntegrityError(f"not an xgboost model payload: {exc}") from exc
        return booster if header.get("kind") != "estimator" else XGBoostPredictor(booster, header)
