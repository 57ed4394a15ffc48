"""Retraining: a trigger turns the newest data into a candidate at the gate, on the record.

    result = ws.retrain("models:/claims@production")      # the worker does it on an alert
    result.status     # canary | awaiting_approval | rejected_by_policy | ready | failed
                      # (a canary later ends promoted or withdrawn with its endpoint)
    [s.name for s in result.steps]
    # started, data_loaded, trained, registered, validated, policy_evaluated, canary

One retraining is one ``mw_retrain_runs`` row whose ``steps`` JSON grows as it goes, each step
audited (``retrain.started``, ``retrain.step``, ``retrain.finished``) with its trigger — the
alert or schedule that caused it — in the payload. The steps:

1. *data_loaded*: the model's training spec (``training_specs.py``) names the data: a
   dataset's newest version, or the prediction log joined with feedback labels.
2. *trained*: a tracked run in the experiment ``retrain-<model>`` calls the entrypoint on the
   training split (``1 - holdout`` of the rows, stratified for classes, seed 0); both splits
   are logged as datasets (``<model>-retrain-train`` used as ``train``,
   ``<model>-retrain-holdout`` as ``holdout``), so lineage and the training reference profile
   follow.
3. *registered*: the candidate becomes the model's next version, with the inputs of the
   version the trigger named (the endpoint keeps its request shape).
4. *validated* on the held-out split, *policy_evaluated* (stored).
5. If the policy fails on anything but approvals: ``rejected_by_policy``. If it waits only
   for approvals: ``awaiting_approval`` — the acting identity registered the candidate, so it
   can never approve it, and :func:`resume_approved` (the worker, each tick) continues once a
   validator has. Otherwise the candidate goes on the spec's endpoint as a canary with
   ``canary_weight`` of the traffic (the main route keeps the rest; other canaries drop out):
   ``canary``; without an endpoint: ``ready``.

A failure at any step is recorded (status ``failed``, the error, the candidate if one was
registered) and then raised.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from ..context import Context
from ..errors import InvalidInput, NotFound
from ..registry.models import resolve
from ..registry.records import ModelVersion
from ..registry.uri import parse_model_uri
from ..store.tables import retrain_runs
from .retrain_runs import (
    WAITING,
    RetrainRecord,
    RetrainResult,
    RetrainStep,
    claim_waiting,
    error_text,
    get_retrain_run,
    list_retrain_runs,
    start_retrain,
)
from .training_specs import TrainingSpec, get_training_spec, load_entrypoint, training_data

__all__ = ["TRIGGERS", "RetrainResult", "RetrainStep", "get_retrain_run", "list_retrain_runs",
           "resume_approved", "retrain"]

TRIGGERS = ("manual", "alert", "schedule")
_SEED = 0
_log = logging.getLogger("modelworks.retrain")
_FEW_CLASSES = 20
_MIN_ROWS = 10


# --- the steps --------------------------------------------------------------------------


def _features(base: ModelVersion, frame: pd.DataFrame, label: str) -> list[str]:
    """The candidate's inputs: the base version's, else every column but the label."""
    names = [c["name"] for c in (base.signature or {}).get("inputs", [])]
    if not names:
        return [c for c in frame.columns if c != label]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InvalidInput(f"the training data lacks {base.uri}'s input column(s) "
                           f"{', '.join(missing[:10])}", field="data")
    return names


def _split(frame: pd.DataFrame, label: str, holdout: float
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    if len(frame) < _MIN_ROWS:
        raise InvalidInput(f"{len(frame)} labelled row(s) are too few to train and hold out "
                           f"(at least {_MIN_ROWS})", field="data")
    y = frame[label]
    counts = y.value_counts()
    classes = not pd.api.types.is_float_dtype(y.dtype) and len(counts) <= _FEW_CLASSES
    try:
        train, test = train_test_split(frame, test_size=holdout, random_state=_SEED,
                                       stratify=y if classes and counts.min() >= 2 else None)
    except ValueError:  # a class too rare for the holdout share: split without strata
        train, test = train_test_split(frame, test_size=holdout, random_state=_SEED)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _train(ctx: Context, rec: RetrainRecord, spec: TrainingSpec, base: ModelVersion,
           frame: pd.DataFrame) -> tuple[ModelVersion, Any]:
    """Train on the split in a tracked run and register the candidate; the holdout back."""
    from ..data.datasets import log_dataset
    from ..registry.loading import register
    from ..tracking import runs as _runs

    fit = load_entrypoint(spec.entrypoint)
    features = _features(base, frame, spec.label)
    train, test = _split(frame, spec.label, spec.holdout)
    origin = f"retrain {rec.id} from {spec.source}"
    train_dv = log_dataset(ctx, train, name=f"{spec.model}-retrain-train",
                           source=f"{origin} (train split)")
    test_dv = log_dataset(ctx, test, name=f"{spec.model}-retrain-holdout",
                          source=f"{origin} (holdout split, {spec.holdout:g})")
    experiment = f"retrain-{spec.model}"
    run_id = _runs.create_run(ctx, experiment=experiment, name=f"retrain-{rec.id[:8]}",
                              params_=spec.params, tags_={
                                  "retrain_run": rec.id, "trigger": rec.trigger,
                                  "trigger_id": rec.trigger_id or "",
                                  "entrypoint": spec.entrypoint, "data": spec.source},
                              parent_id=None)
    try:
        _runs.use_dataset(ctx, run_id, train_dv, "train")
        _runs.use_dataset(ctx, run_id, test_dv, "holdout")
        fitted, pipeline_run = _fit(ctx, fit, train, spec)
        if pipeline_run is not None:
            _runs.set_tags(ctx, run_id, {"pipeline_run": pipeline_run})
        if not callable(getattr(fitted, "predict", None)):
            raise InvalidInput(f"entrypoint {spec.entrypoint!r} returned "
                               f"{type(fitted).__name__}, not a fitted model (it has no "
                               "predict method)", field="entrypoint")
        rec.step("trained", run=run_id, experiment=experiment, params=spec.params,
                 train_rows=len(train), holdout_rows=len(test),
                 train_dataset=f"{train_dv.name}:{train_dv.version}",
                 holdout_dataset=f"{test_dv.name}:{test_dv.version}")
        trigger = f"{rec.trigger} {rec.trigger_id}" if rec.trigger_id else rec.trigger
        version = register(ctx, spec.model, model=fitted, run_id=run_id,
                           input_example=train[features], signature=None,
                           description=f"retrained by retrain run {rec.id} ({trigger})",
                           risk_tier=None, tags=None, allow_pickle=False)
        rec.candidate = version.version
    except BaseException as exc:
        _runs.end_run(ctx, run_id, status="FAILED", error=exc)
        raise
    _runs.end_run(ctx, run_id, status="FINISHED")
    reference = _reference(ctx, version.uri, train, "training")
    rec.step("registered", version=version.version, uri=version.uri, features=features,
             training_reference=reference)
    return version, test_dv


def _fit(ctx: Context, fit: Any, train: pd.DataFrame, spec: TrainingSpec
         ) -> tuple[Any, str | None]:
    """Call the entrypoint: a function ``fit(df, **params)``, or a ``@mw.pipeline`` whose
    first parameter takes the training frame (its steps become tracked runs of their own,
    cached); the pipeline returns the fitted model. Returns (model, pipeline run id)."""
    from ..pipelines.runner import run_pipeline
    from ..pipelines.steps import Pipeline

    if not isinstance(fit, Pipeline):
        return fit(train.copy(), **spec.params), None
    first = next(iter(fit.signature.parameters), None)
    if first is None:
        raise InvalidInput(f"pipeline {spec.entrypoint!r} takes no parameter for the "
                           "training frame (its first parameter receives it)",
                           field="entrypoint")
    done = run_pipeline(ctx, fit, params={first: train, **spec.params})
    return done.output(), done.id


def _reference(ctx: Context, uri: str, data: Any, source: str, *,
               label: str | None = None) -> str:
    """Store a reference profile; a failure is recorded in the step, not raised."""
    from ..data.datasets import load_dataset
    from ..records import DatasetVersion
    from .references import store_reference

    try:
        frame = load_dataset(ctx, data) if isinstance(data, DatasetVersion) else data
        store_reference(ctx, uri, frame, source=source, label=label)
    except Exception as exc:
        return f"not stored ({error_text(exc)})"
    return "stored"


def _validate(ctx: Context, rec: RetrainRecord, spec: TrainingSpec, version: ModelVersion,
              holdout: Any) -> None:
    from ..governance.validation import validate

    report = validate(ctx, version.uri, data=holdout, label=spec.label,
                      sensitive_features=spec.sensitive_features, task=None, n_bootstrap=200,
                      explain_sample=1000, seed=_SEED, allow_pickle=False)
    rec.step("validated", report=report.id, rows=report.rows, task=report.task,
             held_out=report.held_out, metrics={k: m.value for k, m in report.metrics.items()},
             validation_reference=_reference(
                 ctx, version.uri, holdout, "validation",
                 label=spec.label if report.task == "regression" else None))


def _judge(ctx: Context, uri: str, *, store: bool) -> tuple[str | None, list[str], list[str]]:
    """(stored evaluation id, blocking failures, approvals still missing) of the version."""
    from ..governance.evaluation import evaluate_version, store_evaluation
    from ..governance.policies import current_policies

    with ctx.db.write() if store else ctx.db.read() as conn:
        version = resolve(conn, parse_model_uri(uri))
        outcomes = evaluate_version(conn, version)
        kinds = {pid: ["review", *(r.kind for r in p.spec.rules)]
                 for pid, p in current_policies(conn)}
        evaluation = store_evaluation(ctx, conn, version, outcomes) if store else None
    blocking: list[str] = []
    waiting: list[str] = []
    for pid, outcome in outcomes:
        rule_kinds = kinds.get(pid, []) if pid is not None else []
        if len(rule_kinds) != len(outcome.rules):
            rule_kinds = ["?"] * len(outcome.rules)
        for kind, rule in zip(rule_kinds, outcome.rules, strict=True):
            if not rule.passed:
                text = f"{outcome.policy or 'gate'}: {rule.rule}: {rule.reason}"
                (waiting if kind == "approvals" else blocking).append(text)
    return (evaluation.id if evaluation else None), blocking, waiting


def _conclude(ctx: Context, rec: RetrainRecord, spec: TrainingSpec, version: ModelVersion,
              blocking: list[str], waiting: list[str]) -> None:
    short = f"{version.name}/{version.version}"
    if blocking:
        rec.finish("rejected_by_policy", failures=blocking, message=(
            f"{short} fails its policy: {'; '.join(blocking)}"))
    elif waiting:
        where = f"a canary on {spec.endpoint!r}" if spec.endpoint else "its rollout"
        rec.finish(WAITING, needs=waiting, message=(
            f"{short} passed every rule but approval and waits for it before {where}: "
            f"{'; '.join(waiting)}. A validator other than {rec.ctx.actor!r} (who registered "
            f"it) approves it: modelworks approve {short} --reason ..."))
    else:
        _rollout(ctx, rec, spec, version)


def _rollout(ctx: Context, rec: RetrainRecord, spec: TrainingSpec, version: ModelVersion) -> None:
    from ..serving.deployments import get_deployment, set_traffic

    if spec.endpoint is None:
        rec.finish("ready", message=(
            f"{version.uri} passed its policy; no endpoint is set for a canary "
            "(set_training(..., endpoint=NAME)): deploy it by hand"))
        return
    with ctx.db.read() as conn:
        deployment = get_deployment(conn, spec.endpoint)
    share = round(spec.canary_weight * 100, 6)
    routes = {deployment.main.model: round(100 - share, 6), version.uri: share}
    trigger = f"{rec.trigger} {rec.trigger_id}" if rec.trigger_id else rec.trigger
    after = set_traffic(ctx, spec.endpoint, routes, reason=(
        f"retrain run {rec.id} ({trigger}): {version.uri} as a canary at {share:g}%"))
    rec.finish("canary", endpoint=spec.endpoint,
               routes={r.model: r.weight for r in after.routes}, message=(
                   f"{version.uri} is a canary on {spec.endpoint!r} with {share:g}% of "
                   f"traffic; {deployment.main.model} keeps {100 - share:g}%"))


def _pipeline(ctx: Context, rec: RetrainRecord, spec: TrainingSpec, base: ModelVersion,
              journal_dir: str | Path | None) -> None:
    frame, details = training_data(ctx, spec, journal_dir=journal_dir)
    rec.step("data_loaded", **details)
    version, holdout = _train(ctx, rec, spec, base, frame)
    _validate(ctx, rec, spec, version, holdout)
    evaluation, blocking, waiting = _judge(ctx, version.uri, store=True)
    rec.step("policy_evaluated", evaluation=evaluation, passed=not blocking and not waiting,
             failures=blocking + waiting)
    _conclude(ctx, rec, spec, version, blocking, waiting)


# --- entry points -----------------------------------------------------------------------


def retrain(ctx: Context, uri: str, *, trigger: str = "manual", trigger_id: str | None = None,
            journal_dir: str | Path | None = None) -> RetrainResult:
    """Retrain the model ``uri`` names (see the module docstring); acts as ``ctx.actor``.

    Raises:
        NotFound: no such model version, training spec or alert.
        Conflict: the alert already triggered a retraining.
        InvalidInput: bad trigger; or a step's bad input (recorded as a failed run first).
    """
    if trigger not in TRIGGERS:
        raise InvalidInput(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}",
                           field="trigger")
    if trigger == "alert" and not trigger_id:
        raise InvalidInput("an alert trigger needs the alert's id", field="trigger_id")
    trigger_id = None if trigger_id is None else str(trigger_id)
    with ctx.db.read() as conn:
        base = resolve(conn, parse_model_uri(uri))
        try:
            spec = get_training_spec(conn, base.name)
        except NotFound as exc:
            if trigger != "manual":  # an alert or schedule asked: leave a record of why not
                start_retrain(ctx, base, None, trigger, trigger_id).fail(exc)
            raise
    rec = start_retrain(ctx, base, spec, trigger, trigger_id)
    try:
        _pipeline(ctx, rec, spec, base, journal_dir)
    except BaseException as exc:  # Ctrl-C too: recorded as failed, then raised
        rec.fail(exc)
        raise
    with ctx.db.read() as conn:
        return get_retrain_run(conn, rec.id)


def _resume(ctx: Context, run: RetrainResult) -> bool:
    """Move one waiting run on if its candidate's approval arrived (or it was rejected)."""
    from ..governance.approvals import decisions_of, standing_approvals

    assert run.candidate is not None
    _, blocking, waiting = _judge(ctx, run.candidate, store=False)
    with ctx.db.read() as conn:
        decisions = decisions_of(conn, run.model, int(run.candidate_version or 0))
    rejected = bool(decisions) and decisions[-1].decision == "rejected"
    if waiting and not blocking and not rejected:
        return False  # still waiting
    if not claim_waiting(ctx, run.id):
        return False  # another worker took it
    rec = RetrainRecord(ctx, run.id, run.model, run.trigger, run.trigger_id)
    rec.candidate = run.candidate_version
    try:
        if rejected:
            last = decisions[-1]
            rec.finish("rejected", decision=last.model_dump(mode="json"), message=(
                f"{run.candidate} was rejected by {last.actor}: {last.reason}"))
            return True
        if blocking:
            rec.finish("rejected_by_policy", failures=blocking, message=(
                f"{run.candidate} now fails its policy: {'; '.join(blocking)}"))
            return True
        approvers = [d.actor for d in standing_approvals(decisions)]
        evaluation, blocking, waiting = _judge(ctx, run.candidate, store=True)
        rec.step("approved", approvers=approvers, evaluation=evaluation)
        with ctx.db.read() as conn:
            spec = get_training_spec(conn, run.model)
            version = resolve(conn, parse_model_uri(run.candidate))
        _conclude(ctx, rec, spec, version, blocking, waiting)
    except BaseException as exc:
        rec.fail(exc)
        raise
    return True


def resume_approved(ctx: Context) -> list[RetrainResult]:
    """Roll out every waiting candidate approved since; close the rejected ones.

    Returns the runs that moved on. A failure of one is recorded on it and does not stop
    the others.
    """
    with ctx.db.read() as conn:
        ids = conn.execute(select(retrain_runs.c.id).where(
            retrain_runs.c.status == WAITING).order_by(retrain_runs.c.started_at)
        ).scalars().all()
        waiting = [get_retrain_run(conn, i) for i in ids]
    moved = []
    for run in waiting:
        try:
            changed = _resume(ctx, run)
        except Exception as exc:  # recorded on the run by _resume
            _log.warning("retrain run %s failed while resuming: %s", run.id, error_text(exc))
            changed = True
        if changed:
            with ctx.db.read() as conn:
                moved.append(get_retrain_run(conn, run.id))
    return moved
