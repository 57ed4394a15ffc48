"""Explain a served prediction after the fact, from its logged input and model version.

The version is loaded from the registry (sha256-verified) and the logged rows are checked
against its signature again, so the explanation is of exactly what was served. Attribution:

- tree models: exact TreeSHAP (``shap-tree``);
- linear models: SHAP's LinearExplainer against a background of the training data
  (``shap-linear``);
- anything else, or without shap: occlusion — each feature in turn replaced by its
  background median (numbers) or mode (categories), the change in the model's score recorded
  (``occlusion``).

The score is the probability of the predicted class for classifiers, the prediction itself
for regressors. The background is a sample of the version's training dataset (the run's
``train`` input) or, failing that, its stored input example. Each explanation is audited
(``prediction.explained``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from .. import audit
from ..context import Context
from ..errors import InvalidInput, NotFound
from ..governance.explain import _split_pipeline, _transform
from ..lineage.edges import Node, edges_of
from ..registry.loading import LoadedModel, load
from ..registry.signatures import check_input
from .ids import parse_prediction_id, request_time
from .records import PredictionRecord

__all__ = ["Contribution", "RequestExplanation", "RowExplanation", "explain_request"]

_BACKGROUND_ROWS = 200
_MAX_ROWS = 1_000


class Contribution(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str
    value: Any
    contribution: float


class RowExplanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    prediction_id: str
    prediction: Any
    score: float | None
    contributions: list[Contribution]  # largest magnitude first


class RequestExplanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    model: str
    version: int
    method: str
    background: str
    rows: list[RowExplanation]


def _records(ctx: Context, target: str, journal_dir: Any) -> list[PredictionRecord]:
    from .prediction_reader import get_prediction

    if ":" in target:
        parse_prediction_id(target)
        return [get_prediction(ctx, target, journal_dir=journal_dir)]
    request_time(target)  # InvalidInput naming the malformed id
    records = []
    for row in range(_MAX_ROWS):
        try:
            records.append(get_prediction(ctx, f"{target}:{row}", journal_dir=journal_dir))
        except NotFound:
            break
    if not records:
        raise NotFound(f"no logged prediction for request {target!r}")
    return records


def _background(ctx: Context, loaded: LoadedModel) -> tuple[pd.DataFrame, str]:
    run_id = loaded.version.run_id
    if run_id is not None:
        from ..data.datasets import get_dataset_version, load_dataset

        with ctx.db.read() as conn:
            edges = [e for e in edges_of(conn, [Node(type="run", id=run_id)])
                     if e.parent.type == "dataset_version"
                     and str(e.payload.get("role", "")).startswith("train")]
            found = None
            if edges:
                found = get_dataset_version(conn, str(edges[0].payload["dataset"]),
                                            int(edges[0].payload["version"]))
        if found is not None:
            frame = load_dataset(ctx, found)
            names = [c["name"] for c in (loaded.version.signature or {}).get("inputs", [])]
            if names and set(names) <= set(frame.columns):
                sample = frame[names].sample(min(_BACKGROUND_ROWS, len(frame)), random_state=0)
                return sample.reset_index(drop=True), f"{found.name}:{found.version}"
    if loaded.version.input_example:
        return pd.DataFrame(loaded.version.input_example), "the version's input example"
    raise InvalidInput(f"{loaded.version.uri} has neither a training dataset nor an input "
                       "example to explain against", field="model")


def _class_index(estimator: Any, predictions: np.ndarray, n_classes: int) -> list[int]:
    """Column of each row's predicted class in predict_proba's output."""
    classes = list(getattr(estimator, "classes_", range(n_classes)))
    return [classes.index(p) if p in classes else 0 for p in predictions.tolist()]


def _scores(model: Any, frame: pd.DataFrame, predictions: np.ndarray) -> np.ndarray:
    """The probability of each row's predicted class, or the predicted value."""
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(frame))
        index = _class_index(model, predictions, proba.shape[1])
        return proba[np.arange(len(frame)), index]
    return np.asarray(model.predict(frame), dtype=np.float64)


