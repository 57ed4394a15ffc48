"""The Workspace: the one object a user needs.

``mw.Workspace()`` opens ``./.modelworks`` (SQLite + a local artifact folder);
``mw.Workspace("postgresql://...", artifacts="s3://...")`` opens a team store. It builds the
stores once and hands them, with the acting identity, to the service functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from . import audit
from .config import Settings, WorkspaceLocation, resolve_location
from .context import Context
from .errors import InvalidInput, NotFound
from .lineage import LineageGraph, Node, walk
from .lineage import trace as trace_lineage
from .records import DatasetRecord, DatasetVersion, Experiment, MetricPoint, RunRecord
from .store.artifacts import ArtifactStore, safe_relpath
from .store.database import Database
from .store.tables import role_bindings, utcnow, workspace_info
from .tracking import experiments as _experiments
from .tracking import runs as _runs
from .tracking.active_run import ActiveRun
from .tracking.metrics import MetricWriter, metric_history
from .tracking.search import search_runs

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import pandas as pd

    from .automl import AutoMLResult
    from .governance.approvals import Decision
    from .governance.evaluation import PolicyEvaluation
    from .governance.pii import PiiFinding, PiiScan
    from .governance.policies import Policy
    from .governance.roles import RoleBinding
    from .governance.validation import ValidationReport
    from .monitoring.alerts import Alert, Delivery, MonitoringPlan
    from .monitoring.canary_analysis import CanaryAnalysis
    from .monitoring.monitor import Monitor, MonitorResult
    from .monitoring.report import MonitorReport
    from .monitoring.retraining import RetrainResult
    from .monitoring.schedules import Schedule
    from .monitoring.training_specs import TrainingSpec
    from .monitoring.worker import WorkerInfo
    from .pipelines import PipelineRun, StepRun
    from .pipelines.executors import Executor
    from .registry import AliasMove, LoadedModel, ModelVersion, RegisteredModel
    from .registry.records import ModelTrace
    from .serving.canary import CanaryRules
    from .serving.deployments import Deployment, DeploymentEvent, Route
    from .serving.explain_request import RequestExplanation
    from .serving.prediction_trace import PredictionTrace
    from .serving.records import PredictionRecord

__all__ = ["Workspace"]

DEFAULT_EXPERIMENT = "Default"


def _name_version(uri: str) -> tuple[str, int]:
    from .registry.uri import parse_model_uri

    ref = parse_model_uri(uri)
    assert ref.version is not None
    return ref.name, ref.version


def _frame_of(ctx: Context, data: Any) -> Any:
    """A DataFrame from what ``validate`` accepts (frame, logged version, CSV/Parquet path)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, DatasetVersion):
        return _data().load_dataset(ctx, data)
    path = Path(data)
    return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)


def _registry() -> Any:
    from .registry import models

    return models


def _data() -> Any:
    """The datasets service, imported on first use: pandas and pyarrow cost ~0.5 s to load."""
    from .data import datasets

    return datasets


def _deployments() -> ModuleType:
    """``serving.deployments``, with the listeners of later services registered (monitoring
    closes a retrain run when its canary is promoted or leaves the endpoint)."""
    from .monitoring import retrain_runs  # noqa: F401  (registers its traffic listener)
    from .serving import deployments

    return deployments


