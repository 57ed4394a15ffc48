"""Validation reports: the evidence a model-risk reviewer reads before approving a version.

``validate`` runs a registered version on labelled data and records, in one transaction, a
``mw_validation_reports`` row, an audit event ``model_version.validated``, the model's
validation status and next review date, and lineage edges report -> model version (and ->
dataset version when the data is a logged one). The report itself is stored twice in the
artifact store, sha256-addressed: as JSON (the record without its own ``report_sha256``) and
as one self-contained HTML page with the plots inline.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, PrivateAttr
from sqlalchemy import Connection, insert, select, update

from .. import audit
from ..context import Context
from ..data.hashing import content_hash
from ..errors import InvalidInput, NotFound
from ..lineage import Node, add_edge
from ..records import DatasetVersion
from ..registry.loading import LoadedModel, load
from ..registry.models import resolve
from ..registry.uri import ModelRef, parse_model_uri
from ..store.tables import (
    model_versions,
    registered_models,
    utcnow,
    validation_reports,
)
from .evaluation_data import Prepared, Task, infer_task, predict, prepare, read_frame
from .explain import Explanation, explain_model
from .fairness import FeatureFairness, fairness_report
from .heldout import HeldOutCheck, check_held_out
from .inventory import next_review
from .metrics import MetricValue, classification_metrics, regression_metrics

__all__ = [
    "HEADLINE_METRICS",
    "Calibration",
    "Comparison",
    "ValidationReport",
    "get_validation_report",
    "latest_validation",
    "list_validation_reports",
    "validate",
]

COMPARED_ALIAS = "production"
HEADLINE_METRICS = {"classification": ("accuracy", "f1", "roc_auc", "log_loss"),
                    "regression": ("mae", "rmse", "r2", "mape")}
_CALIBRATION_BINS = 10


class Calibration(BaseModel):
    """Reliability curve of a binary classifier (uniform bins, empty bins left out)."""

    model_config = ConfigDict(frozen=True)

    mean_predicted: list[float]
    fraction_positive: list[float]


class Comparison(BaseModel):
    """The same metrics for the version holding ``alias``, on the same data."""

    model_config = ConfigDict(frozen=True)

    alias: str
    version: int
    metrics: dict[str, float | None]
    delta: dict[str, float | None]  # this version minus the alias's version
    error: str | None = None


class ValidationReport(BaseModel):
    """One validation of one model version on one labelled dataset."""

    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    version: int
    task: Literal["classification", "regression"]
    label: str
    rows: int
    data_hash: str
    dataset: str | None  # dataset:NAME:VERSION when the data was a logged version
    sensitive_features: list[str]
    classes: list[str] | None
    metrics: dict[str, MetricValue]
    calibration: Calibration | None
    confusion_matrix: list[list[int]] | None
    fairness: dict[str, FeatureFairness]  # by sensitive feature
    explanations: Explanation | None
    comparison: Comparison | None
    held_out: bool
    held_out_reason: str
    held_out_check: HeldOutCheck
    n_bootstrap: int
    seed: int
    report_sha256: str
    html_sha256: str
    created_at: datetime
    created_by: str

    _page: str | None = PrivateAttr(default=None)

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"

    def html(self) -> str:
        """The stored HTML page (one self-contained file)."""
        if self._page is None:
            raise NotFound(f"validation report {self.id}: the page was not loaded; use "
                           "get_validation_report(ctx, id) or ws.get_validation_report(id)")
        return self._page

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the HTML page (or, for a ``.json`` path, the JSON record) to ``path``."""
        target = Path(path)
        if target.suffix.lower() == ".json":
            target.write_text(self.model_dump_json(indent=2))
        else:
            target.write_text(self.html(), encoding="utf-8")
        return target


# -- computing ------------------------------------------------------------------------