def _occlusion(model: Any, frame: pd.DataFrame, background: pd.DataFrame,
               predictions: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Score change when each feature takes its background median (or mode)."""
    out = np.zeros((len(frame), frame.shape[1]))
    for j, column in enumerate(frame.columns):
        series = background[column]
        fill = series.median() if pd.api.types.is_numeric_dtype(series) and not \
            pd.api.types.is_bool_dtype(series) else series.mode().iloc[0]
        changed = frame.copy()
        changed[column] = fill
        changed = changed.astype(frame.dtypes.to_dict())
        out[:, j] = base - _scores(model, changed, predictions)
    return out


def _shap_local(model: Any, frame: pd.DataFrame, background: pd.DataFrame,
                predictions: np.ndarray) -> tuple[str, np.ndarray, list[str]] | None:
    try:
        import shap
    except ImportError:
        return None
    pre, estimator = _split_pipeline(model)
    data, names = _transform(pre, frame)
    back, _ = _transform(pre, background)
    try:
        explainer = shap.TreeExplainer(estimator)
        method = "shap-tree"
    except Exception:
        if not hasattr(estimator, "coef_"):
            return None
        explainer = shap.LinearExplainer(estimator, back)
        method = "shap-linear"
    values = explainer.shap_values(data) if method == "shap-linear" else \
        explainer.shap_values(data, check_additivity=False)
    arr = np.asarray(values, dtype=np.float64)
    if isinstance(values, list):
        arr = np.stack([np.asarray(v, dtype=np.float64) for v in values], axis=-1)
    if arr.ndim == 3:  # rows x features x classes: take the predicted class
        index = _class_index(estimator, predictions, arr.shape[2])
        arr = arr[np.arange(arr.shape[0]), :, index]
    return method, arr, names


def explain_request(ctx: Context, target: str, *, journal_dir: Any = None,
                    top: int = 10) -> RequestExplanation:
    """Explain every row of request ``target`` (or one row: ``REQUEST_ID:ROW``)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidInput("top must be a positive integer", field="top")
    records = _records(ctx, target.strip(), journal_dir)
    first = records[0]
    loaded = load(ctx, f"models:/{first.model}/{first.version}")
    if loaded.signature is None:
        raise InvalidInput(f"{loaded.version.uri} has no signature: its logged input cannot "
                           "be checked", field="model")
    try:
        frame = check_input(loaded.signature, [r.inputs for r in records])
    except InvalidInput as exc:
        raise InvalidInput(f"the logged input no longer fits {loaded.version.uri} (columns "
                           f"left out of the log for privacy cannot be explained): {exc}",
                           field="inputs") from exc
    background, source = _background(ctx, loaded)
    background = check_input(loaded.signature, background)
    predictions = np.asarray(loaded.model.predict(frame))
    scores = _scores(loaded.model, frame, predictions)
    local = _shap_local(loaded.model, frame, background, predictions)
    if local is None:
        method, values, names = ("occlusion", _occlusion(loaded.model, frame, background,
                                                          predictions, scores),
                                 list(frame.columns))
    else:
        method, values, names = local
    raw = frame.to_dict(orient="records")
    rows = []
    for i, record in enumerate(records):
        order = np.argsort(-np.abs(values[i]))[:top]
        rows.append(RowExplanation(
            prediction_id=record.prediction_id, prediction=record.output,
            score=float(scores[i]), contributions=[Contribution(
                feature=names[j], value=_plain(raw[i].get(names[j])),
                contribution=float(values[i][j])) for j in order]))
    explanation = RequestExplanation(request_id=first.request_id, model=first.model,
                                     version=first.version, method=method,
                                     background=source, rows=rows)
    with ctx.db.write() as conn:
        audit.append(ctx.db, conn, actor=ctx.actor, action="prediction.explained",
                     entity_type="prediction", entity_id=target.strip(),
                     payload={"model": first.model, "version": first.version,
                              "method": method, "rows": len(rows)})
    return explanation


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is not None and isinstance(value, float) and np.isnan(value):
        return None
    return value
