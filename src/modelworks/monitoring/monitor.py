"""Monitor a model version: its served predictions (or given data) against its reference.

    monitor = ws.monitor("models:/claims-triage@production", reference="training")
    result = monitor.run(window="1d")            # or since=..., until=..., or data=df
    result.drift.dataset_drift, result.drift.column("claim_amount").drifted

A run over the prediction log reads the window's predictions by the version the URI names
now (an alias is resolved at run time), in time order, and compares their logged inputs and
outputs (as the ``prediction`` column) with the version's reference profile. Each run is
stored — one queryable row (``mw_monitor_runs``: window, rows, drift share, the drifted
columns) and the full result as JSON in the artifact store — and audited.

This is the first increment of monitoring: drift. Data quality, performance against
feedback labels, alerts and retraining build on these runs.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput
from ..registry.loading import load
from ..registry.models import resolve, version_id
from ..registry.uri import parse_model_uri
from ..serving.prediction_reader import as_utc
from ..store.tables import monitor_runs, utcnow
from .drift.detectors import DriftDetector, DriftResult
from .drift.profile import ReferenceProfile, profile_window
from .references import PREDICTION, ReferenceRecord, current_frame, reference_for

__all__ = ["SPAN", "Monitor", "MonitorResult", "list_monitor_runs", "parse_window"]

SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(window: str) -> timedelta:
    match = SPAN.match(window.strip()) if isinstance(window, str) else None
    if match is None:
        raise InvalidInput(f"window must look like 30m, 12h, 1d or 2w, got {window!r}",
                           field="window")
    span = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if span <= timedelta(0):
        raise InvalidInput("window must be positive", field="window")
    return span


class MonitorResult(BaseModel):
    """One monitor run."""

    model_config = ConfigDict(frozen=True)

    id: str
    model: str
    version: int
    reference: str
    source: str  # prediction-log | data
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    drift: DriftResult
    # The window's counts on the reference's cells: what the report plots against it.
    window_profile: ReferenceProfile | None = None
    result_sha256: str
    created_at: datetime
    created_by: str

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.drift.columns if c.drifted]


class Monitor:
    """Drift monitoring of one model URI against one of its reference profiles."""

    def __init__(self, ctx: Context, uri: str, *, reference: Any = "training",
                 journal_dir: str | Path | None = None,
                 thresholds: dict[str, float] | None = None,
                 methods: dict[str, str] | None = None, drift_share: float = 0.5) -> None:
        self.ctx = ctx
        self.uri = str(parse_model_uri(uri))
        self.reference = reference
        self.journal_dir = journal_dir
        self.thresholds = dict(thresholds or {})
        self.methods = dict(methods or {})
        self.drift_share = drift_share
        with ctx.db.read() as conn:
            resolve(conn, parse_model_uri(self.uri))  # NotFound now, not at the first run

    def run(self, *, data: pd.DataFrame | None = None, since: datetime | str | None = None,
            until: datetime | str | None = None, window: str | None = None) -> MonitorResult:
        """Compare ``data``, or the prediction log's window, with the reference; stored."""
        if data is not None and (since or until or window):
            raise InvalidInput("give data, or a window of the prediction log, not both",
                               field="data")
        if window is not None and (since or until):
            raise InvalidInput("give window, or since/until, not both", field="window")
        loaded = load(self.ctx, self.uri)
        record, profile = reference_for(self.ctx, loaded.version.uri, self.reference)
        start = end = None
        if data is not None:
            if not isinstance(data, pd.DataFrame):
                raise InvalidInput("data must be a pandas DataFrame", field="data")
            if data.empty:
                raise InvalidInput("data has no rows", field="data")
            current = current_frame(loaded, data)
            source = "data"
        else:
            end = as_utc(until, "until") or datetime.now(UTC)
            start = end - parse_window(window) if window else as_utc(since, "since")
            if start is not None and start >= end:
                raise InvalidInput("since must be before until", field="since")
            current = self._logged(loaded.version.name, loaded.version.version, start, end)
            source = "prediction-log"
        detector = DriftDetector(thresholds=self.thresholds, methods=self.methods,
                                 drift_share=self.drift_share).fit(profile)
        window_profile = profile_window(profile, current)
        drift = detector.score(window_profile)
        return self._store(loaded.version.name, loaded.version.version, record, source, start,
                           end, len(current), drift, window_profile)

    def _logged(self, name: str, version: int, start: datetime | None, end: datetime
                ) -> pd.DataFrame:
        from ..serving.prediction_reader import read_predictions

        log = read_predictions(self.ctx, model=name, since=start, until=end,
                               journal_dir=self.journal_dir)
        log = log[log["version"].astype(int) == version] if len(log) else log
        if log.empty:
            span = f"between {start.isoformat() if start else 'the start'} and " \
                f"{end.isoformat()}"
            raise InvalidInput(f"no predictions by {name}/{version} {span}: nothing to "
                               "monitor in this window", field="window")
        inputs = pd.DataFrame(list(log["inputs"]))
        inputs[PREDICTION] = list(log["output"])
        return inputs

    def _store(self, name: str, version: int, reference: ReferenceRecord, source: str,
               start: datetime | None, end: datetime | None, rows: int,
               drift: DriftResult, window_profile: ReferenceProfile | None = None
               ) -> MonitorResult:
        run_id, now = uuid.uuid4().hex, utcnow()
        draft = MonitorResult(id=run_id, model=name, version=version,
                              reference=reference.source, source=source, window_start=start,
                              window_end=end, rows=rows, drift=drift,
                              window_profile=window_profile, result_sha256="",
                              created_at=now, created_by=self.ctx.actor)
        ref = self.ctx.artifacts.put_bytes(draft.model_dump_json().encode("utf-8"))
        result = draft.model_copy(update={"result_sha256": ref.sha256})
        drifted = result.drifted_columns
        with self.ctx.db.write() as conn:
            conn.execute(insert(monitor_runs).values(
                id=run_id, model_version_id=version_id(conn, name, version),
                reference_id=reference.id, window_start=start, window_end=end, source=source,
                rows=rows, drift_share=drift.share, dataset_drift=drift.dataset_drift,
                summary={"drifted_columns": drifted, "scored_columns": drift.scored_columns,
                         "missing_columns": drift.missing_columns,
                         "reference": reference.source},
                result_sha256=ref.sha256, created_at=now, created_by=self.ctx.actor))
            audit.append(self.ctx.db, conn, actor=self.ctx.actor,
                         action="model_version.monitored", entity_type="model_version",
                         entity_id=f"{name}/{version}", payload={
                             "run": run_id, "source": source, "rows": rows,
                             "reference": reference.source, "drift_share": drift.share,
                             "dataset_drift": drift.dataset_drift,
                             "drifted_columns": drifted[:50]})
        return result


def list_monitor_runs(ctx: Context, uri: str, *, limit: int = 100) -> list[MonitorResult]:
    """Stored runs of the version ``uri`` names, newest first."""
    with ctx.db.read() as conn:
        version = resolve(conn, parse_model_uri(uri))
        vid = version_id(conn, version.name, version.version)
        shas = conn.execute(select(monitor_runs.c.result_sha256).where(
            monitor_runs.c.model_version_id == vid).order_by(
            monitor_runs.c.created_at.desc()).limit(limit)).scalars().all()
    return [MonitorResult.model_validate_json(ctx.artifacts.get_bytes(s)) for s in shas]
