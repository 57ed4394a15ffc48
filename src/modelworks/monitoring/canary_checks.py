"""Canary comparison as pure functions: one arm's figures from its log rows, and the checks.

An *arm* is what one route or shadow answered on an endpoint: its requests, the ones that
failed inside the model (logged with an ``error`` marker), latency per request, predicted
values, and labels where feedback arrived. ``compare`` applies ``CanaryRules`` to a candidate
arm against the main arm; the drift statistics are ``drift.statistics``' functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from ..serving.canary import CanaryRules
from .drift.profile import DISCRETE_MAX
from .drift.statistics import (
    chi_square,
    jensen_shannon,
    ks_statistic,
    psi,
    wasserstein_normed,
)

__all__ = ["ArmStats", "CanaryCheck", "arm_stats", "compare", "is_numeric", "prediction_drift",
           "value_key"]

Role = Literal["main", "canary", "shadow"]
Outcome = Literal["pass", "fail", "inconclusive", "skipped"]
_TOP_CLASSES = 20  # class shares kept in the evidence
_DECILES = np.linspace(0.1, 0.9, 9)


class CanaryCheck(BaseModel):
    """One rule applied: the value measured, the threshold and the outcome, in words too."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    threshold: float | None
    outcome: Outcome
    detail: str


class ArmStats(BaseModel):
    """What one route or shadow did in the window (``rows`` are answered input rows)."""

    model_config = ConfigDict(frozen=True)

    uri: str
    role: Role
    model: str | None
    version: int | None
    weight: float | None = None  # percent of traffic; None for a shadow
    requests: int = 0
    errors: int = 0
    error_rate: float | None = None
    rows: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    predictions: dict[str, float] = {}  # class -> share (top 20), or mean/std for numbers
    labelled: int = 0
    accuracy: float | None = None
    mae: float | None = None
    compared_rows: int = 0  # rows answered by the main entry too (shadows: same request)
    agreement: float | None = None


def value_key(value: Any) -> str:
    """A canonical text for a predicted or label value: ``1``, ``1.0`` and ``"1"`` agree."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def is_numeric(*samples: Sequence[Any]) -> bool:
    """Numbers with more than ``DISCRETE_MAX`` distinct values (else: classes)."""
    values = [v for sample in samples for v in sample]
    if not values or any(_number(v) is None for v in values):
        return False
    return len({float(v) for v in values}) > DISCRETE_MAX


def _percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def arm_stats(rows: pd.DataFrame, *, uri: str, role: Role, model: str | None,
              version: int | None, weight: float | None, numeric: bool,
              labels: Mapping[str, Any], main_outputs: Mapping[str, Any] | None = None
              ) -> ArmStats:
    """The figures of one arm from its log rows (columns of ``read_predictions`` plus
    ``error``); ``main_outputs`` maps prediction ids to the main entry's answers."""
    failed = rows["error"].notna() if "error" in rows else pd.Series(False, index=rows.index)
    ok = rows[~failed]
    errors = int(rows.loc[failed, "request_id"].nunique())
    requests = int(ok["request_id"].nunique()) + errors
    latency = ok.groupby("request_id", sort=False)["latency_ms"].first().to_numpy(float)
    latency = latency[np.isfinite(latency)]
    outputs = list(ok["output"])
    ids = list(ok["prediction_id"])
    figures: dict[str, Any] = {
        "uri": uri, "role": role, "model": model, "version": version, "weight": weight,
        "requests": requests, "errors": errors,
        "error_rate": errors / requests if requests else None, "rows": len(ok),
        "latency_p50_ms": _percentile(latency, 50), "latency_p95_ms": _percentile(latency, 95),
        "latency_p99_ms": _percentile(latency, 99),
    }
    if numeric:
        values = np.array([_number(v) for v in outputs], dtype=float)
        figures["predictions"] = ({"mean": float(values.mean()), "std": float(values.std())}
                                  if values.size else {})
    else:
        shares = pd.Series([value_key(v) for v in outputs], dtype=object).value_counts(
            normalize=True)
        figures["predictions"] = {str(k): float(v) for k, v in shares.head(_TOP_CLASSES).items()}
    pairs = [(out, labels[pid]) for out, pid in zip(outputs, ids, strict=True) if pid in labels]
    figures["labelled"] = len(pairs)
    if pairs and numeric:
        diffs = [abs(_number(o) - _number(t)) for o, t in pairs  # type: ignore[operator]
                 if _number(o) is not None and _number(t) is not None]
        figures["mae"] = float(np.mean(diffs)) if diffs else None
    elif pairs:
        figures["accuracy"] = float(np.mean([value_key(o) == value_key(t) for o, t in pairs]))
    if main_outputs is not None:
        joined = [(out, main_outputs[pid]) for out, pid in zip(outputs, ids, strict=True)
                  if pid in main_outputs]
        figures["compared_rows"] = len(joined)
        if joined and not numeric:
            figures["agreement"] = float(np.mean([value_key(a) == value_key(b)
                                                  for a, b in joined]))
        elif joined:
            figures["agreement"] = float(np.mean([
                math.isclose(_number(a) or 0.0, _number(b) or 0.0, rel_tol=1e-9, abs_tol=1e-12)
                for a, b in joined]))
    return ArmStats(**figures)


