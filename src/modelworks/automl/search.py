"""The AutoML driver: check the input, start the study, fan workers out, refit, register.

The driver opens a parent run, snapshots the training frame as a dataset version (the
workers read it from the artifact store, and the registered model's lineage points at it),
creates the Optuna study in the metadata database with each family's default enqueued, and
submits one ``run_worker`` per executor slot. When the workers are done it refits the best
trial on all the training rows and registers it with the frame's signature.

``time_budget_s`` is wall time for the whole call. Workers stop starting trials at
``budget - reserve`` (the reserve, a tenth of the budget between 0.5 s and 60 s, pays for the
refit and registration) and cut a running trial short when its next fold would overrun; at
least one trial always completes, so a tiny budget on large data can overrun.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InvalidInput, ModelworksError
from ..records import DatasetVersion
from .leaderboard import leaderboard, select
from .metrics import Metric, Task, infer_task, resolve_metric
from .space import build_model, resolve_families, unprefixed, warm_starts
from .worker import WorkerPayload, run_worker

if TYPE_CHECKING:
    from ..registry import ModelVersion
    from ..tracking.active_run import ActiveRun
    from ..workspace import Workspace

__all__ = ["AutoMLResult", "automl", "read_training_data"]

DEFAULT_EXPERIMENT = "automl"
_POLL_S = 0.5
_INPUT_EXAMPLE_ROWS = 5


@dataclass
class AutoMLResult:
    """What a search found. ``model_version`` is None when registration was turned off."""

    leaderboard: pd.DataFrame
    best_score: float
    best_params: dict[str, Any]
    best_family: str
    best_trial: int
    best_model: Any
    model_version: ModelVersion | None
    metric: str
    direction: str
    task: str
    study_name: str
    parent_run_id: str
    seconds: float
    workers: int
    executor: str
    selection: str = "best cross-validated score"
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self, *, top: int | None = None) -> dict[str, Any]:
        """JSON-ready summary (the leaderboard's first ``top`` rows)."""
        board = self.leaderboard if top is None else self.leaderboard.head(top)
        rows = [{k: (None if pd.isna(v) else v) if not isinstance(v, dict) else v
                 for k, v in row.items()} for row in board.to_dict(orient="records")]
        return {
            "best_score": self.best_score, "best_family": self.best_family,
            "best_trial": self.best_trial, "best_params": self.best_params,
            "selection": self.selection,
            "metric": self.metric, "direction": self.direction, "task": self.task,
            "model": self.model_version.uri if self.model_version else None,
            "study": self.study_name, "parent_run_id": self.parent_run_id,
            "seconds": round(self.seconds, 2), "executor": self.executor,
            "workers": self.workers, "trials": self.counts, "leaderboard": rows,
        }


def read_training_data(ws: Workspace, data: Any) -> tuple[pd.DataFrame, DatasetVersion | None]:
    """A frame from a DataFrame, a dataset version, ``dataset:NAME[:V]``, or a CSV/Parquet
    path (the version too when the data is already one)."""
    if isinstance(data, pd.DataFrame):
        return data, None
    if isinstance(data, DatasetVersion):
        return ws.load_dataset(data), data
    if isinstance(data, str) and data.startswith("dataset:"):
        name, _, version = data[len("dataset:"):].partition(":")
        if version and not version.isdigit():
            raise InvalidInput(f"dataset version must be a number, got {version!r}",
                               field="train_df")
        dv = ws.get_dataset(name, int(version) if version else None)
        return ws.load_dataset(dv), dv
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise InvalidInput(f"no data file at {str(path)!r}", field="train_df")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return pd.read_csv(path), None
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path), None
        raise InvalidInput(f"data file {path.name!r} is neither .csv nor .parquet",
                           field="train_df")
    raise InvalidInput("train_df must be a DataFrame, a dataset version, dataset:NAME[:V] "
                       "or a CSV/Parquet path", field="train_df")


def _check_label(frame: pd.DataFrame, label: str) -> pd.Series:
    if not isinstance(label, str) or label not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:10]))
        raise InvalidInput(f"label column {label!r} is not in the data (columns: {shown})",
                           field="label")
    y = frame[label]
    if y.nunique(dropna=True) < 2:
        raise InvalidInput(f"label column {label!r} is constant: nothing to learn",
                           field="label")
    if frame.shape[1] < 2:
        raise InvalidInput("the data has no feature columns besides the label", field="label")
    return y


