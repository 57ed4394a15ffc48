"""Canary analysis: compare an endpoint's canaries and shadows with its main entry.

    analysis = ws.analyze_canary("claims")             # since the last traffic change
    analysis.verdict, analysis.action, analysis.comparisons[0].checks

Over a window of the prediction log — by default since the endpoint's routes and shadows
took their current form (``deployment_history``), capped by ``window`` — each candidate is
compared with the main entry on errors, latency, the distribution of its predictions and,
where feedback labels exist, accuracy (``canary_checks``; rules in ``serving.canary``). A
candidate fails when any check fails, is inconclusive with too few requests, else passes.

A failed *canary* route is taken out of the traffic when ``rollback`` is set: its share goes
to the main entry (``serving.canary.remove_canaries``, a ``traffic_changed`` history entry
whose reason names the analysis and the failed checks). The analysis is stored in
``mw_canary_analyses`` with its evidence and audited ``deployment.canary_analyzed`` — in the
same transaction as the traffic change. A failed shadow answers no one: it is reported, not
removed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, insert, select

from .. import audit
from ..context import Context
from ..errors import InvalidInput, ModelworksError, NotFound
from ..registry.models import resolve
from ..registry.uri import parse_model_uri
from ..serving.canary import CanaryRules, canary_rules, parse_canary_rules, remove_canaries
from ..serving.deployments import Deployment, deployment_history, get_deployment
from ..store.tables import canary_analyses, deployments, utcnow
from . import retrain_runs  # noqa: F401  (registers the listener that closes retrain runs)
from .canary_checks import (
    ArmStats,
    CanaryCheck,
    arm_stats,
    compare,
    is_numeric,
    prediction_drift,
)
from .monitor import parse_window

__all__ = ["CanaryAnalysis", "CanaryComparison", "analyze_canary", "list_canary_analyses"]

Verdict = Literal["pass", "fail", "inconclusive"]
Action = Literal["none", "rolled_back", "rollback_refused"]
_CANDIDATES_TEXT = 300  # the width of mw_canary_analyses.candidate


class CanaryComparison(BaseModel):
    """One candidate (a canary route or a shadow) against the main entry."""

    model_config = ConfigDict(frozen=True)

    candidate: ArmStats
    verdict: Verdict
    checks: list[CanaryCheck]
    prediction_drift: dict[str, Any] | None = None
    action: Action = "none"
    note: str | None = None

    @property
    def failed_checks(self) -> list[CanaryCheck]:
        return [c for c in self.checks if c.outcome == "fail"]


class CanaryAnalysis(BaseModel):
    """One analysis of an endpoint: the main entry's figures, each comparison, the verdict
    (fail if any candidate fails, else inconclusive if any is, else pass) and the action."""

    model_config = ConfigDict(frozen=True)

    id: str
    endpoint: str
    verdict: Verdict
    action: Action
    baseline: ArmStats
    comparisons: list[CanaryComparison]
    rules: CanaryRules
    window_start: datetime | None
    window_end: datetime
    rollback: bool
    rollback_error: str | None = None
    created_at: datetime
    created_by: str

    def comparison(self, uri: str) -> CanaryComparison:
        wanted = str(parse_model_uri(uri))
        for c in self.comparisons:
            if c.candidate.uri == wanted:
                return c
        raise NotFound(f"analysis {self.id} compared no candidate {wanted} (candidates: "
                       f"{', '.join(c.candidate.uri for c in self.comparisons)})")


# --- the window and the log ----------------------------------------------------------------


def _since_change(conn: Connection, dep: Deployment) -> datetime:
    """When the routes and shadows took their current form (the deployment's own history)."""
    start = dep.created_at
    for event in reversed(deployment_history(conn, dep.name)):
        if event.routes != dep.routes or event.shadows != dep.shadows:
            break
        start = event.at
    return start


def _arms(conn: Connection, dep: Deployment) -> list[tuple[str, str, float | None,
                                                           tuple[str, int] | None]]:
    """(uri, role, weight, (model, version) or None when it no longer resolves) per arm."""
    out: list[tuple[str, str, float | None, tuple[str, int] | None]] = []
    entries: list[tuple[str, str, float | None]] = [(dep.main.model, "main", dep.main.weight)]
    entries += [(r.model, "canary", r.weight) for r in dep.canaries]
    entries += [(s, "shadow", None) for s in dep.shadows]
    for uri, role, weight in entries:
        try:
            version = resolve(conn, parse_model_uri(uri))
            out.append((uri, role, weight, (version.name, version.version)))
        except NotFound:
            if role == "main":
                raise
            out.append((uri, role, weight, None))
    return out


def _log_rows(ctx: Context, endpoint: str, names: set[str], start: datetime | None,
              end: datetime, journal_dir: str | os.PathLike[str] | None) -> pd.DataFrame:
    from ..serving.prediction_reader import read_predictions

    frames = []
    for name in sorted(names):
        frame = read_predictions(ctx, model=name, since=start, until=end, include_shadow=True,
                                 include_errors=True, journal_dir=journal_dir)
        frames.append(frame[frame["endpoint"] == endpoint])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- the analysis --------------------------------------------------------------------------


def _verdict(checks: list[CanaryCheck]) -> Verdict:
    if any(c.outcome == "inconclusive" for c in checks):
        return "inconclusive"
    return "fail" if any(c.outcome == "fail" for c in checks) else "pass"


def _overall(comparisons: list[CanaryComparison]) -> Verdict:
    verdicts = {c.verdict for c in comparisons}
    return "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts \
        else "pass"


def _compare_all(ctx: Context, arms: list[Any], rows: pd.DataFrame,
                 rules: CanaryRules) -> tuple[ArmStats, list[CanaryComparison]]:
    from ..serving.feedback import feedback_for

    def of(key: tuple[str, int] | None, shadow: bool) -> pd.DataFrame:
        if key is None or rows.empty:
            return rows.iloc[0:0]
        return rows[(rows["model"] == key[0]) & (rows["version"] == key[1])
                    & (rows["shadow"] == shadow)]

    selected = {(uri, role): of(key, role == "shadow") for uri, role, _, key in arms}
    ok = rows[rows["error"].isna()] if "error" in rows else rows
    labels = feedback_for(ctx, ok["prediction_id"].unique().tolist()) if len(ok) else {}
    main_uri, _, main_weight, main_key = arms[0]
    main_rows = selected[(main_uri, "main")]
    main_ok = main_rows[main_rows["error"].isna()] if "error" in main_rows else main_rows
    main_outputs = dict(zip(main_ok["prediction_id"], main_ok["output"], strict=True))

    def outputs(frame: pd.DataFrame) -> list[Any]:
        return list(frame.loc[frame["error"].isna(), "output"]) if "error" in frame \
            else list(frame["output"])

    numeric = is_numeric(*(outputs(f) for f in selected.values()))
    baseline = arm_stats(main_rows, uri=main_uri, role="main", model=main_key[0],
                         version=main_key[1], weight=main_weight, numeric=numeric,
                         labels=labels)
    comparisons = []
    for uri, role, weight, key in arms[1:]:
        frame = selected[(uri, role)]
        stats = arm_stats(frame, uri=uri, role=role, model=key[0] if key else None,
                          version=key[1] if key else None, weight=weight, numeric=numeric,
                          labels=labels, main_outputs=main_outputs if role == "shadow" else None)
        note = None
        if key is None:
            note = f"{uri} no longer names a version"
        elif role == "canary" and key == main_key:
            note = f"{uri} serves the same version as the main entry: nothing to tell apart"
        cand_out, main_out = outputs(frame), outputs(main_rows)
        drift = (prediction_drift(main_out, cand_out, numeric=numeric,
                                  method=rules.drift_method)
                 if cand_out and main_out else None)
        checks = compare(baseline, stats, rules, drift)
        verdict: Verdict = "inconclusive" if note else _verdict(checks)
        comparisons.append(CanaryComparison(candidate=stats, verdict=verdict, checks=checks,
                                            prediction_drift=drift, note=note))
    return baseline, comparisons


def _reason(analysis_id: str, failed: list[CanaryComparison]) -> str:
    parts = []
    for c in failed:
        why = ", ".join(f"{k.name} {k.value:.4g} (limit {k.threshold:g})"
                        for k in c.failed_checks if k.value is not None
                        and k.threshold is not None)
        parts.append(f"{c.candidate.uri} failed: {why}")
    return f"canary analysis {analysis_id}: " + "; ".join(parts)


def _summary(analysis: CanaryAnalysis) -> dict[str, Any]:
    return {
        "analysis": analysis.id, "verdict": analysis.verdict, "action": analysis.action,
        "baseline": analysis.baseline.uri,
        "window_start": analysis.window_start.isoformat() if analysis.window_start else None,
        "window_end": analysis.window_end.isoformat(),
        "rollback_error": analysis.rollback_error,
        "candidates": [{
            "uri": c.candidate.uri, "role": c.candidate.role, "verdict": c.verdict,
            "action": c.action, "requests": c.candidate.requests,
            "failed": [{"check": k.name, "value": k.value, "threshold": k.threshold}
                       for k in c.failed_checks]} for c in analysis.comparisons],
    }


def _store(ctx: Context, conn: Connection, dep_id: int, analysis: CanaryAnalysis) -> None:
    """The row and its audit event, in the caller's transaction."""
    candidates = ", ".join(c.candidate.uri + (" (shadow)" if c.candidate.role == "shadow"
                                               else "") for c in analysis.comparisons)
    if len(candidates) > _CANDIDATES_TEXT:
        candidates = candidates[: _CANDIDATES_TEXT - 1] + "…"
    conn.execute(insert(canary_analyses).values(
        id=analysis.id, deployment_id=dep_id, baseline=analysis.baseline.uri,
        candidate=candidates, window_start=analysis.window_start,
        window_end=analysis.window_end, verdict=analysis.verdict, action=analysis.action,
        evidence=analysis.model_dump(mode="json"), created_at=analysis.created_at,
        created_by=analysis.created_by))
    audit.append(ctx.db, conn, actor=ctx.actor, action="deployment.canary_analyzed",
                 entity_type="deployment", entity_id=analysis.endpoint,
                 payload=_summary(analysis))


def _deployment_id(conn: Connection, name: str) -> int:
    get_deployment(conn, name)  # NotFound naming the deployments there are
    return int(conn.execute(select(deployments.c.id).where(deployments.c.name == name)
                            ).scalar_one())


def analyze_canary(
    ctx: Context, endpoint: str, *, window: str | None = None,
    rules: CanaryRules | Mapping[str, Any] | str | None = None, rollback: bool = True,
    journal_dir: str | os.PathLike[str] | None = None,
) -> CanaryAnalysis:
    """Compare each canary and shadow of ``endpoint`` with its main entry; stored, audited.

    ``rules`` overrides the endpoint's stored rules for this analysis only; ``window`` (e.g.
    ``1h``) caps how far back the log is read (default: since the last traffic change).
    With ``rollback`` a failed canary route is taken out of the traffic (module docstring).

    Raises:
        NotFound: no deployment of that name.
        InvalidInput: the endpoint has no canary and no shadow (``field="endpoint"``), a
            malformed ``window`` or rule.
    """
    if not isinstance(endpoint, str):
        raise InvalidInput("endpoint must be a deployment name", field="endpoint")
    span = parse_window(window) if window is not None else None
    override = parse_canary_rules(rules) if rules is not None else None
    end = datetime.now(UTC)
    with ctx.db.read() as conn:
        dep_id = _deployment_id(conn, endpoint)
        dep = get_deployment(conn, endpoint)
        if not dep.canaries and not dep.shadows:
            raise InvalidInput(f"deployment {endpoint!r} has no canary and no shadow to "
                               "analyse (add one with deploy traffic or deploy shadows)",
                               field="endpoint")
        applied = override or canary_rules(conn, endpoint)
        start = _since_change(conn, dep)
        arms = _arms(conn, dep)
    if span is not None:
        start = max(start, end - span)
    names = {key[0] for _, _, _, key in arms if key is not None}
    rows = _log_rows(ctx, endpoint, names, start, end, journal_dir)
    baseline, comparisons = _compare_all(ctx, arms, rows, applied)
    draft = CanaryAnalysis(
        id=uuid.uuid4().hex, endpoint=endpoint, verdict=_overall(comparisons), action="none",
        baseline=baseline, comparisons=comparisons, rules=applied, window_start=start,
        window_end=end, rollback=rollback, created_at=utcnow(), created_by=ctx.actor)
    failed = [c for c in comparisons if c.verdict == "fail" and c.candidate.role == "canary"]
    if not (rollback and failed):
        with ctx.db.write() as conn:
            _store(ctx, conn, dep_id, draft)
        return draft

    done: list[CanaryAnalysis] = []

    def record(conn: Connection, removed: list[str]) -> None:
        marked = [c.model_copy(update={"action": "rolled_back"})
                  if c.candidate.role == "canary" and c.candidate.uri in removed else c
                  for c in comparisons]
        analysis = draft.model_copy(update={
            "comparisons": marked, "action": "rolled_back" if removed else "none"})
        _store(ctx, conn, dep_id, analysis)
        done.append(analysis)

    try:
        remove_canaries(ctx, endpoint, [c.candidate.uri for c in failed],
                        reason=_reason(draft.id, failed), record=record,
                        extra={"canary_analysis": draft.id})
    except ModelworksError as exc:  # e.g. the gate refuses more traffic for the main entry
        refused = draft.model_copy(update={"action": "rollback_refused",
                                           "rollback_error": str(exc)})
        with ctx.db.write() as conn:
            _store(ctx, conn, dep_id, refused)
        return refused
    return done[-1]


def list_canary_analyses(ctx: Context, endpoint: str, *, limit: int = 20
                         ) -> list[CanaryAnalysis]:
    """Stored analyses of an endpoint, newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput("limit must be a positive integer", field="limit")
    t = canary_analyses
    with ctx.db.read() as conn:
        dep_id = _deployment_id(conn, endpoint)
        found = conn.execute(select(t.c.evidence).where(t.c.deployment_id == dep_id)
                             .order_by(t.c.created_at.desc(), t.c.id).limit(limit)).scalars()
        return [CanaryAnalysis.model_validate(e) for e in found]
