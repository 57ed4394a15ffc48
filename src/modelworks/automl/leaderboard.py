"""The leaderboard: one row per trial, best first, built from the study's trials."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .space import unprefixed

__all__ = ["COLUMNS", "leaderboard", "select"]

COLUMNS = ["rank", "trial", "family", "score", "score_std", "folds", "seconds", "state",
           "params", "run_id"]
_STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "FAIL": 3}


def _row(trial: Any) -> dict[str, Any]:
    state = trial.state.name
    attrs = trial.user_attrs
    scores = [float(s) for s in attrs.get("scores", [])]
    family, params = (unprefixed(trial.params) if "family" in trial.params
                      else (attrs.get("family"), {}))
    if state == "COMPLETE" and trial.value is not None:
        score = float(trial.value)
    else:  # a pruned trial's partial mean: how far it got before it was stopped
        score = sum(scores) / len(scores) if scores else math.nan
    std = pd.Series(scores).std(ddof=0) if scores else math.nan
    return {"trial": trial.number, "family": family, "score": score,
            "score_std": float(std), "folds": len(scores),
            "seconds": float(attrs.get("seconds", math.nan)), "state": state,
            "params": params, "run_id": attrs.get("run_id")}


def leaderboard(trials: Iterable[Any], direction: str) -> pd.DataFrame:
    """Completed trials ranked by score (1 = best), then pruned, running and failed ones."""
    rows = [_row(t) for t in trials if t.state.name != "WAITING"]  # queued, never started
    sign = -1.0 if direction == "maximize" else 1.0

    def key(row: dict[str, Any]) -> tuple[int, float, int]:
        score = row["score"]
        return (_STATE_ORDER.get(row["state"], 4),
                sign * score if not math.isnan(score) else math.inf, row["trial"])

    rows.sort(key=key)
    rank = 0
    for row in rows:
        complete = row["state"] == "COMPLETE"
        rank += complete
        row["rank"] = rank if complete else None
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


def select(board: pd.DataFrame, direction: str, *, prefer_simple: bool = True
           ) -> tuple[int, str]:
    """(trial to refit, why): the best score, or — with ``prefer_simple`` — the best linear
    trial when it is within one standard error of the best (the one-standard-error rule: a
    difference inside cross-validation's noise is no reason for the more complex model, and a
    linear model is the easier one to explain, validate and serve)."""
    complete = board[board["state"] == "COMPLETE"]
    top = complete.iloc[0]
    reason = "best cross-validated score"
    linear = complete[complete["family"] == "linear"]
    if not prefer_simple or top["family"] == "linear" or linear.empty or top["folds"] < 2:
        return int(top["trial"]), reason
    se = float(top["score_std"]) / math.sqrt(int(top["folds"]) - 1)  # std (ddof=1) / sqrt(k)
    cand = linear.iloc[0]
    gap = abs(float(top["score"]) - float(cand["score"]))
    if gap <= se:
        return int(cand["trial"]), (
            f"one-standard-error rule: linear trial {int(cand['trial'])} is {gap:.4g} from "
            f"the best (trial {int(top['trial'])}, standard error {se:.4g})")
    return int(top["trial"]), reason