def _check_numbers(time_budget_s: float, cv: int, max_trials: int | None) -> None:
    if isinstance(time_budget_s, bool) or not isinstance(time_budget_s, int | float) \
            or not 0 < time_budget_s < math.inf:
        raise InvalidInput(f"time_budget_s must be a positive number of seconds, got "
                           f"{time_budget_s!r}", field="time_budget_s")
    if isinstance(cv, bool) or not isinstance(cv, int) or not 2 <= cv <= 20:
        raise InvalidInput(f"cv must be an integer from 2 to 20, got {cv!r}", field="cv")
    if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(
            max_trials, int) or max_trials < 1):
        raise InvalidInput(f"max_trials must be a positive integer, got {max_trials!r}",
                           field="max_trials")


def _check_folds(y: pd.Series, task: Task, cv: int) -> None:
    if len(y) < 2 * cv:
        raise InvalidInput(f"{len(y)} rows are too few for {cv}-fold cross-validation",
                           field="train_df")
    if task != "regression":
        counts = y.value_counts()
        if counts.min() < cv:
            raise InvalidInput(f"label class {counts.idxmin()!r} has {counts.min()} row(s); "
                               f"each class needs at least cv={cv}", field="cv")


def default_model_name(label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "model"
    return f"{slug[:120]}-automl"


def _search(ex: Any, payloads: list[WorkerPayload], progress: Callable[[], None] | None
            ) -> list[Future[Any]]:
    """Submit every worker; with ``progress``, submit from a thread (the local executor runs
    at submit) and call it every half second until all are done."""
    futures: list[Future[Any]] = []
    if progress is None:
        futures.extend(ex.submit(run_worker, p) for p in payloads)
        for future in futures:
            future.exception()  # wait; errors are read by the caller
        return futures
    submitter = threading.Thread(
        target=lambda: futures.extend(ex.submit(run_worker, p) for p in payloads),
        name="automl-submit", daemon=True)
    submitter.start()
    while submitter.is_alive() or not all(f.done() for f in futures):
        time.sleep(_POLL_S)
        progress()
    submitter.join()
    return futures


def _close_stragglers(ws: Workspace, study: Any) -> None:
    """Trials a lost worker left RUNNING become FAIL, and so do their runs."""
    from optuna.trial import TrialState

    from ..tracking import runs as _runs

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        run_id = trial.user_attrs.get("run_id")
        if run_id and ws.get_run(run_id).status == "RUNNING":
            _runs.end_run(ws.ctx, run_id, status="FAILED", error="its worker was lost")


def automl(
    ws: Workspace,
    train_df: Any,
    *,
    label: str,
    task: str | None = None,
    metric: str | None = None,
    time_budget_s: float = 120,
    executor: Any = "local",
    workers: int | None = None,
    cv: int = 5,
    seed: int = 0,
    register_as: str | None = None,
    register: bool = True,
    families: Sequence[str] | None = None,
    max_trials: int | None = None,
    n_jobs: int | None = None,
    experiment: str | None = None,
    prefer_simple: bool = True,
    progress: Callable[[pd.DataFrame], None] | None = None,
) -> AutoMLResult:
    """Search model families and hyperparameters; refit and register the best (see module)."""
    from ..pipelines.executors import default_workers, get_executor
    from ..registry.uri import validate_model_name
    from .study import create_study, load_study

    started = time.time()
    try:
        import optuna  # noqa: F401
    except ImportError as exc:
        raise ModelworksError("AutoML needs Optuna: pip install 'modelworks[automl]'") from exc
    _check_numbers(time_budget_s, cv, max_trials)
    frame, version = read_training_data(ws, train_df)
    y = _check_label(frame, label)
    if y.isna().any():
        frame = frame.loc[y.notna()].reset_index(drop=True)
        y, version = frame[label], None
    kind = infer_task(y, task)
    scorer: Metric = resolve_metric(metric, kind, y)
    chosen = resolve_families(families, kind, y)
    _check_folds(y, kind, cv)
    model_name = register_as if register_as is not None else default_model_name(label)
    if register:
        validate_model_name(model_name)
    reserve = min(max(0.1 * time_budget_s, 0.5), 60.0)

    with get_executor(executor, workers=workers, settings=ws.settings) as ex, \
            ws.start_run(experiment or DEFAULT_EXPERIMENT, name=f"automl-{model_name}") as parent:
        n_workers = ex.workers
        threads = n_jobs if n_jobs is not None else (
            1 if ex.name == "ray" else max(1, default_workers() // n_workers))
        if version is None:  # a model name may start with "_" or "."; a dataset's may not
            prefix = "" if model_name[0].isalnum() else "automl-"
            version = ws.log_dataset(frame, name=f"{prefix}{model_name}-train", source="automl")
        parent.use_dataset(version, role="train")
        study_name = f"automl-{parent.id}"
        parent.log_params({
            "label": label, "task": kind, "metric": scorer.name, "direction": scorer.direction,
            "time_budget_s": time_budget_s, "cv": cv, "seed": seed, "executor": ex.name,
            "workers": n_workers, "n_jobs": threads, "families": ",".join(chosen),
            "max_trials": max_trials, "rows": len(frame)})
        parent.set_tags({"automl.study": study_name})
        create_study(ws.location.db_url, study_name, direction=scorer.direction, seed=seed,
                     warm_starts=warm_starts(chosen, kind),
                     user_attrs={"label": label, "task": kind, "metric": scorer.name,
                                 "parent_run_id": parent.id})
        deadline = started + time_budget_s - reserve
        payloads = [WorkerPayload(
            db_url=ws.location.db_url, artifacts=ws.artifacts.url,
            storage_options=ws.artifacts.storage_options, actor=ws.actor,
            experiment=parent.experiment, parent_run_id=parent.id, study_name=study_name,
            dataset=version.name, dataset_version=version.version, label=label, task=kind,
            metric=scorer.name, families=tuple(chosen), cv=cv, seed=seed, worker=i,
            deadline=deadline, max_trials=max_trials, n_jobs=threads)
            for i in range(n_workers)]
        study = load_study(ws.location.db_url, study_name, seed=seed)

        def show() -> None:
            assert progress is not None
            progress(leaderboard(study.get_trials(deepcopy=False), scorer.direction))

        futures = _search(ex, payloads, show if progress is not None else None)
        _close_stragglers(ws, study)
        errors = [f.exception() for f in futures if f.exception() is not None]
        board = leaderboard(study.get_trials(deepcopy=False), scorer.direction)
        if progress is not None:
            progress(board)
        complete = board[board["state"] == "COMPLETE"]
        if complete.empty:
            why = (f"every worker failed; the first: {errors[0]}" if errors else
                   "every trial failed or was pruned; see the trial runs' errors")
            raise ModelworksError(f"the search found no model: {why}")
        return _finish(ws, parent, study, board, frame, label, kind, scorer,
                       register=register, model_name=model_name, seed=seed, started=started,
                       executor=ex.name, n_workers=n_workers, errors=errors,
                       prefer_simple=prefer_simple)


def _signature(x: pd.DataFrame) -> Any:
    """The training frame's signature, every column nullable: each family imputes or keeps
    missing values, so a gap the training rows happened not to have is no reason to refuse."""
    from ..registry.signatures import infer_signature

    sig = infer_signature(x)
    return sig.model_copy(update={"inputs": [c.model_copy(update={"nullable": True})
                                             for c in sig.inputs]})


def _finish(ws: Workspace, parent: ActiveRun, study: Any, board: pd.DataFrame,
            frame: pd.DataFrame, label: str, kind: Task, scorer: Metric, *, register: bool,
            model_name: str, seed: int, started: float, executor: str, n_workers: int,
            errors: list[BaseException | None], prefer_simple: bool) -> AutoMLResult:
    """Refit the chosen trial on every row, register it, and close the parent run's record."""
    from threadpoolctl import threadpool_limits

    number, selection = select(board, scorer.direction, prefer_simple=prefer_simple)
    best = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    family, params = unprefixed(best.params)
    x = frame.drop(columns=[label])
    model = build_model(family, params, kind, x, seed=seed, n_jobs=-1)
    with threadpool_limits(limits=None):
        model.fit(x, frame[label])
    version = None
    if register:
        version = ws.register_model(
            model_name, model=model, run=parent, input_example=x.head(_INPUT_EXAMPLE_ROWS),
            signature=_signature(x),
            description=f"AutoML: {family}, cross-validated {scorer.name} "
                        f"{best.value:.4f} (study {study.study_name})",
            tags={"automl.study": study.study_name})
    counts = {state.lower(): int((board["state"] == state).sum())
              for state in ("COMPLETE", "PRUNED", "FAIL")}
    seconds = time.time() - started
    parent.log_batch(
        metrics=[(f"best_{scorer.name}", float(best.value), 0), ("seconds", seconds, 0),
                 *((f"trials_{k}", float(v), 0) for k, v in counts.items())],
        tags={"automl.best_trial": best.number, "automl.best_family": family,
              "automl.selection": selection,
              "automl.best_run": best.user_attrs.get("run_id", ""),
              **({"automl.worker_errors": "; ".join(str(e) for e in errors)[:2000]}
                 if errors else {}),
              **({"automl.model": version.uri} if version else {})})
    return AutoMLResult(
        leaderboard=board, best_score=float(best.value), best_params=params,
        best_family=family, best_trial=best.number, best_model=model,
        model_version=version, metric=scorer.name, direction=scorer.direction, task=kind,
        study_name=study.study_name, parent_run_id=parent.id, seconds=seconds,
        workers=n_workers, executor=executor, selection=selection, counts=counts)
