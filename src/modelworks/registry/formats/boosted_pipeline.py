"""A scikit-learn Pipeline that ends in a LightGBM or XGBoost model, each half in a safe format.

skops refuses LightGBM and XGBoost objects (they are not from a trusted package) and the
native formats cannot hold preprocessing, yet "encode, impute, then boost" is what AutoML's
winners usually are. This format stores the preprocessing steps with skops (same trust rules
as the ``sklearn`` format) and the final estimator as LightGBM model text or XGBoost UBJSON;
neither half runs code on load. It loads back as a scikit-learn ``Pipeline`` whose last step
predicts like the estimator that was saved.

Payload: one JSON header line, then the skops bytes, then the native bytes (lengths in the
header).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import numpy as np
import sklearn
from sklearn.base import BaseEstimator

from ...errors import IntegrityError, InvalidInput
from .base import ModelFormat
from .lightgbm import LightGBMFormat
from .sklearn import SklearnFormat
from .xgboost import XGBoostFormat

__all__ = ["BoostedPipelineFormat", "FittedClassifier", "FittedRegressor"]

_NAME = "boosted-pipeline"
_FINALS: dict[str, ModelFormat] = {"lightgbm": LightGBMFormat(), "xgboost": XGBoostFormat()}


class FittedRegressor(BaseEstimator):
    """A loaded native model as a Pipeline's last step: it predicts; it cannot be refitted."""

    def __init__(self, predictor: Any = None) -> None:
        self.predictor = predictor

    def __sklearn_is_fitted__(self) -> bool:
        return self.predictor is not None

    def fit(self, *args: Any, **kwargs: Any) -> FittedRegressor:
        raise InvalidInput("a loaded model cannot be refitted: train a new one", field="model")

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(self.predictor.predict(x))


class FittedClassifier(FittedRegressor):
    """As :class:`FittedRegressor`, with class probabilities and ``classes_``."""

    _estimator_type = "classifier"

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.predictor.classes_)

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.asarray(self.predictor.predict_proba(x))


def _final_format(model: Any) -> str | None:
    for name, fmt in _FINALS.items():
        try:
            if fmt.can_save(model):
                return name
        except ImportError:
            continue
    return None


class BoostedPipelineFormat:
    """A fitted ``Pipeline(steps..., (name, LGBMModel | XGBModel))``."""

    name = _NAME
    library = "scikit-learn"
    executes_code_on_load = False

    def library_version(self) -> str:
        return str(sklearn.__version__)

    def can_save(self, model: Any) -> bool:
        from sklearn.pipeline import Pipeline

        if not isinstance(model, Pipeline) or len(model.steps) < 2:
            return False
        prefix_ok = all(isinstance(step, BaseEstimator) or step == "passthrough"
                        for _, step in model.steps[:-1])
        return prefix_ok and _final_format(model.steps[-1][1]) is not None

    def save(self, model: Any) -> bytes:
        if not self.can_save(model):
            raise InvalidInput(f"{type(model).__qualname__} is not a fitted Pipeline ending in "
                               "a LightGBM or XGBoost model", field="model")
        step, final = model.steps[-1]
        final_name = _final_format(final)
        assert final_name is not None
        prefix = SklearnFormat().save(model[:-1])
        native = _FINALS[final_name].save(final)
        header = {"format": _NAME, "step": step, "final": final_name,
                  "prefix_bytes": len(prefix), "final_bytes": len(native),
                  "classifier": getattr(final, "classes_", None) is not None}
        return json.dumps(header).encode("utf-8") + b"\n" + prefix + native

    def load(
        self,
        data: bytes,
        *,
        trusted_types: Collection[str] = (),
        allow_pickle: bool = False,
    ) -> Any:
        from sklearn.pipeline import Pipeline

        head, _, body = data.partition(b"\n")
        try:
            header = json.loads(head)
            if not isinstance(header, dict) or header.get("format") != _NAME:
                raise ValueError("missing the boosted-pipeline header")
            cut = int(header["prefix_bytes"])
            if header["final"] not in _FINALS or cut + int(header["final_bytes"]) != len(body):
                raise ValueError("the header does not match the payload")
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"not a boosted-pipeline model payload: {exc}") from exc
        prefix = SklearnFormat().load(body[:cut], trusted_types=trusted_types)
        predictor = _FINALS[header["final"]].load(body[cut:])
        wrapper = FittedClassifier if header.get("classifier") else FittedRegressor
        return Pipeline([*prefix.steps, (str(header["step"]), wrapper(predictor))])
