"""How a model is retrained: its entrypoint, where its training data comes from, where a
candidate goes.

    ws.set_training("claims", entrypoint="claims_pkg.train:fit", data="dataset:claims-train",
                    label="needs_review", endpoint="claims", canary_weight=0.1)

One spec per model (``mw_training_specs``), replaced by the next ``set_training`` and audited
``training_spec.set``. The entrypoint is imported and checked when the spec is set, so a typo
fails now and not at 3 a.m. in the worker. ``data`` is ``dataset:NAME`` (its newest version
when the retraining starts) or ``{"prediction_log": {"window": "7d"}}``: the served
predictions' logged inputs over that window, joined with their feedback labels (only the
labelled rows). The table's ``data`` JSON holds the source plus the rollout and validation
options (``holdout``, ``canary_weight``, ``sensitive_features``): the table has no columns for
them.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select, update

from .. import audit
from ..context import Context
from ..data.datasets import get_dataset_version, load_dataset
from ..errors import InvalidInput, NotFound
from ..registry.models import get_model
from ..store.tables import registered_models, training_specs, utcnow
from .monitor import parse_window

__all__ = ["TrainingSpec", "get_training_spec", "load_entrypoint", "set_training_spec",
           "training_data"]

_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_DATA_HELP = ("data must be 'dataset:NAME' (its newest version) or "
              "{'prediction_log': {'window': '7d'}} (served predictions with feedback labels)")
DEFAULT_LOG_LABEL = "label"


class TrainingSpec(BaseModel):
    """How one model is retrained (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    model: str
    entrypoint: str
    data: dict[str, Any]  # {"dataset": NAME} | {"prediction_log": {"window": "7d"}}
    label: str
    params: dict[str, Any]
    endpoint: str | None
    canary_weight: float
    holdout: float
    sensitive_features: list[str]
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @property
    def source(self) -> str:
        """``dataset:NAME`` or ``prediction_log:WINDOW``, for messages and tables."""
        if "dataset" in self.data:
            return f"dataset:{self.data['dataset']}"
        return f"prediction_log:{self.data['prediction_log']['window']}"


def load_entrypoint(entrypoint: str) -> Callable[..., Any]:
    """The callable ``module:function`` names (``function`` may be dotted: ``Cls.fit``)."""
    if not isinstance(entrypoint, str) or not _ENTRYPOINT.match(entrypoint.strip()):
        raise InvalidInput(f"entrypoint must look like 'package.module:function', got "
                           f"{entrypoint!r}", field="entrypoint")
    module_name, _, attr = entrypoint.strip().partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module's own error while importing
        raise InvalidInput(f"entrypoint {entrypoint!r}: cannot import {module_name!r} "
                           f"({type(exc).__name__}: {exc})", field="entrypoint") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise InvalidInput(f"entrypoint {entrypoint!r}: {module_name!r} has no {attr!r}",
                               field="entrypoint")
        target = getattr(target, part)
    if not callable(target):
        raise InvalidInput(f"entrypoint {entrypoint!r} is not callable", field="entrypoint")
    return target  # type: ignore[no-any-return]


def _source(data: object) -> dict[str, Any]:
    if isinstance(data, str):
        kind, sep, name = data.strip().partition(":")
        if kind != "dataset" or not sep or not name:
            raise InvalidInput(f"{_DATA_HELP}; got {data!r}", field="data")
        if ":" in name:
            raise InvalidInput("retraining reads a dataset's newest version: give "
                               f"'dataset:{name.split(':')[0]}' without a version",
                               field="data")
        return {"dataset": name}
    if isinstance(data, Mapping) and set(data) == {"dataset"} and isinstance(
            data["dataset"], str) and data["dataset"]:
        return _source(f"dataset:{data['dataset']}")
    if isinstance(data, Mapping) and set(data) == {"prediction_log"}:
        options = data["prediction_log"]
        if not isinstance(options, Mapping) or set(options) - {"window"}:
            raise InvalidInput("prediction_log takes {'window': '7d'}", field="data")
        window = str(options.get("window", "7d"))
        try:
            parse_window(window)
        except InvalidInput as exc:
            raise InvalidInput(f"prediction_log window: {exc}", field="data") from exc
        return {"prediction_log": {"window": window}}
    raise InvalidInput(f"{_DATA_HELP}; got {data!r}", field="data")


def _share(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise InvalidInput(f"{field} must be a number between 0 and 1 (exclusive), got "
                           f"{value!r}", field=field)
    return float(value)


def _params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InvalidInput("params must be a mapping of names to values", field="params")
    try:
        return dict(json.loads(json.dumps(dict(params), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"params must be JSON values (they are stored and passed to the "
                           f"entrypoint as keyword arguments): {exc}", field="params") from exc


def _check_columns(conn: Connection, source: dict[str, Any], label: str,
                   sensitive: list[str]) -> None:
    """For a dataset source, the label and sensitive columns exist in its newest version."""
    if "dataset" not in source:
        return
    version = get_dataset_version(conn, source["dataset"])
    columns = list(version.columns)
    if label not in columns:
        raise InvalidInput(f"label {label!r} is not a column of {version.uri} (columns: "
                           f"{', '.join(columns[:20])})", field="label")
    missing = [c for c in sensitive if c not in columns]
    if missing:
        raise InvalidInput(f"sensitive feature(s) {', '.join(missing)} not in {version.uri}",
                           field="sensitive_features")


def _record(name: str, row: Any) -> TrainingSpec:
    data = dict(row.data)
    source = {k: data[k] for k in ("dataset", "prediction_log") if k in data}
    return TrainingSpec(
        model=name, entrypoint=row.entrypoint, data=source,
        label=row.label or DEFAULT_LOG_LABEL, params=dict(row.params),
        endpoint=row.endpoint, canary_weight=float(data.get("canary_weight", 0.1)),
        holdout=float(data.get("holdout", 0.25)),
        sensitive_features=list(data.get("sensitive_features", [])),
        created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at,
        updated_by=row.updated_by)


def set_training_spec(
    ctx: Context, model: str, *, entrypoint: str, data: str | Mapping[str, Any],
    label: str | None = None, params: Mapping[str, Any] | None = None,
    endpoint: str | None = None, canary_weight: float = 0.1, holdout: float = 0.25,
    sensitive_features: Sequence[str] = (),
) -> TrainingSpec:
    """Store how ``model`` is retrained (replacing its previous spec); audited."""
    load_entrypoint(entrypoint)
    source = _source(data)
    if label is None and "dataset" in source:
        raise InvalidInput("label is required: the dataset column the model predicts",
                           field="label")
    label = label or DEFAULT_LOG_LABEL
    if not isinstance(label, str) or not label.strip():
        raise InvalidInput("label must be a column name", field="label")
    if isinstance(sensitive_features, str) or not all(
            isinstance(c, str) for c in sensitive_features):
        raise InvalidInput("sensitive_features must be a list of column names",
                           field="sensitive_features")
    sensitive = list(sensitive_features)
    options = {**source, "canary_weight": _share(canary_weight, "canary_weight"),
               "holdout": _share(holdout, "holdout"), "sensitive_features": sensitive}
    kwargs = _params(params)
    with ctx.db.write() as conn:
        get_model(conn, model)  # NotFound names the model
        _check_columns(conn, source, label, sensitive)
        if endpoint is not None:
            from ..serving.deployments import get_deployment

            get_deployment(conn, endpoint)  # NotFound lists the deployments
        model_id = conn.execute(select(registered_models.c.id).where(
            registered_models.c.name == model)).scalar_one()
        now = utcnow()
        values = {"entrypoint": entrypoint.strip(), "data": options, "label": label,
                  "params": kwargs, "endpoint": endpoint, "updated_at": now,
                  "updated_by": ctx.actor}
        exists = conn.execute(select(training_specs.c.id).where(
            training_specs.c.model_id == model_id)).first()
        if exists is None:
            conn.execute(insert(training_specs).values(model_id=model_id, created_at=now,
                                                       created_by=ctx.actor, **values))
        else:
            conn.execute(update(training_specs).where(training_specs.c.model_id == model_id)
                         .values(**values))
        audit.append(ctx.db, conn, actor=ctx.actor, action="training_spec.set",
                     entity_type="model", entity_id=model,
                     payload={k: v for k, v in values.items() if k != "updated_at"})
        return get_training_spec(conn, model)


def get_training_spec(conn: Connection, model: str) -> TrainingSpec:
    row = conn.execute(select(training_specs).join(
        registered_models, registered_models.c.id == training_specs.c.model_id).where(
        registered_models.c.name == model)).first()
    if row is None:
        get_model(conn, model)  # NotFound for an unknown model first
        raise NotFound(f"model {model!r} has no training spec: set one with "
                       "ws.set_training(...) (see docs/retraining.md)")
    return _record(model, row)


def training_data(ctx: Context, spec: TrainingSpec, *,
                  journal_dir: str | Path | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows to train on now, and what they are (for the retrain run's record)."""
    if "dataset" in spec.data:
        with ctx.db.read() as conn:
            version = get_dataset_version(conn, spec.data["dataset"])
        frame = load_dataset(ctx, version)
        details: dict[str, Any] = {"source": "dataset", "dataset": version.name,
                                   "version": version.version,
                                   "content_hash": version.content_hash}
    else:
        frame, details = _logged(ctx, spec, journal_dir)
    if spec.label not in frame.columns:
        raise InvalidInput(f"label {spec.label!r} is not a column of the training data "
                           f"({spec.source})", field="label")
    labelled = frame[spec.label].notna()
    if not labelled.any():
        raise InvalidInput(f"no labelled rows to train on in {spec.source}", field="data")
    if not labelled.all():  # reported in the run's record, never dropped silently
        details["unlabelled_rows_dropped"] = int((~labelled).sum())
        frame = frame[labelled].reset_index(drop=True)
    return frame, {**details, "rows": len(frame)}


def _logged(ctx: Context, spec: TrainingSpec, journal_dir: str | Path | None
            ) -> tuple[pd.DataFrame, dict[str, Any]]:
    from ..serving.prediction_reader import read_predictions

    window = spec.data["prediction_log"]["window"]
    until = datetime.now(UTC)
    since = until - parse_window(window)
    log = read_predictions(ctx, model=spec.model, since=since, until=until,
                           journal_dir=journal_dir, with_feedback=True)
    labelled = log[log["label"].notna()] if len(log) else log
    details = {"source": "prediction_log", "window": window, "since": since.isoformat(),
               "until": until.isoformat(), "predictions": len(log)}
    if labelled.empty:
        raise InvalidInput(f"no labelled predictions by {spec.model} in the last {window} "
                           f"({len(log):,} predictions, none with feedback yet)", field="data")
    frame = pd.DataFrame(list(labelled["inputs"]))
    if spec.label in frame.columns:
        raise InvalidInput(f"label {spec.label!r} is also an input column of the logged "
                           "predictions: name the label column differently", field="label")
    frame[spec.label] = list(labelled["label"])
    return frame, details