def _frame(ctx: Context, data: Any) -> tuple[pd.DataFrame, str, DatasetVersion | None]:
    if isinstance(data, DatasetVersion):
        from ..data.datasets import load_dataset

        return load_dataset(ctx, data), data.content_hash, data
    frame = read_frame(data)
    if frame.columns.duplicated().any():
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InvalidInput(f"data has duplicate column names: {dupes}", field="data")
    return frame, content_hash(frame), None


def _metrics(task: Task, preds: Any, *, n_bootstrap: int, seed: int) -> dict[str, MetricValue]:
    if task == "regression":
        return regression_metrics(preds.y_true, preds.y_pred, n_bootstrap=n_bootstrap,
                                  seed=seed)
    return classification_metrics(preds.y_true, preds.y_pred, preds.proba, preds.classes,
                                  n_bootstrap=n_bootstrap, seed=seed)


def _curves(preds: Any) -> tuple[Calibration | None, list[list[int]] | None]:
    if preds.classes is None:
        return None, None
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(preds.y_true, preds.y_pred, labels=range(len(preds.classes)))
    calibration = None
    if preds.proba is not None and len(preds.classes) == 2:
        frac, mean = calibration_curve(preds.y_true, preds.proba[:, 1],
                                       n_bins=_CALIBRATION_BINS)
        calibration = Calibration(mean_predicted=[float(v) for v in mean],
                                  fraction_positive=[float(v) for v in frac])
    return calibration, [[int(v) for v in row] for row in matrix]


def _explain(loaded: LoadedModel, prepared: Prepared, task: Task, *, sample: int,
             seed: int) -> Explanation | None:
    if sample == 0:
        return None
    from sklearn.metrics import accuracy_score, mean_absolute_error

    n = len(prepared.features)
    rows = (np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
            if sample < n else np.arange(n))
    x = prepared.features.iloc[rows]
    y = prepared.y.iloc[rows].to_numpy()

    def score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        if task == "classification":
            return float(accuracy_score(y_true, y_pred))
        return -float(mean_absolute_error(y_true, y_pred))

    return explain_model(loaded.model, x, y, score=score, seed=seed)


def _compare(ctx: Context, loaded: LoadedModel, prepared: Prepared, task: Task,
             classes: list[Any] | None, ours: dict[str, MetricValue]) -> Comparison | None:
    """Headline metrics of the version holding ``production``, if that is another version."""
    name = loaded.version.name
    try:
        with ctx.db.read() as conn:
            other = resolve(conn, ModelRef(name=name, alias=COMPARED_ALIAS))
    except NotFound:
        return None
    if other.version == loaded.version.version:
        return None
    keys = [k for k in HEADLINE_METRICS[task] if k in ours]
    try:
        theirs_model = load(ctx, other.uri)
        theirs_data = prepare(theirs_model, prepared.frame,
                              label=str(prepared.y.name), sensitive_features=[])
        theirs = _metrics(task, predict(theirs_model, theirs_data, task, classes),
                          n_bootstrap=0, seed=0)
    except (InvalidInput, NotFound) as exc:
        return Comparison(alias=COMPARED_ALIAS, version=other.version, metrics={}, delta={},
                          error=str(exc))
    values = {k: theirs[k].value if k in theirs else None for k in keys}
    delta = {k: (None if ours[k].value is None or values[k] is None
                 else float(ours[k].value - values[k])) for k in keys}  # type: ignore[operator]
    return Comparison(alias=COMPARED_ALIAS, version=other.version, metrics=values, delta=delta)


# -- recording ------------------------------------------------------------------------


def _version_row(conn: Connection, name: str, version: int) -> Any:
    return conn.execute(select(model_versions.c.id, registered_models.c.id.label("model_id"),
                               registered_models.c.risk_tier)
                        .join(registered_models,
                              registered_models.c.id == model_versions.c.model_id)
                        .where(registered_models.c.name == name,
                               model_versions.c.version == version)).one()