def _bins(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts in the reference's deciles (numbers compared with PSI or Jensen-Shannon)."""
    edges = np.unique(np.quantile(reference, _DECILES))
    size = 2 * len(edges) + 1

    def cells(values: np.ndarray) -> np.ndarray:
        # As the drift profiles cut the line: open intervals between edges, the edges apart.
        left = np.searchsorted(edges, values, side="left")
        at_edge = (left < len(edges)) & (edges[np.minimum(left, len(edges) - 1)] == values)
        return np.bincount(2 * left + at_edge, minlength=size)

    return cells(reference), cells(current)


def prediction_drift(main: Sequence[Any], candidate: Sequence[Any], *, numeric: bool,
                     method: str) -> dict[str, Any]:
    """The distance the rule checks (``value``, by ``method``) and the other statistics.

    Classes: Jensen-Shannon distance (natural log, as Evidently), PSI and the chi-square
    p-value of the class counts. Numbers: the normalised Wasserstein distance, KS, and PSI
    and Jensen-Shannon over the main entry's deciles. ``auto`` is Jensen-Shannon for classes
    and Wasserstein for numbers — Evidently's large-sample defaults, with its 0.1 threshold.
    """
    out: dict[str, Any] = {"kind": "numeric" if numeric else "classes"}
    if numeric:
        ref = np.array([_number(v) for v in main], dtype=float)
        cur = np.array([_number(v) for v in candidate], dtype=float)
        ref_counts, cur_counts = _bins(ref, cur)
        out["wasserstein"] = wasserstein_normed(ref, cur)
        ks = ks_statistic(ref, cur)
        out["ks"], out["ks_p_value"] = ks.statistic, ks.p_value
    else:
        keys = sorted({value_key(v) for v in main} | {value_key(v) for v in candidate})
        index = {k: i for i, k in enumerate(keys)}
        ref_counts = np.bincount([index[value_key(v)] for v in main], minlength=len(keys))
        cur_counts = np.bincount([index[value_key(v)] for v in candidate],
                                 minlength=len(keys))
        out["chi_square_p_value"] = chi_square(ref_counts, cur_counts).p_value
    out["jensenshannon"] = jensen_shannon(ref_counts, cur_counts)
    out["psi"] = psi(ref_counts, cur_counts)
    chosen = method if method != "auto" else ("wasserstein" if numeric else "jensenshannon")
    out["method"] = chosen
    out["value"] = out.get(chosen)
    return out


def _check(name: str, value: float | None, threshold: float | None, failed: bool,
           detail: str) -> CanaryCheck:
    outcome: Outcome = "fail" if failed else "pass"
    return CanaryCheck(name=name, value=value, threshold=threshold, outcome=outcome,
                       detail=detail)


def _skipped(name: str, threshold: float | None, detail: str) -> CanaryCheck:
    return CanaryCheck(name=name, value=None, threshold=threshold, outcome="skipped",
                       detail=detail)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} ms"


