"""The second half of the quickstart: the model in production meets a changing world.

After the governed promotion (``scenario.py``) the demo deploys the model behind an endpoint
and plays the rest of the lifecycle on real components — a real server, the prediction log,
the monitor, the worker under its own identity:

1. traffic from a stable period, then from a shifted one (new procedure mix, inflated
   amounts: ``claims_data.generate_claims(drift=1)``), ground truth sent back as feedback;
2. the monitor compares each window with the training reference; the shifted one breaks
   the monitoring plan's rules and the alerts are stored, audited and written to a file;
3. newer labelled claims arrive as a new dataset version; the worker sees the alert whose
   rule says ``action: retrain``, retrains, registers, validates and evaluates the policy —
   which for a high-risk model wants a validator's approval, so it waits and says so;
4. the validator approves; the worker's next tick puts the candidate on the endpoint as a
   canary; canary traffic is compared with the main version and passes; the endpoint is
   promoted through the gate;
5. the audit log's hash chain is verified and an HTML summary is written.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..errors import Conflict
from ..workspace import Workspace
from .claims_data import LABEL_COLUMN, SENSITIVE_COLUMNS, generate_claims
from .traffic import send_claims, serving

__all__ = ["ENDPOINT", "TRAIN_DATASET", "LifecycleSummary", "run_lifecycle"]

ENDPOINT = "claims"
TRAIN_DATASET = "claims-train"  # its newest version is what retraining learns from
WORKER = "modelworks-worker"
PERIOD_ROWS = 1_000  # claims per traffic period (enough for distances to settle below 0.1)
RECENT_ROWS = 4_000
CANARY_WEIGHT = 0.3

PLAN = """\
description: claims triage in production (quickstart)
rules:
  - name: dataset-drift
    metric: drift.share
    op: ">"
    threshold: 0.3
    severity: critical
    cooldown: 6h
    action: retrain
  - name: amount-psi
    metric: drift.column.claim_amount.psi
    op: ">"
    threshold: 0.2
  - name: accuracy-drop
    metric: performance.accuracy.drop
    op: ">"
    threshold: 0.05
  - name: data-quality
    metric: quality.error_rate
    op: ">"
    threshold: 0.01
sinks:
  - {type: log}
  - {type: file, path: "%(alerts)s"}