def _summary(report: ValidationReport) -> dict[str, Any]:
    """The record minus what the row holds in its own columns."""
    body: dict[str, Any] = json.loads(report.model_dump_json(
        exclude={"id", "report_sha256", "html_sha256", "created_at", "created_by"}))
    return body


def _from_row(row: Any) -> ValidationReport:
    return ValidationReport.model_validate({
        **row.summary, "id": row.id, "report_sha256": row.report_sha256,
        "html_sha256": row.html_sha256, "created_at": row.created_at,
        "created_by": row.created_by})


def _check_count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{field} must be a non-negative integer, got {value!r}",
                           field=field)
    return value


def validate(
    ctx: Context, uri: str, *, data: pd.DataFrame | str | os.PathLike[str] | DatasetVersion,
    label: str, sensitive_features: Sequence[str] = (), task: str | None = None,
    n_bootstrap: int = 200, explain_sample: int = 1000, seed: int = 0,
    allow_pickle: bool = False, progress: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Validate the version ``uri`` names on labelled ``data``; store and audit the report.

    ``progress`` is called with the name of each stage as it starts (for a CLI spinner).

    Raises:
        InvalidInput: naming the field — an unknown ``label`` or ``sensitive_features``
            column, a label with one class, empty ``data`` or data without the model's
            input columns, a bad ``task``, a negative ``n_bootstrap`` or ``explain_sample``.
        NotFound: the model version, or the data file, does not exist.
    """
    n_bootstrap = _check_count(n_bootstrap, "n_bootstrap")
    explain_sample = _check_count(explain_sample, "explain_sample")
    if isinstance(sensitive_features, str):
        sensitive_features = [sensitive_features]
    sensitive = [str(s) for s in sensitive_features]
    parse_model_uri(uri)
    step = progress or (lambda stage: None)
    step("reading data")
    frame, data_hash, dataset = _frame(ctx, data)
    step("loading model")
    loaded = load(ctx, uri, allow_pickle=allow_pickle)
    prepared = prepare(loaded, frame, label=label, sensitive_features=sensitive)
    the_task = infer_task(loaded, prepared.y, task)
    step("predicting")
    preds = predict(loaded, prepared, the_task)
    step(f"metrics with {n_bootstrap} bootstrap resamples")
    metrics = _metrics(the_task, preds, n_bootstrap=n_bootstrap, seed=seed)
    calibration, confusion = _curves(preds)
    binary = preds.classes is not None and len(preds.classes) == 2
    step("fairness")
    fairness = {f.feature: f for f in fairness_report(
        preds.y_true, preds.y_pred, prepared.sensitive, task=the_task, binary=binary)}
    step("explanations")
    explanation = _explain(loaded, prepared, the_task, seed=seed,
                           sample=min(explain_sample, len(frame)))
    step(f"comparison with {COMPARED_ALIAS}")
    comparison = _compare(ctx, loaded, prepared, the_task, preds.classes, metrics)
    step("held-out check")
    with ctx.db.read() as conn:
        held = check_held_out(ctx, conn, run_id=loaded.version.run_id, data=prepared.features,
                              data_hash=data_hash, features=prepared.feature_names)

    draft = ValidationReport(
        id=uuid.uuid4().hex, model=loaded.version.name, version=loaded.version.version,
        task=the_task, label=label, rows=len(frame), data_hash=data_hash,
        dataset=dataset.uri if dataset else None, sensitive_features=sensitive,
        classes=[str(c) for c in preds.classes] if preds.classes is not None else None,
        metrics=metrics, calibration=calibration, confusion_matrix=confusion,
        fairness=fairness, explanations=explanation, comparison=comparison,
        held_out=held.held_out, held_out_reason=held.reason, held_out_check=held,
        n_bootstrap=n_bootstrap, seed=seed, report_sha256="", html_sha256="",
        created_at=utcnow(), created_by=ctx.actor)
    step("writing report")
    from .validation_page import render_report

    page = render_report(draft)
    html_ref = ctx.artifacts.put_bytes(page.encode("utf-8"))
    with_html = draft.model_copy(update={"html_sha256": html_ref.sha256})
    json_ref = ctx.artifacts.put_bytes(
        with_html.model_dump_json(exclude={"report_sha256"}).encode("utf-8"))
    report = with_html.model_copy(update={"report_sha256": json_ref.sha256})
    report._page = page

    def work(conn: Connection) -> None:
        row = _version_row(conn, report.model, report.version)
        conn.execute(insert(validation_reports).values(
            id=report.id, model_version_id=row.id, task=report.task, label=report.label,
            data_hash=data_hash, dataset_version_id=dataset.id if dataset else None,
            rows=report.rows, sensitive_features=sensitive, summary=_summary(report),
            held_out=report.held_out, has_explanations=explanation is not None,
            report_sha256=report.report_sha256, html_sha256=report.html_sha256,
            created_at=report.created_at, created_by=ctx.actor))
        review = next_review(row.risk_tier, datetime.now(UTC).date())
        conn.execute(update(registered_models).where(registered_models.c.id == row.model_id)
                     .values(validation_status="validated", next_review_date=review))
        node = Node(type="validation_report", id=report.id)
        add_edge(conn, child=node, parent=Node(type="model_version",
                                               id=f"{report.model}/{report.version}"),
                 relation="validates", actor=ctx.actor)
        if dataset is not None:
            add_edge(conn, child=node, parent=Node(type="dataset_version", id=str(dataset.id)),
                     relation="validated_on", actor=ctx.actor,
                     payload={"dataset": dataset.name, "version": dataset.version,
                              "content_hash": dataset.content_hash})
        audit.append(ctx.db, conn, actor=ctx.actor, action="model_version.validated",
                     entity_type="model_version", entity_id=f"{report.model}/{report.version}",
                     payload={
                         "report_id": report.id, "report_sha256": report.report_sha256,
                         "html_sha256": report.html_sha256, "task": report.task,
                         "data_hash": data_hash, "dataset": report.dataset,
                         "rows": report.rows, "held_out": report.held_out,
                         "metrics": {k: v.value for k, v in metrics.items()},
                         "next_review_date": review.isoformat()})

    ctx.db.write_retrying(work)
    return report


# -- reading --------------------------------------------------------------------------


def latest_validation(conn: Connection, model_version_id: int) -> ValidationReport | None:
    """The newest report of a version (by ``mw_model_versions.id``), without its page."""
    row = conn.execute(select(validation_reports)
                       .where(validation_reports.c.model_version_id == model_version_id)
                       .order_by(validation_reports.c.created_at.desc(),
                                 validation_reports.c.id.desc()).limit(1)).first()
    return _from_row(row) if row is not None else None


def get_validation_report(ctx: Context, report_id: str) -> ValidationReport:
    """A report with its HTML page (verified against its sha256)."""
    with ctx.db.read() as conn:
        row = conn.execute(select(validation_reports)
                           .where(validation_reports.c.id == str(report_id))).first()
    if row is None:
        raise NotFound(f"no validation report with id {report_id!r}")
    report = _from_row(row)
    report._page = ctx.artifacts.get_bytes(report.html_sha256).decode("utf-8")
    return report


def list_validation_reports(ctx: Context, uri: str) -> list[ValidationReport]:
    """Every report of the version ``uri`` names, newest first (without their pages)."""
    ref = parse_model_uri(uri)
    with ctx.db.read() as conn:
        version = resolve(conn, ref)
        row = _version_row(conn, version.name, version.version)
        rows = conn.execute(select(validation_reports)
                            .where(validation_reports.c.model_version_id == row.id)
                            .order_by(validation_reports.c.created_at.desc(),
                                      validation_reports.c.id.desc())).all()
    return [_from_row(r) for r in rows]