class Workspace:
    """A metadata database plus an artifact store, acting as one identity."""

    def __init__(
        self,
        location: str | os.PathLike[str] | None = None,
        *,
        artifacts: str | os.PathLike[str] | None = None,
        user: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.location: WorkspaceLocation = resolve_location(
            location, artifacts=artifacts, settings=self.settings
        )
        self.actor = self.settings.actor(user)
        self.db = Database(self.location.db_url)
        # An embedded SQLite workspace migrates itself; a team store only when empty.
        self.db.ensure_schema(auto_upgrade=self.db.dialect == "sqlite")
        self.artifacts = ArtifactStore(self.location.artifacts, storage_options=storage_options)
        self.ctx = Context(db=self.db, artifacts=self.artifacts, actor=self.actor)
        self._writer = MetricWriter(self.db)
        self._register_creator()

    def _register_creator(self) -> None:
        """The first actor to open a workspace creates it and becomes its admin (audited)."""
        with self.db.read() as conn:
            if conn.execute(select(workspace_info.c.id)).first() is not None:
                return
        try:
            with self.db.write() as conn:
                if conn.execute(select(workspace_info.c.id)).first() is not None:
                    return
                now = utcnow()
                conn.execute(insert(workspace_info).values(id=1, created_at=now,
                                                           created_by=self.actor))
                conn.execute(insert(role_bindings).values(
                    principal=self.actor, role="admin", granted_by=self.actor, granted_at=now))
                audit.append(self.db, conn, actor=self.actor, action="workspace.created",
                             entity_type="workspace", entity_id=1,
                             payload={"admin": self.actor})
        except SAIntegrityError:
            pass  # another process created it at the same moment: it is its admin

    def __repr__(self) -> str:
        return f"Workspace({self.location!r}, user={self.actor!r})"

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write every queued metric point now."""
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
        self.db.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def admins(self) -> list[str]:
        with self.db.read() as conn:
            return list(conn.execute(select(role_bindings.c.principal)
                                     .where(role_bindings.c.role == "admin")).scalars())

    # -- tracking -----------------------------------------------------------------------

    def start_run(
        self,
        experiment: str | None = None,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        parent: ActiveRun | RunRecord | str | None = None,
    ) -> ActiveRun:
        """Start a run; use it as a context manager so it ends FINISHED or FAILED."""
        parent_id = parent if isinstance(parent, str) or parent is None else parent.id
        if experiment is None:
            if isinstance(parent, ActiveRun | RunRecord):
                experiment = parent.experiment
            else:
                experiment = DEFAULT_EXPERIMENT
        run_id = _runs.create_run(self.ctx, experiment=experiment, name=name, params_=params,
                                  tags_=tags, parent_id=parent_id)
        return ActiveRun(self.ctx, self._writer, run_id, experiment)

    def get_run(self, run_id: str) -> RunRecord:
        with self.db.read() as conn:
            return _runs.get_run(conn, run_id)

    def metric_history(self, run_id: str, key: str, *, max_points: int | None = None
                       ) -> list[MetricPoint]:
        self._writer.flush()
        with self.db.read() as conn:
            _runs.get_run(conn, run_id)  # NotFound for an unknown run
            return metric_history(conn, run_id, key, max_points=max_points)

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int = 1000,
        offset: int = 0,
        parent: ActiveRun | RunRecord | str | None = None,
    ) -> list[RunRecord]:
        """Runs matching ``filter`` (e.g. ``"metrics.auc > 0.8 and params.model = 'rf'"``)."""
        parent_id = parent if isinstance(parent, str) or parent is None else parent.id
        with self.db.read() as conn:
            return search_runs(conn, experiment=experiment, filter=filter, order_by=order_by,
                               limit=limit, offset=offset, parent_id=parent_id)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of a run's artifact, verified against their sha256."""
        rec = self.get_run(run_id)
        wanted = safe_relpath(path, field="path")
        for entry in rec.artifacts:
            if entry.path == wanted:
                return self.artifacts.get_bytes(entry.sha256)
        names = ", ".join(a.path for a in rec.artifacts[:10]) or "none"
        raise NotFound(f"run {run_id} has no artifact {wanted!r} (it has: {names})")

    def download_artifacts(self, run_id: str, dest: str | os.PathLike[str],
                           *, path: str | None = None) -> list[Path]:
        """Copy a run's artifacts (all, or those under ``path``) into ``dest``, verified."""
        rec = self.get_run(run_id)
        prefix = safe_relpath(path, field="path") if path else None
        picked = [a for a in rec.artifacts
                  if prefix is None or a.path == prefix or a.path.startswith(prefix + "/")]
        if prefix is not None and not picked:
            raise NotFound(f"run {run_id} has no artifact under {prefix!r}")
        root = Path(dest)
        return [self.artifacts.get_file(a.sha256, root / a.path) for a in picked]

    def list_experiments(self) -> list[Experiment]:
        with self.db.read() as conn:
            return _experiments.list_experiments(conn)

    def get_experiment(self, name: str) -> Experiment:
        with self.db.read() as conn:
            return _experiments.get_experiment(conn, name)

    # -- datasets -----------------------------------------------------------------------

    def log_dataset(self, data: pd.DataFrame | str | os.PathLike[str], *, name: str,
                    source: str | None = None) -> DatasetVersion:
        """Snapshot a DataFrame or CSV/Parquet file as a content-addressed dataset version."""
        return _data().log_dataset(self.ctx, data, name=name, source=source)

    def get_dataset(self, name: str, version: int | None = None) -> DatasetVersion:
        """A dataset version (the latest when ``version`` is None)."""
        with self.db.read() as conn:
            return _data().get_dataset_version(conn, name, version)

    def list_datasets(self) -> list[DatasetRecord]:
        with self.db.read() as conn:
            return _data().list_datasets(conn)

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        with self.db.read() as conn:
            return _data().list_dataset_versions(conn, name)

    def load_dataset(self, name: str | DatasetVersion, version: int | None = None
                     ) -> pd.DataFrame:
        dv = name if isinstance(name, DatasetVersion) else self.get_dataset(name, version)
        return _data().load_dataset(self.ctx, dv)

    # -- data protection (needs the ``pii`` extra for scans) ------------------------------

    def scan_dataset(self, name: str, version: int | None = None, *, sample_rows: int = 10_000,
                     seed: int = 0) -> PiiScan:
        """Find direct identifiers (emails, phones, national ids, cards, ...); recorded."""
        from .governance.pii import scan_dataset

        return scan_dataset(self.ctx, name, version, sample_rows=sample_rows, seed=seed)

    def pii_findings(self, name: str, version: int | None = None) -> list[PiiFinding]:
        """The findings of the last scan of a dataset version."""
        from .governance.pii import pii_findings

        with self.db.read() as conn:
            return pii_findings(conn, name, version)

    def pseudonymize_dataset(self, name: str, version: int | None = None, *,
                             columns: Sequence[str] | str, purpose: str = "analytics",
                             key_id: str | None = None) -> DatasetVersion:
        """A new version with ``columns`` replaced by keyed HMAC tokens (key from settings)."""
        from .governance.pseudonyms import pseudonymize

        return pseudonymize(self.ctx, name, version, columns=columns, purpose=purpose,
                            key_id=key_id, keys=self.settings)

    def tag_columns(self, name: str, columns: Sequence[str] | str, tag: str = "sensitive"
                    ) -> dict[str, list[str]]:
        """Tag a dataset's columns (every version); returns ``{column: [tags]}``."""
        from .governance.column_tags import tag_columns

        return tag_columns(self.ctx, name, columns, tag)

    def untag_columns(self, name: str, columns: Sequence[str] | str, tag: str = "sensitive"
                      ) -> dict[str, list[str]]:
        from .governance.column_tags import untag_columns

        return untag_columns(self.ctx, name, columns, tag)

    def column_tags(self, name: str) -> dict[str, list[str]]:
        from .governance.column_tags import column_tags

        with self.db.read() as conn:
            return column_tags(conn, name)

    # -- model registry -----------------------------------------------------------------

    def register_model(
        self,
        name: str,
        *,
        model: Any,
        run: ActiveRun | RunRecord | str | None = None,
        input_example: Any = None,
        signature: Any = None,
        description: str | None = None,
        risk_tier: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_pickle: bool = False,
    ) -> ModelVersion:
        """Store ``model`` (skops for scikit-learn; pickle only if allowed) as a new version."""
        from .registry.loading import register

        run_id = run if isinstance(run, str) or run is None else run.id
        version = register(self.ctx, name, model=model, run_id=run_id,
                           input_example=input_example, signature=signature,
                           description=description, risk_tier=risk_tier, tags=tags,
                           allow_pickle=allow_pickle)
        if run_id is not None and version.signature and not allow_pickle:
            self._store_reference(version.uri, "training", None)
        return version

    def _store_reference(self, uri: str, source: str, data: Any, *,
                         label: str | None = None) -> None:
        """Profile a version's training or validation data (and ``label``'s values, for a
        regression's label drift) for monitoring. The version is already recorded: a
        failure here is reported, not raised (monitoring can build the reference later)."""
        import logging

        from .monitoring.references import store_reference, training_frame

        try:
            if source == "training":
                data = training_frame(self.ctx, self.get_model_version(
                    *_name_version(uri)))
                if data is None:
                    return
            store_reference(self.ctx, uri, data, source=source, label=label)
        except Exception as exc:
            logging.getLogger("modelworks").warning(
                "%s: the %s reference profile was not stored (%s: %s)", uri, source,
                type(exc).__name__, exc)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            return _registry().get_version(conn, name, version)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return _registry().get_model(conn, name)

    def resolve_model(self, uri: str) -> ModelVersion:
        """The version ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` names."""
        from .registry.uri import parse_model_uri

        with self.db.read() as conn:
            return _registry().resolve(conn, parse_model_uri(uri))

    def list_models(self, *, prefix: str | None = None, tag: str | None = None,
                    limit: int = 100, offset: int = 0) -> list[RegisteredModel]:
        with self.db.read() as conn:
            return _registry().list_models(conn, prefix=prefix, tag=tag, limit=limit,
                                           offset=offset)

    def model_versions(self, name: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            return _registry().list_versions(conn, name)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None,
                  force: bool = False) -> ModelVersion:
        """Point ``alias`` at ``version`` (audited, with history)."""
        from .governance import gate  # noqa: F401  (registers the promotion gate)
        from .registry import aliases

        return aliases.set_alias(self.ctx, name, alias, version, reason=reason, force=force)

    def delete_alias(self, name: str, alias: str, *, reason: str | None = None,
                     force: bool = False) -> None:
        from .governance import gate  # noqa: F401  (registers the promotion gate)
        from .registry import aliases

        aliases.delete_alias(self.ctx, name, alias, reason=reason, force=force)

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        """Which version held the alias when, oldest first."""
        from .registry import aliases

        with self.db.read() as conn:
            return aliases.alias_history_of(conn, name, alias)

    def archive_model_version(self, name: str, version: int, *, reason: str | None = None
                              ) -> None:
        _registry().archive_version(self.ctx, name, version, reason=reason)

    def load_model(self, uri: str, *, allow_pickle: bool = False) -> LoadedModel:
        """Load a version, sha256-verified first; ``predict`` checks input against the signature."""
        from .registry.loading import load

        return load(self.ctx, uri, allow_pickle=allow_pickle)

    def train_many(self, df: pd.DataFrame, *, group_by: str,
                   trainer: Callable[[Any, pd.DataFrame], Any], name_prefix: str,
                   executor: str | Executor = "local", workers: int | None = None,
                   input_example_rows: int = 5, register: bool = True) -> pd.DataFrame:
        """Fit ``trainer(group_value, group_df)`` once per ``group_by`` value, on ``executor``
        (``local``, ``processes``, ``ray``), and register each model as a version of
        ``<name_prefix>-<group>`` with its signature; all under one tracked run.

        Returns a frame with one row per group: ``group``, ``model``, ``version``, ``status``
        (``registered``, ``trained`` when ``register=False``, or ``failed``), ``error`` and
        ``seconds`` (the trainer's time). A failing group never stops the others.
        """
        from .pipelines.many import train_many

        return train_many(self, df, group_by=group_by, trainer=trainer,
                          name_prefix=name_prefix, executor=executor, workers=workers,
                          input_example_rows=input_example_rows, register=register)

    def trace(self, uri: str) -> ModelTrace:
        """Where a version came from: run, datasets, code, environment, aliases, audit."""
        from .registry import aliases
        from .registry.records import ModelTrace

        version = self.resolve_model(uri)
        entity = f"{version.name}/{version.version}"
        with self.db.read() as conn:
            graph = trace_lineage(conn, Node(type="model_version", id=entity))
            moves = aliases.moves_touching(conn, version.name, version.version)
            events = audit.list_events(conn, entity_type="model_version", entity_id=entity)
        return ModelTrace(uri=uri, version=version, graph=graph, alias_moves=moves,
                          audit=list(reversed(events)))

    # -- prediction log (written by ``modelworks serve``; see docs/prediction-log.md) ----

    @property
    def prediction_journal_dir(self) -> Path | None:
        """The local journal this workspace's servers write (None: not configured here)."""
        from .serving.prediction_log import default_journal_dir

        return default_journal_dir(self.location, self.settings, required=False)

    def predictions(self, model: str | None = None, *, since: datetime | str | None = None,
                    until: datetime | str | None = None, include_shadow: bool = False,
                    with_feedback: bool = False, limit: int | None = None) -> pd.DataFrame:
        """Logged predictions, oldest first (``since`` inclusive, ``until`` exclusive, UTC).

        Includes what is still in this machine's journal; ``with_feedback`` adds ``label``.
        """
        from .serving.prediction_log import read_predictions

        return read_predictions(self.ctx, model=model, since=since, until=until,
                                include_shadow=include_shadow, with_feedback=with_feedback,
                                limit=limit, journal_dir=self.prediction_journal_dir)

    def get_prediction(self, prediction_id: str) -> PredictionRecord:
        """One logged prediction by its id ``REQUEST_ID:ROW``."""
        from .serving.prediction_log import get_prediction

        return get_prediction(self.ctx, prediction_id, journal_dir=self.prediction_journal_dir)

    def record_feedback(self, items: Sequence[Mapping[str, Any]]) -> int:
        """Ground-truth labels ``[{"prediction_id": ..., "label": ...}]`` (audited per batch)."""
        from .serving.feedback import record_feedback

        return record_feedback(self.ctx, items)

    def explain_prediction(self, request_id: str, *, top: int = 10) -> RequestExplanation:
        """Reproduce a served request's explanation (or one row's: ``REQUEST_ID:ROW``)."""
        from .serving.explain_request import explain_request

        return explain_request(self.ctx, request_id, journal_dir=self.prediction_journal_dir,
                               top=top)

    def trace_prediction(self, prediction_id: str) -> PredictionTrace:
        """A prediction, its model version, run, datasets, code and environment."""
        from .serving.feedback import feedback_for
        from .serving.prediction_trace import extend_trace

        record = self.get_prediction(prediction_id)
        base = self.trace(f"models:/{record.model}/{record.version}")
        label = feedback_for(self.ctx, [record.prediction_id]).get(record.prediction_id)
        return extend_trace(base, record, label=label)

    # -- governance: policies, approvals, roles, inventory, model cards ----------------

    def apply_policy(self, source: str | os.PathLike[str]) -> Policy:
        """Apply a policy file (or ``builtin:high-risk``...); versioned and audited; admins."""
        from .governance.policies import apply_policy

        return apply_policy(self.ctx, source if isinstance(source, str) else Path(source))

    def policies(self) -> list[Policy]:
        """The current version of every policy."""
        from .governance.policies import current_policies

        with self.db.read() as conn:
            return [p for _, p in current_policies(conn)]

    def get_policy(self, name: str, version: int | None = None) -> Policy:
        from .governance.policies import get_policy

        with self.db.read() as conn:
            return get_policy(conn, name, version)

    def evaluate_policy(self, uri: str) -> PolicyEvaluation:
        """Evaluate the current policies on a version: per-rule outcomes; stored, audited."""
        from .governance.evaluation import evaluate

        return evaluate(self.ctx, uri)

    def policy_evaluations(self, uri: str) -> list[PolicyEvaluation]:
        from .governance.evaluation import evaluations_of

        version = self.resolve_model(uri)
        with self.db.read() as conn:
            return evaluations_of(conn, version.name, version.version)

    def approve(self, uri: str, *, reason: str) -> Decision:
        """Approve a version as a validator (never one you trained or registered)."""
        from .governance.approvals import decide

        return decide(self.ctx, uri, "approved", reason=reason)

    def reject(self, uri: str, *, reason: str) -> Decision:
        """Reject a version: promotion is blocked until a new approval."""
        from .governance.approvals import decide

        return decide(self.ctx, uri, "rejected", reason=reason)

    def decisions(self, uri: str) -> list[Decision]:
        from .governance.approvals import decisions_of

        version = self.resolve_model(uri)
        with self.db.read() as conn:
            return decisions_of(conn, version.name, version.version)

    def grant_role(self, user: str, role: str) -> RoleBinding:
        from .governance.roles import grant_role

        return grant_role(self.ctx, user, role)

    def revoke_role(self, user: str, role: str) -> None:
        from .governance.roles import revoke_role

        revoke_role(self.ctx, user, role)

    def roles(self, user: str | None = None) -> list[RoleBinding]:
        from .governance.roles import list_roles

        with self.db.read() as conn:
            return list_roles(conn, user)

    def update_model(self, name: str, *, description: str | None = None,
                     owner: str | None = None, risk_tier: str | None = None,
                     business_purpose: str | None = None, lifecycle_status: str | None = None,
                     vendor: bool | None = None) -> RegisteredModel:
        """Change a model's inventory fields (audited)."""
        from .governance.inventory import update_model

        update_model(self.ctx, name, description=description, owner=owner,
                     risk_tier=risk_tier, business_purpose=business_purpose,
                     lifecycle_status=lifecycle_status, vendor=vendor)
        return self.get_model(name)

    def inventory(self) -> list[dict[str, Any]]:
        """Every version of every model (archived included) with its governance state."""
        from .governance.inventory import inventory_rows

        with self.db.read() as conn:
            return inventory_rows(conn)

    def update_model_card(self, name: str, version: int | None = None, **fields: str
                          ) -> dict[str, str]:
        """Write the card fields only a person can (intended_use, limitations, ...)."""
        from .governance.cards import update_model_card

        return update_model_card(self.ctx, name, version, **fields)

    def model_card(self, name: str, version: int, *, format: str = "json"
                   ) -> str | dict[str, Any]:
        """The version's model card from the record: ``json`` (a dict), ``md`` or ``html``."""
        from .governance.cards import build_card, render_card

        if format not in ("json", "md", "html"):
            raise InvalidInput("format must be html, md or json", field="format")
        with self.db.read() as conn:
            card = build_card(conn, name, version)
        return card if format == "json" else render_card(card, format)

    # -- validation reports -------------------------------------------------------------

    def validate(
        self, uri: str, *, data: pd.DataFrame | str | os.PathLike[str] | DatasetVersion,
        label: str, sensitive_features: Sequence[str] = (), task: str | None = None,
        n_bootstrap: int = 200, explain_sample: int = 1000, seed: int = 0,
        allow_pickle: bool = False,
    ) -> ValidationReport:
        """Validate a version on labelled data: metrics with intervals, fairness,
        explanations, a comparison with ``production`` and a held-out check; stored, audited."""
        from .governance.validation import validate

        report = validate(self.ctx, uri, data=data, label=label,
                          sensitive_features=sensitive_features, task=task,
                          n_bootstrap=n_bootstrap, explain_sample=explain_sample, seed=seed,
                          allow_pickle=allow_pickle)
        if not allow_pickle:
            self._store_reference(report.uri, "validation", _frame_of(self.ctx, data),
                                  label=label if report.task == "regression" else None)
        return report

    def validation_reports(self, uri: str) -> list[ValidationReport]:
        """A version's validation reports, newest first."""
        from .governance.validation import list_validation_reports

        return list_validation_reports(self.ctx, uri)

    def get_validation_report(self, report_id: str) -> ValidationReport:
        """A validation report with its HTML page (``report.html()``, ``report.save(path)``)."""
        from .governance.validation import get_validation_report

        return get_validation_report(self.ctx, report_id)

    # -- deployments (endpoints: traffic split, shadows, promote, rollback, disable) ------

    def create_deployment(self, name: str, *, model: str, canary: str | None = None,
                          percent: float = 0, shadows: Sequence[str] = (),
                          reason: str | None = None) -> Deployment:
        """An endpoint serving ``model``, with ``percent`` of traffic to ``canary``."""
        deployments = _deployments()
        return deployments.create_deployment(self.ctx, name, model=model, canary=canary,
                                             percent=percent, shadows=shadows, reason=reason)

    def set_traffic(self, name: str, routes: Mapping[str, float] | Sequence[Route], *,
                    reason: str) -> Deployment:
        """New percentages, e.g. ``{"claims@production": 80, "claims/4": 20}``."""
        deployments = _deployments()
        return deployments.set_traffic(self.ctx, name, routes, reason=reason)

    def set_shadows(self, name: str, shadows: Sequence[str], *, reason: str) -> Deployment:
        deployments = _deployments()
        return deployments.set_shadows(self.ctx, name, shadows, reason=reason)

    def promote_deployment(self, name: str, *, reason: str) -> Deployment:
        """The canary's version becomes the main entry (an alias moves through the gate)."""
        deployments = _deployments()
        return deployments.promote(self.ctx, name, reason=reason)

    def rollback_deployment(self, name: str, *, reason: str, force: bool = False
                            ) -> Deployment:
        """Undo the last traffic change or promotion (moving an alias back if it moved)."""
        deployments = _deployments()
        return deployments.rollback(self.ctx, name, reason=reason, force=force)

    def disable_deployment(self, name: str, *, reason: str, fallback: str | None = None
                           ) -> Deployment:
        """Switch an endpoint off: 503 with ``reason``, or everything to ``fallback``."""
        deployments = _deployments()
        return deployments.disable(self.ctx, name, reason=reason, fallback=fallback)

    def enable_deployment(self, name: str, *, reason: str) -> Deployment:
        deployments = _deployments()
        return deployments.enable(self.ctx, name, reason=reason)

    def get_deployment(self, name: str) -> Deployment:
        from .serving import deployments

        with self.db.read() as conn:
            return deployments.get_deployment(conn, name)

    def deployments(self) -> list[Deployment]:
        from .serving import deployments

        with self.db.read() as conn:
            return deployments.list_deployments(conn)

    def deployment_history(self, name: str) -> list[DeploymentEvent]:
        """Every change of an endpoint, oldest first."""
        from .serving import deployments

        with self.db.read() as conn:
            return deployments.deployment_history(conn, name)

    def set_canary_rules(self, endpoint: str,
                         rules: Mapping[str, Any] | str | os.PathLike[str], *,
                         reason: str | None = None) -> CanaryRules:
        """When a canary of ``endpoint`` fails (a mapping, YAML text or a YAML file; rules
        not given keep their defaults); stored with the deployment, audited."""
        from .serving.canary import set_canary_rules

        return set_canary_rules(self.ctx, endpoint, rules, reason=reason)

    def canary_rules(self, endpoint: str) -> CanaryRules:
        from .serving.canary import canary_rules

        with self.db.read() as conn:
            return canary_rules(conn, endpoint)

    def analyze_canary(self, endpoint: str, *, window: str | None = None,
                       rules: Mapping[str, Any] | str | None = None,
                       rollback: bool = True) -> CanaryAnalysis:
        """Compare the endpoint's canaries and shadows with its main entry over the
        prediction log (since the last traffic change, capped by ``window``); a failed
        canary leaves the traffic when ``rollback``. Stored and audited."""
        from .monitoring.canary_analysis import analyze_canary

        return analyze_canary(self.ctx, endpoint, window=window, rules=rules,
                              rollback=rollback, journal_dir=self.prediction_journal_dir)

    def canary_analyses(self, endpoint: str, *, limit: int = 20) -> list[CanaryAnalysis]:
        """Stored canary analyses of an endpoint, newest first."""
        from .monitoring.canary_analysis import list_canary_analyses

        return list_canary_analyses(self.ctx, endpoint, limit=limit)

    # -- monitoring ---------------------------------------------------------------------

    def monitor(self, uri: str, *, reference: Any = "training",
                thresholds: Mapping[str, float] | None = None,
                methods: Mapping[str, str] | None = None, drift_share: float = 0.5,
                segments: list[str] | str | None = None, segment_top: int = 20,
                missing_jump: float = 0.05, positive_label: Any = None,
                chunk_rows: int = 65_536) -> Monitor:
        """A monitor (drift, data quality, performance; per segment with ``segments``) of a
        version (an alias is resolved at each run) against its ``training`` or
        ``validation`` reference, or a dataset version."""
        from .monitoring.monitor import Monitor

        return Monitor(self.ctx, uri, reference=reference,
                       journal_dir=self.prediction_journal_dir,
                       thresholds=dict(thresholds or {}), methods=dict(methods or {}),
                       drift_share=drift_share, segments=segments, segment_top=segment_top,
                       missing_jump=missing_jump, positive_label=positive_label,
                       chunk_rows=chunk_rows)

    def monitor_runs(self, uri: str, *, limit: int = 100) -> list[MonitorResult]:
        """Stored monitor runs of a version, newest first."""
        from .monitoring.monitor import list_monitor_runs

        return list_monitor_runs(self.ctx, uri, limit=limit)

    def monitor_report(self, uri: str, *, out: str | Path | None = None, runs: int = 30,
                       run_id: str | None = None) -> MonitorReport:
        """The drift report of a version's newest monitor run (or ``run_id``), with the trend
        over its last ``runs`` runs and its alerts; the HTML page is written to ``out``."""
        from .monitoring.report import build_report

        report = build_report(self.ctx, uri, runs=runs, run_id=run_id)
        if out is not None:
            report.save(out)
        return report

    # -- monitoring plans and alerts -----------------------------------------------------

    def set_monitoring_plan(self, model: str, plan: str | os.PathLike[str] | Mapping[str, Any]
                            ) -> MonitoringPlan:
        """Store ``model``'s monitoring plan (YAML text, a YAML file, or a mapping): its
        alert rules, sinks and schedule; the next version unless the text is unchanged."""
        from .monitoring.alerts import set_plan

        source: str | Path | dict[str, Any] = dict(plan) if isinstance(plan, Mapping) else \
            plan if isinstance(plan, str) else Path(plan)
        return set_plan(self.ctx, model, source)

    def monitoring_plan(self, model: str, *, version: int | None = None) -> MonitoringPlan:
        """The model's current (or ``version``) monitoring plan; NotFound when it has none."""
        from .monitoring.alerts import get_plan

        with self.db.read() as conn:
            return get_plan(conn, model, version)

    def alerts(self, model: str | None = None, *, status: str | None = None,
               since: datetime | str | None = None, limit: int | None = 100) -> list[Alert]:
        """Stored alerts (firing and suppressed), newest first; ``since`` is a time or a
        span back from now such as ``1d``."""
        from .monitoring.alerts.store import list_alerts, since_time

        with self.db.read() as conn:
            return list_alerts(conn, model=model, status=status, since=since_time(since),
                               limit=limit)

    def alert(self, alert_id: str) -> Alert:
        from .monitoring.alerts import get_alert

        with self.db.read() as conn:
            return get_alert(conn, alert_id)

    def alert_deliveries(self, alert_id: str) -> list[Delivery]:
        """Where an alert was sent: one row per sink, with attempts and the last error."""
        from .monitoring.alerts import deliveries_of, get_alert

        with self.db.read() as conn:
            get_alert(conn, alert_id)
            return deliveries_of(conn, alert_id)

    # -- retraining, schedules and the worker (see docs/retraining.md) -------------------

    def set_training(self, model: str, *, entrypoint: str, data: str | Mapping[str, Any],
                     label: str | None = None, params: Mapping[str, Any] | None = None,
                     endpoint: str | None = None, canary_weight: float = 0.1,
                     holdout: float = 0.25, sensitive_features: Sequence[str] = ()
                     ) -> TrainingSpec:
        """How ``model`` is retrained: ``entrypoint`` ``module:function`` (checked now) on
        ``data`` (``dataset:NAME`` or ``{"prediction_log": {"window": "7d"}}``); audited."""
        from .monitoring.training_specs import set_training_spec

        return set_training_spec(self.ctx, model, entrypoint=entrypoint, data=data,
                                 label=label, params=params, endpoint=endpoint,
                                 canary_weight=canary_weight, holdout=holdout,
                                 sensitive_features=sensitive_features)

    def training_spec(self, model: str) -> TrainingSpec:
        from .monitoring.training_specs import get_training_spec

        with self.db.read() as conn:
            return get_training_spec(conn, model)

    def retrain(self, uri: str, *, trigger: str = "manual", trigger_id: str | None = None
                ) -> RetrainResult:
        """Retrain, register, validate, evaluate the policy and (if no approval is needed)
        put the candidate on the spec's endpoint as a canary; every step recorded."""
        from .monitoring.retraining import retrain

        return retrain(self.ctx, uri, trigger=trigger, trigger_id=trigger_id,
                       journal_dir=self.prediction_journal_dir)

    def retrain_runs(self, model: str | None = None, *, limit: int = 20) -> list[RetrainResult]:
        """Retrain runs, newest first."""
        from .monitoring.retraining import list_retrain_runs

        with self.db.read() as conn:
            return list_retrain_runs(conn, model, limit=limit)

    def retrain_run(self, run_id: str) -> RetrainResult:
        """One retrain run by id (``NotFound`` naming it when there is none)."""
        from .monitoring.retrain_runs import get_retrain_run

        with self.db.read() as conn:
            return get_retrain_run(conn, run_id)

    def schedule_monitor(self, uri: str, *, every: str | None = None, cron: str | None = None,
                         window: str | None = None, name: str | None = None,
                         reference: str = "training") -> Schedule:
        """Run ``monitor(uri).run(window=...)`` every ``every`` or on a ``cron`` clock (UTC);
        the window defaults to ``every`` (a cron schedule must give it)."""
        from .monitoring.monitor import parse_window
        from .monitoring.schedules import put_schedule

        if window is not None:
            parse_window(window)
        elif cron is not None:
            raise InvalidInput("a cron schedule needs window (the span of the log each run "
                               "reads, e.g. 1d)", field="window")
        if not isinstance(reference, str) or not reference:
            raise InvalidInput("reference must be training, validation or dataset:NAME[:V]",
                               field="reference")
        return put_schedule(self.ctx, kind="monitor", target=uri, every=every, cron=cron,
                            name=name, options={"window": window or every,
                                                "reference": reference})

    def schedule_retrain(self, uri: str, *, every: str | None = None, cron: str | None = None,
                         name: str | None = None) -> Schedule:
        """Retrain ``uri``'s model every ``every`` or on a ``cron`` clock (it needs a training
        spec)."""
        from .monitoring.schedules import put_schedule

        return put_schedule(self.ctx, kind="retrain", target=uri, every=every, cron=cron,
                            name=name)

    def schedules(self) -> list[Schedule]:
        from .monitoring.schedules import list_schedules

        with self.db.read() as conn:
            return list_schedules(conn)

    def unschedule(self, name: str) -> None:
        from .monitoring.schedules import delete_schedule

        delete_schedule(self.ctx, name)

    def workers(self) -> list[WorkerInfo]:
        """Worker processes seen (running or stopped), with their last heartbeat."""
        from .monitoring.worker import list_workers

        with self.db.read() as conn:
            return list_workers(conn)

    # -- pipelines (see docs/pipelines.md) -----------------------------------------------

    def run_pipeline(self, pipeline: Any, /, *, executor: str | Executor = "local",
                     cache: bool = True, experiment: str | None = None,
                     workers: int | None = None, params: Mapping[str, Any] | None = None,
                     on_step: Callable[[StepRun], None] | None = None,
                     **kwargs: Any) -> PipelineRun:
        """Run a ``@mw.pipeline`` (or ``"module:function"``) with its parameters as keyword
        arguments (or ``params=``, for names such as ``cache``) on ``executor``
        (``local``, ``processes``, ``ray`` or an Executor); every step is a tracked child
        run, outputs are cached. Raises PipelineFailed (``exc.run``) when a step fails."""
        from .pipelines.runner import run_pipeline

        merged = {**dict(params or {}), **kwargs}
        return run_pipeline(self.ctx, pipeline, params=merged, executor=executor,
                            cache=cache, experiment=experiment, workers=workers,
                            settings=self.settings, on_step=on_step)

    def schedule_pipeline(self, pipeline: str, *, cron: str | None = None,
                          every: str | None = None, params: Mapping[str, Any] | None = None,
                          executor: str = "local", cache: bool = True,
                          name: str | None = None) -> Schedule:
        """Run ``"module:pipeline"`` with ``params`` (JSON values) on a ``cron`` clock (UTC)
        or ``every`` span; ``modelworks worker`` runs it when due, missed runs reported."""
        import json

        from .monitoring.schedules import put_schedule
        from .pipelines.executors import EXECUTORS

        if executor not in EXECUTORS:
            raise InvalidInput(f"executor must be one of {', '.join(EXECUTORS)}, got "
                               f"{executor!r}", field="executor")
        try:
            stored = json.loads(json.dumps(dict(params or {})))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"a scheduled pipeline's params must be JSON values: {exc}",
                               field="params") from exc
        return put_schedule(self.ctx, kind="pipeline", target=pipeline, every=every, cron=cron,
                            name=name, options={"params": stored, "executor": executor,
                                                "cache": bool(cache)})

    def pipeline_runs(self, pipeline: str | None = None, *, status: str | None = None,
                      limit: int = 20) -> list[PipelineRun]:
        """Pipeline runs (of ``pipeline``, by name), newest first."""
        from .pipelines.records import list_pipeline_runs

        with self.db.read() as conn:
            return list_pipeline_runs(conn, self.artifacts, pipeline=pipeline, status=status,
                                      limit=limit)

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        """A pipeline run with its step runs; ``run.output()`` loads what it returned."""
        from .pipelines.records import get_pipeline_run

        with self.db.read() as conn:
            return get_pipeline_run(conn, self.artifacts, run_id)

    # -- AutoML (needs the ``automl`` extra: Optuna; see docs/automl.md) -----------------

    def automl(self, train_df: Any, *, label: str, task: str | None = None,
               metric: str | None = None, time_budget_s: float = 120,
               executor: Any = "local", workers: int | None = None, cv: int = 5,
               seed: int = 0, register_as: str | None = None, register: bool = True,
               families: Sequence[str] | None = None, max_trials: int | None = None,
               n_jobs: int | None = None, experiment: str | None = None,
               prefer_simple: bool = True,
               progress: Callable[[pd.DataFrame], None] | None = None) -> AutoMLResult:
        """Search model families and hyperparameters (Optuna TPE, pruning, k-fold CV) within
        ``time_budget_s`` on ``executor``; every trial is a child run; the best is refitted
        and registered as ``register_as`` (default ``<label>-automl``) unless not ``register``.

        ``train_df``: a DataFrame, a dataset version, ``dataset:NAME[:V]`` or a CSV/Parquet
        path. ``prefer_simple``: a linear trial within one standard error of the best wins.
        ``progress(leaderboard)`` is called as trials finish.
        """
        from .automl import automl

        return automl(self, train_df, label=label, task=task, metric=metric,
                      time_budget_s=time_budget_s, executor=executor, workers=workers, cv=cv,
                      seed=seed, register_as=register_as, register=register,
                      families=families, max_trials=max_trials, n_jobs=n_jobs,
                      experiment=experiment, prefer_simple=prefer_simple, progress=progress)

    # -- audit and lineage --------------------------------------------------------------

    def audit_log(self, *, limit: int | None = 100, entity_type: str | None = None,
                  entity_id: str | None = None, action: str | None = None
                  ) -> list[audit.AuditEvent]:
        """Audit events, newest first."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise InvalidInput("limit must be a positive integer", field="limit")
        with self.db.read() as conn:
            return audit.list_events(conn, limit=limit, entity_type=entity_type,
                                     entity_id=entity_id, action=action)

    def verify_audit(self) -> audit.ChainReport:
        """Walk the hash chain; ``ok`` is False at the first edited/deleted/reordered event."""
        with self.db.read() as conn:
            return audit.verify(conn)

    def lineage(self, entity_type: str, entity_id: str, *, direction: str = "up"
                ) -> LineageGraph:
        if direction not in ("up", "down"):
            raise InvalidInput("direction must be 'up' or 'down'", field="direction")
        with self.db.read() as conn:
            return walk(conn, Node(type=entity_type, id=str(entity_id)), direction=direction)