def compare(main: ArmStats, candidate: ArmStats, rules: CanaryRules,
            drift: Mapping[str, Any] | None) -> list[CanaryCheck]:
    """Every rule applied to the candidate against the main arm, in a fixed order."""
    checks: list[CanaryCheck] = []
    fewest = min(main.requests, candidate.requests)
    enough = fewest >= rules.min_requests
    checks.append(CanaryCheck(
        name="requests", value=float(fewest), threshold=float(rules.min_requests),
        outcome="pass" if enough else "inconclusive",
        detail=f"{candidate.requests} requests to the candidate, {main.requests} to the main "
               f"entry; each side needs {rules.min_requests}"))

    limit = rules.max_error_rate_increase
    if limit is None:
        checks.append(_skipped("error_rate_increase", None, "rule switched off"))
    elif main.error_rate is None or candidate.error_rate is None:
        checks.append(_skipped("error_rate_increase", limit, "no requests on one side"))
    else:
        rise = candidate.error_rate - main.error_rate
        checks.append(_check(
            "error_rate_increase", rise, limit, rise > limit,
            f"error rate {candidate.error_rate:.4f} ({candidate.errors} failed requests) vs "
            f"{main.error_rate:.4f} ({main.errors}) on the main entry"))

    ratio_limit = rules.max_latency_p95_ratio
    cand_p95, main_p95 = candidate.latency_p95_ms, main.latency_p95_ms
    if ratio_limit is None:
        checks.append(_skipped("latency_p95_ratio", None, "rule switched off"))
    elif cand_p95 is None or main_p95 is None:
        checks.append(_skipped("latency_p95_ratio", ratio_limit, "no answered requests on "
                               "one side"))
    else:
        ratio = cand_p95 / main_p95 if main_p95 > 0 else math.inf
        slower = cand_p95 - main_p95
        checks.append(_check(
            "latency_p95_ratio", ratio, ratio_limit,
            ratio > ratio_limit and slower > rules.latency_floor_ms,
            f"p95 {_ms(cand_p95)} vs {_ms(main_p95)} (p50 {_ms(candidate.latency_p50_ms)} vs "
            f"{_ms(main.latency_p50_ms)}); a rise under {rules.latency_floor_ms:g} ms never "
            "fails"))

    drift_limit = rules.max_prediction_drift
    if drift_limit is None:
        checks.append(_skipped("prediction_drift", None, "rule switched off"))
    elif drift is None:
        checks.append(_skipped("prediction_drift", drift_limit, "no answered rows on one "
                               "side"))
    elif drift.get("value") is None:
        checks.append(_skipped("prediction_drift", drift_limit,
                               f"{drift['method']} needs numeric predictions"))
    else:
        value = float(drift["value"])
        checks.append(_check(
            "prediction_drift", value, drift_limit, value > drift_limit,
            f"{drift['method']} distance between the predictions of the candidate and of the "
            "main entry"))

    delta_limit = rules.min_accuracy_delta
    if delta_limit is None:
        checks.append(_skipped("accuracy_delta", None, "rule switched off"))
    elif candidate.accuracy is None or main.accuracy is None:
        checks.append(_skipped("accuracy_delta", delta_limit,
                               "no labels on one side, or numeric predictions (see mae)"))
    elif min(candidate.labelled, main.labelled) < rules.min_labels:
        checks.append(_skipped(
            "accuracy_delta", delta_limit,
            f"{candidate.labelled} and {main.labelled} labelled rows; each side needs "
            f"{rules.min_labels}"))
    else:
        delta = candidate.accuracy - main.accuracy
        checks.append(_check(
            "accuracy_delta", delta, delta_limit, delta < delta_limit,
            f"accuracy {candidate.accuracy:.4f} on {candidate.labelled} labels vs "
            f"{main.accuracy:.4f} on {main.labelled}"))

    agree_limit = rules.min_agreement
    if candidate.agreement is None:
        checks.append(_skipped("agreement", agree_limit,
                               "only a shadow answers the same requests as the main entry"
                               if candidate.role != "shadow" else "no request in common"))
    elif agree_limit is None:
        checks.append(_skipped("agreement", None,
                               f"agrees with the main entry on {candidate.agreement:.4f} of "
                               f"{candidate.compared_rows} rows (no rule set)"))
    else:
        checks.append(_check(
            "agreement", candidate.agreement, agree_limit, candidate.agreement < agree_limit,
            f"agrees with the main entry on {candidate.compared_rows} rows"))
    return checks
