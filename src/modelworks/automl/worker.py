"""One search worker: trials from the shared study until the deadline, each a tracked run.

``run_worker`` is the top-level function the executor runs (in-process, in a spawned
process, or on a Ray worker). Its payload is plain data: where the workspace is, which study,
which dataset version, and when to stop. Each worker opens the workspace itself and writes its
trials' runs as it goes (SQLite in WAL mode and PostgreSQL both take concurrent writers), so
runs appear while the search is on and a trial's run times are its own.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .metrics import METRICS, Metric, Task
from .space import build_model, suggest

__all__ = ["WorkerPayload", "cv_splits", "fold_score", "run_worker"]


@dataclass(frozen=True)
class WorkerPayload:
    """Everything a worker needs, picklable (the executor may send it to another machine)."""

    db_url: str
    artifacts: str
    storage_options: dict[str, Any]
    actor: str
    experiment: str
    parent_run_id: str
    study_name: str
    dataset: str
    dataset_version: int
    label: str
    task: Task
    metric: str
    families: tuple[str, ...]
    cv: int
    seed: int
    worker: int
    deadline: float  # epoch seconds: no trial starts after it, and running ones stop early
    max_trials: int | None
    n_jobs: int


def cv_splits(y: pd.Series, task: Task, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same folds for every trial (stratified for classification), so pruning compares
    like with like."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (KFold(cv, shuffle=True, random_state=seed) if task == "regression"
                else StratifiedKFold(cv, shuffle=True, random_state=seed))
    return list(splitter.split(np.zeros(len(y)), y))


def fold_score(model: Any, metric: Metric, x: pd.DataFrame, y: pd.Series) -> float:
    if metric.uses == "proba":
        return metric.score(y.to_numpy(), model.predict_proba(x), np.asarray(model.classes_))
    return metric.score(y.to_numpy(), model.predict(x))


class _Objective:
    """One trial: pick a family and parameters, cross-validate, report each fold."""

    def __init__(self, payload: WorkerPayload, ws: Any, frame: pd.DataFrame) -> None:
        self.p = payload
        self.ws = ws
        self.x = frame.drop(columns=[payload.label])
        self.y = frame[payload.label]
        self.metric = METRICS[payload.metric]
        self.splits = cv_splits(self.y, payload.task, payload.cv, payload.seed)
        self.may_stop_early = False  # True once some trial has completed: the guarantee is met

    def __call__(self, trial: Any) -> float:
        import optuna
        from threadpoolctl import threadpool_limits

        p = self.p
        family, params = suggest(trial, p.families, p.task)
        trial.set_user_attr("family", family)
        run = self.ws.start_run(p.experiment, name=f"trial-{trial.number}",
                                parent=p.parent_run_id, params={"family": family, **params},
                                tags={"automl.study": p.study_name,
                                      "automl.trial": trial.number, "automl.worker": p.worker})
        trial.set_user_attr("run_id", run.id)
        started = time.perf_counter()
        scores: list[float] = []
        state, error = "COMPLETE", None
        try:
            for k, (train, test) in enumerate(self.splits):
                spent = time.perf_counter() - started
                if k and self.may_stop_early and time.time() + spent / k > p.deadline:
                    trial.set_user_attr("stopped", "time budget")
                    raise optuna.TrialPruned("the time budget ran out")
                model = build_model(family, params, p.task, self.x, seed=p.seed, n_jobs=p.n_jobs)
                with threadpool_limits(limits=p.n_jobs):
                    model.fit(self.x.iloc[train], self.y.iloc[train])
                    scores.append(fold_score(model, self.metric, self.x.iloc[test],
                                             self.y.iloc[test]))
                if not math.isfinite(scores[-1]):
                    raise ValueError(f"the {p.metric} of fold {k} is not a number")
                trial.report(float(np.mean(scores)), k)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {k}")
            return float(np.mean(scores))
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        except Exception as exc:
            state, error = "FAIL", exc
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:1000])
            raise
        finally:
            seconds = time.perf_counter() - started
            trial.set_user_attr("scores", scores)
            trial.set_user_attr("seconds", seconds)
            self._record(run, scores, seconds, state, error)

    def _record(self, run: Any, scores: list[float], seconds: float, state: str,
                error: BaseException | None) -> None:
        metrics: list[tuple[str, float, int]] = [
            (f"cv_{self.p.metric}", s, k) for k, s in enumerate(scores)]
        if scores:
            metrics += [(f"cv_{self.p.metric}_mean", float(np.mean(scores)), 0),
                        (f"cv_{self.p.metric}_std", float(np.std(scores)), 0)]
        metrics.append(("seconds", seconds, 0))
        run.log_batch(metrics=metrics, tags={"automl.state": state})
        run.end("FAILED" if state == "FAIL" else "FINISHED", error=error)


def _finished(study: Any) -> tuple[int, int]:
    """(trials that have finished or are running, of which completed)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(
        TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING))
    return len(trials), sum(t.state == TrialState.COMPLETE for t in trials)


def run_worker(payload: WorkerPayload) -> int:
    """Run trials of ``payload.study_name`` until the deadline (or ``max_trials``); returns
    how many this worker ran. At least one trial of the study completes, however short the
    budget: a search always has a model to show."""
    import optuna

    from ..workspace import Workspace
    from .study import load_study

    verbosity = optuna.logging.get_verbosity()  # importing optuna set it: set it after
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are in their runs
    ws = Workspace(payload.db_url, artifacts=payload.artifacts, user=payload.actor,
                   storage_options=payload.storage_options)
    ran = 0
    try:
        frame = ws.load_dataset(payload.dataset, payload.dataset_version)
        objective = _Objective(payload, ws, frame)
        study = load_study(payload.db_url, payload.study_name,
                           seed=payload.seed + 1000 * payload.worker)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and feature-name chatter per fold
            while True:
                started, completed = _finished(study)
                objective.may_stop_early = completed > 0
                if payload.max_trials is not None and started >= payload.max_trials:
                    break
                if completed and time.time() >= payload.deadline:
                    break
                study.optimize(objective, n_trials=1, catch=(Exception,))
                ran += 1
    finally:
        ws.close()
        optuna.logging.set_verbosity(verbosity)
    return ran