"""

# The candidate is trained on shifted claims: its answers are expected to differ from the
# old model's, so the prediction-distribution check is loose and accuracy decides.
CANARY_RULES = {"min_requests": 30, "min_labels": 100, "max_prediction_drift": 0.3,
                "min_accuracy_delta": -0.02, "max_latency_p95_ratio": 3.0}


class LifecycleSummary(BaseModel):
    """What the lifecycle half of the quickstart did."""

    model_config = ConfigDict(frozen=True)

    stable_drift_share: float
    shifted_drift_share: float
    drifted_columns: list[str]
    alerts: list[str]  # rule names that fired on the shifted window
    retrain_status: str  # before the approval: awaiting_approval for a high-risk model
    candidate: str | None
    canary_verdict: str | None
    production: str | None  # the version holding production at the end
    audit_events: int
    audit_ok: bool
    summary_page: Path
    drift_report: Path
    requests: int


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description:<32}"), BarColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)


def _period(ws: Workspace, claims: pd.DataFrame, console: Console, title: str
            ) -> tuple[datetime, datetime, Any]:
    """Serve one period of claims on a fresh server; returns its time span and what was sent."""
    start = datetime.now(UTC)
    with serving(ws) as url, _progress(console) as progress:
        sent = send_claims(url, ENDPOINT, claims, progress, title=title)
    return start, datetime.now(UTC), sent


def run_lifecycle(ws: Workspace, model: str, production_alias: str, reports: Path,
                  console: Console, *, seed: int, validator: str) -> LifecycleSummary:
    """Deploy, monitor, alert, retrain, canary, promote; see the module docstring."""
    from .summary_page import write_summary

    uri = f"models:/{model}@{production_alias}"
    first = ws.resolve_model(uri)
    with contextlib.suppress(Conflict):  # a rerun: the endpoint follows the alias
        ws.create_deployment(ENDPOINT, model=f"{model}@{production_alias}",
                             reason="quickstart: serve the promoted model")
    alerts_file = reports / "alerts.jsonl"
    ws.set_monitoring_plan(model, PLAN % {"alerts": alerts_file.as_posix()})
    ws.set_training(model, entrypoint="modelworks.quickstart.training:retraining",
                    data=f"dataset:{TRAIN_DATASET}", label=LABEL_COLUMN,
                    endpoint=ENDPOINT, canary_weight=CANARY_WEIGHT,
                    sensitive_features=list(SENSITIVE_COLUMNS))
    ws.set_canary_rules(ENDPOINT, CANARY_RULES)
    console.print(f"deployed   endpoint [cyan]{ENDPOINT}[/] -> {first.uri}; monitoring plan "
                  "(4 rules, alerts to the log and "
                  f"{escape(str(alerts_file))}); retraining spec "
                  "the pipeline modelworks.quickstart.training:retraining on the newest "
                  f"[cyan]{TRAIN_DATASET}[/]")

    # -- 1. two periods of traffic, each monitored --------------------------------------------
    stable = generate_claims(PERIOD_ROWS, seed=seed + 101)
    shifted = generate_claims(PERIOD_ROWS, seed=seed + 202, drift=1.0)
    t0, t1, sent_stable = _period(ws, stable, console, "traffic: stable period")
    monitor = ws.monitor(uri, reference="training", segments=["region"])
    calm = monitor.run(since=t0, until=t1)
    console.print(f"monitored  stable window: {calm.rows:,} predictions, "
                  f"{calm.drift.drifted_columns}/{calm.drift.scored_columns} columns drifted "
                  f"(share {calm.drift.share:.2f}), alerts: "
                  f"{', '.join(a.rule for a in calm.alerts if a.status == 'firing') or 'none'}")
    t1, t2, sent_shifted = _period(ws, shifted, console, "traffic: shifted period")
    alarm = monitor.run(since=t1, until=t2)
    fired = [a for a in alarm.alerts if a.status == "firing"]
    console.print(f"monitored  shifted window: {alarm.rows:,} predictions, drifted: "
                  f"[bold]{', '.join(alarm.drifted_columns) or 'none'}[/] (share "
                  f"{alarm.drift.share:.2f})")
    for alert in fired:
        console.print(f"[bold red]alert[/]      {alert.severity}: {escape(alert.message)}"
                      + (" -> retrain" if alert.action == "retrain" else ""))
    drift_report = reports / f"drift-{model}-v{first.version}.html"
    ws.monitor_report(uri, out=drift_report)
    console.print(f"report     {escape(str(drift_report))}")

    # -- 2. newer labelled claims arrive; the worker retrains on the alert --------------------
    recent = generate_claims(RECENT_ROWS, seed=seed + 303, drift=1.0)
    recent_v = ws.log_dataset(recent, name=TRAIN_DATASET,
                              source="quickstart:generate_claims, the latest labelled claims")
    console.print(f"dataset    [cyan]{recent_v.name}:{recent_v.version}[/] "
                  f"{recent_v.row_count:,} newly labelled claims (the newest version)")
    from ..monitoring.worker import Worker

    with Workspace(ws.location.db_url, artifacts=ws.location.artifacts,
                   user=WORKER) as worker_ws:
        worker = Worker(worker_ws, WORKER, echo=lambda line: None)
        with console.status("worker: retraining on the alert (train, register, validate, "
                            "policy)..."):
            tick = worker.run_once()
        retrain = tick.retrains[0] if tick.retrains else None
        waiting = retrain is not None and retrain.status == "awaiting_approval"
        if retrain is None:
            why = "; ".join(tick.errors) or "no firing alert asks for one"
            console.print(f"worker     [yellow]started no retraining[/] ({escape(why)})")
        else:
            console.print(f"worker     [cyan]{WORKER}[/] retrained on alert "
                          f"{escape(str(retrain.trigger_id))[:12]}: {retrain.candidate} -> "
                          f"[bold]{retrain.status}[/]")
        if waiting and retrain is not None and retrain.candidate is not None:
            with Workspace(ws.location.db_url, artifacts=ws.location.artifacts,
                           user=validator) as reviewer:
                reviewer.approve(retrain.candidate, reason="retrained on the shifted claims: "
                                 "validation report reviewed")
            console.print(f"approved   {retrain.candidate} by [cyan]{validator}[/] (the "
                          f"worker, its registrant, could not)")
            tick = worker.run_once()
            retrain = next((r for r in ws.retrain_runs(model, limit=5) if r.id == retrain.id),
                           retrain)
            console.print(f"worker     {retrain.candidate} -> [bold]{retrain.status}[/] on "
                          f"endpoint [cyan]{ENDPOINT}[/] ({CANARY_WEIGHT:.0%} of traffic)")
        worker.stop()

    # -- 3. the canary serves shifted traffic; analysis; promotion ---------------------------
    verdict = None
    canary_claims = generate_claims(2 * PERIOD_ROWS, seed=seed + 404, drift=1.0)
    if retrain is not None and retrain.status == "canary":
        _, _, sent_canary = _period(ws, canary_claims, console, "traffic: canary period")
        analysis = ws.analyze_canary(ENDPOINT)
        verdict = analysis.verdict
        for comparison in analysis.comparisons:
            checks = ", ".join(f"{c.name} {c.outcome}" for c in comparison.checks)
            console.print(f"canary     {comparison.candidate.uri}: [bold]{comparison.verdict}"
                          f"[/] ({checks})")
        if verdict == "pass":
            ws.promote_deployment(ENDPOINT, reason=f"canary analysis {analysis.id[:12]} passed")
            console.print(f"promoted   endpoint [cyan]{ENDPOINT}[/] -> "
                          f"{ws.resolve_model(uri).uri} holds [bold]@{production_alias}[/]")
        requests = len(sent_stable.ids) + len(sent_shifted.ids) + len(sent_canary.ids)
    else:
        requests = len(sent_stable.ids) + len(sent_shifted.ids)

    if retrain is not None and retrain.candidate is not None:
        for listed in ws.validation_reports(retrain.candidate)[:1]:
            ws.get_validation_report(listed.id).save(
                reports / f"validation-{model}-v{retrain.candidate_version}.html")

    # -- 4. the record --------------------------------------------------------------------------
    if retrain is not None:  # promoted (or withdrawn) since: the run says so now
        retrain = ws.retrain_run(retrain.id)
    chain = ws.verify_audit()
    console.print(f"audit      {chain.events:,} events, hash chain "
                  f"{'[green]verified[/]' if chain.ok else '[red]BROKEN[/]'}")
    page = write_summary(ws, model, production_alias, reports, endpoint=ENDPOINT,
                         first=first.uri, calm=calm, alarm=alarm, retrain=retrain)
    console.print(f"summary    {escape(str(page))}")
    production = ws.resolve_model(uri).uri
    return LifecycleSummary(
        stable_drift_share=calm.drift.share, shifted_drift_share=alarm.drift.share,
        drifted_columns=alarm.drifted_columns, alerts=sorted({a.rule for a in fired}),
        retrain_status="awaiting_approval" if waiting else (
            retrain.status if retrain is not None else "none"),
        candidate=retrain.candidate if retrain is not None else None,
        canary_verdict=verdict, production=production,
        audit_events=chain.events, audit_ok=chain.ok, summary_page=page,
        drift_report=drift_report, requests=requests)


def _elapsed(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"
