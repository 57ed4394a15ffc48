"""Many models: one trainer fanned out over the groups of a frame, one registered model each.

Groups are sent to the executor in chunks (a task per chunk, not per group), so a thousand
small models do not pay a task's overhead a thousand times. Workers fit, serialise and write
the bytes to the artifact store (a batch at a time, flushed to disk together); the driver
alone writes the database: each chunk's registrations in one transaction of a few
multi-row statements (one writer, few commits). A group that fails — the trainer raised, returned
something the registry cannot save, or its name collides — is reported in the summary and
the other groups go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InvalidInput
from ..registry.uri import MODEL_NAME_RULE, validate_model_name
from .executors import Executor, get_executor

if TYPE_CHECKING:
    from ..store.artifacts import ArtifactStore
    from ..tracking.active_run import ActiveRun
    from ..workspace import Workspace

__all__ = ["SUMMARY_COLUMNS", "group_model_name", "train_chunk", "train_many"]

SUMMARY_COLUMNS = ["group", "model", "version", "status", "error", "seconds"]
_NAME_MAX = 128
_PREFIX_MAX = 100  # leaves room for "-<group>"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_CHUNKS_PER_WORKER = 4  # enough to balance uneven groups, few enough to amortise a task
_STORE_BATCH = 64  # models whose bytes are written (and flushed to disk) together
_MISSING = object()  # the summary key of rows without a group value
_log = logging.getLogger("modelworks")


def group_model_name(name_prefix: str, value: Any) -> str:
    """``<name_prefix>-<value>`` with the value made a valid model name.

    Runs of characters a model name cannot hold become ``_`` ("New York" -> "New_York");
    a name past 128 characters is cut and ends in a hash of the value, so it stays unique.
    """
    part = _UNSAFE.sub("_", str(value)).strip("_") or "_"
    name = f"{name_prefix}-{part}"
    if len(name) > _NAME_MAX:
        digest = hashlib.sha256(str(value).encode()).hexdigest()[:10]
        name = f"{name[:_NAME_MAX - 11]}-{digest}"
    return name


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # an array-like value
        return False


def _features(model: Any, frame: pd.DataFrame, group_by: str) -> list[str]:
    """The columns the model was fitted on when it says so (scikit-learn's
    ``feature_names_in_``), else every column but the group column."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None and all(isinstance(n, str) and n in frame.columns for n in names):
        return list(names)
    return [c for c in frame.columns if c != group_by]


def _check_fitted(model: Any) -> None:
    try:
        from sklearn.base import BaseEstimator
        from sklearn.utils.validation import check_is_fitted
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return
    if isinstance(model, BaseEstimator):
        check_is_fitted(model)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def train_chunk(trainer: Callable[[Any, pd.DataFrame], Any],
                groups: Sequence[tuple[Any, pd.DataFrame]], *, group_by: str,
                example_rows: int, serialise: bool,
                artifacts: tuple[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Fit and serialise one chunk of groups (runs on a worker; no database access).

    Each fit gets one BLAS/OpenMP thread: many small fits side by side beat one fit on many
    threads, and ``workers`` processes each spinning up all cores would oversubscribe them.
    With ``artifacts`` (the store's URL and storage options) the saved bytes are written
    to the store here, in parallel, and only their ref travels back.

    Returns one dict per group: ``status`` ``ok`` with the bytes (or their ``sha256`` and
    ``size``), format, signature and example rows, or ``failed`` with ``error``. Never
    raises for a group's failure.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _train_chunk(trainer, groups, group_by=group_by, example_rows=example_rows,
                            serialise=serialise, artifacts=artifacts)


def _signature(frame: pd.DataFrame, names: list[str],
               cache: dict[tuple[Any, ...], dict[str, Any]]) -> dict[str, Any]:
    """The signature of ``frame[names]``, inferred once per column layout in a chunk.

    Groups of one frame share their columns and dtypes, so for plain numeric, boolean and
    datetime columns the signature differs only in which columns have missing values
    (read here without building ``frame[names]``, which costs more than the check);
    object and categorical columns (classified by their values) are inferred every time.
    """
    from ..registry.signatures import infer_signature

    dtypes = dict(zip(frame.columns, frame.dtypes.tolist(), strict=True))
    if not all(n in dtypes and dtypes[n].kind in "biufmM" for n in names):
        return infer_signature(frame[names]).model_dump(mode="json")
    missing = dict(zip(frame.columns, frame.isna().to_numpy().any(axis=0).tolist(), strict=True))
    key = (tuple(names), tuple(str(dtypes[n]) for n in names), tuple(missing[n] for n in names))
    if key not in cache:
        cache[key] = infer_signature(frame[names]).model_dump(mode="json")
    return cache[key]


def _train_chunk(trainer: Callable[[Any, pd.DataFrame], Any],
                 groups: Sequence[tuple[Any, pd.DataFrame]], *, group_by: str,
                 example_rows: int, serialise: bool,
                 artifacts: tuple[str, dict[str, Any]] | None) -> list[dict[str, Any]]:
    from ..registry.formats import get_format, save_model
    from ..store.artifacts import ArtifactStore

    store = ArtifactStore(artifacts[0], storage_options=artifacts[1]) if artifacts else None
    signatures: dict[tuple[Any, ...], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # saved, bytes not yet in the store
    for value, frame in groups:
        started = time.perf_counter()
        item: dict[str, Any] = {"group": value}
        try:
            model = trainer(value, frame)
            item["seconds"] = time.perf_counter() - started
            if model is None:
                raise InvalidInput("the trainer returned None, not a fitted model",
                                   field="trainer")
            _check_fitted(model)
            if serialise:
                saved = save_model(model)
                names = _features(model, frame, group_by)
                signature = _signature(frame, names, signatures)
                rows = json.loads(frame.head(example_rows)[names].to_json(
                    orient="records", date_format="iso")) if example_rows else None
                item.update(
                    data=saved.data, format=saved.format, library=saved.library,
                    library_version=saved.library_version,
                    executes_code=get_format(saved.format).executes_code_on_load,
                    signature=signature, input_example=rows)
            item["status"] = "ok"
        except Exception as exc:
            item.setdefault("seconds", time.perf_counter() - started)
            item.update(status="failed", error=_error(exc),
                        traceback="".join(traceback.format_exception(exc)))
        out.append(item)
        if store is not None and "data" in item:
            pending.append(item)
            if len(pending) >= _STORE_BATCH:
                _store(store, pending)
    if store is not None:
        _store(store, pending)
    return out


def _store(store: ArtifactStore, pending: list[dict[str, Any]]) -> None:
    """Write the pending items' bytes to the store; only their refs travel on."""
    try:
        refs = store.put_many([item["data"] for item in pending])
    except Exception as exc:
        for item in pending:
            del item["data"]
            item.update(status="failed", error=_error(exc),
                        traceback="".join(traceback.format_exception(exc)))
    else:
        for item, ref in zip(pending, refs, strict=True):
            del item["data"]
            item.update(sha256=ref.sha256, size=ref.size)
    pending.clear()


def _validate(df: Any, group_by: Any, trainer: Any, name_prefix: Any,
              input_example_rows: Any) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(f"df must be a pandas DataFrame, got {type(df).__name__}",
                           field="df")
    if not isinstance(group_by, str) or group_by not in df.columns:
        listing = ", ".join(map(str, list(df.columns)[:20]))
        raise InvalidInput(f"group_by {group_by!r} is not a column of df (columns: {listing})",
                           field="group_by")
    if df.empty:
        raise InvalidInput("df has no rows: there is nothing to train", field="df")
    if not callable(trainer):
        raise InvalidInput("trainer must be a function (group_value, group_df) -> fitted model",
                           field="trainer")
    if not isinstance(name_prefix, str) or len(name_prefix) > _PREFIX_MAX:
        raise InvalidInput(f"name_prefix must be a string of at most {_PREFIX_MAX} characters",
                           field="name_prefix")
    try:
        validate_model_name(name_prefix)
        if not name_prefix[0].isalnum():  # it also names the run's experiment
            raise InvalidInput("starts with a letter or digit")
    except InvalidInput:
        raise InvalidInput(f"invalid name_prefix {name_prefix!r}: start with a letter or "
                           f"digit, then use {MODEL_NAME_RULE}",
                           field="name_prefix") from None
    if (isinstance(input_example_rows, bool) or not isinstance(input_example_rows, int)
            or input_example_rows < 0):
        raise InvalidInput("input_example_rows must be an integer >= 0",
                           field="input_example_rows")


def _chunks(items: list[tuple[Any, pd.DataFrame]], workers: int
            ) -> Iterator[list[tuple[Any, pd.DataFrame]]]:
    size = max(1, -(-len(items) // (workers * _CHUNKS_PER_WORKER)))
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _plan(df: pd.DataFrame, group_by: str, name_prefix: str
          ) -> tuple[dict[Any, dict[str, Any]], list[tuple[Any, pd.DataFrame]]]:
    """One summary row per group (failed until proven otherwise), and the groups to train."""
    rows: dict[Any, dict[str, Any]] = {}
    missing = df[group_by].isna()
    items = list(df[~missing].groupby(group_by, sort=True, observed=True))
    by_name: dict[str, list[Any]] = {}
    for value, _ in items:
        by_name.setdefault(group_model_name(name_prefix, value), []).append(value)
    todo: list[tuple[Any, pd.DataFrame]] = []
    for value, frame in items:
        name = group_model_name(name_prefix, value)
        rows[value] = {"group": value, "model": name, "status": "failed", "seconds": 0.0,
                       "error": None}
        if len(by_name[name]) > 1:
            rows[value]["error"] = (f"groups {', '.join(map(repr, by_name[name]))} all map "
                                    f"to model name {name!r}")
        else:
            todo.append((value, frame))
    if missing.any():  # reported, as pandas' groupby would silently drop them
        rows[_MISSING] = {"group": None, "model": None, "status": "failed", "seconds": 0.0,
                          "error": f"{int(missing.sum())} rows have no {group_by} value"}
    return rows, todo


def _check_picklable(trainer: Any, ex: Executor) -> None:
    if ex.name != "processes":  # local needs nothing; Ray pickles lambdas and closures too
        return
    try:
        pickle.dumps(trainer)
    except Exception as exc:
        raise InvalidInput(f"trainer cannot be sent to worker processes ({_error(exc)}): "
                           "use a top-level function", field="trainer") from None


def train_many(ws: Workspace, df: pd.DataFrame, *, group_by: str,
               trainer: Callable[[Any, pd.DataFrame], Any], name_prefix: str,
               executor: str | Executor = "local", workers: int | None = None,
               input_example_rows: int = 5, register: bool = True) -> pd.DataFrame:
    """Fit ``trainer(group_value, group_df)`` per group and register each model.

    See :meth:`modelworks.Workspace.train_many`; returns the summary frame
    (:data:`SUMMARY_COLUMNS`), one row per group in group order.
    """
    _validate(df, group_by, trainer, name_prefix, input_example_rows)
    rows, todo = _plan(df, group_by, name_prefix)
    params = {"group_by": group_by, "groups": len(rows), "register": register,
              "executor": str(getattr(executor, "name", executor))}
    with get_executor(executor, workers=workers, settings=ws.settings) as ex:
        _check_picklable(trainer, ex)
        if ex.remote and ws.ctx.artifacts.is_local:
            raise InvalidInput(f"the artifact root {ws.ctx.artifacts.url} is a local folder, "
                               "which a cluster's workers cannot write to: use object storage "
                               "(s3://, gs://, abfs://) for the workspace's artifacts",
                               field="artifacts")
        with ws.start_run(name_prefix, name="train_many", params=params) as run:
            _run(ws, ex, run, trainer, rows, todo, group_by=group_by,
                 example_rows=input_example_rows, register=register)
    summary = pd.DataFrame(list(rows.values()), columns=SUMMARY_COLUMNS)
    summary["version"] = summary["version"].astype("Int64")
    return summary


def _run(ws: Workspace, ex: Executor, run: ActiveRun,
         trainer: Callable[[Any, pd.DataFrame], Any], rows: dict[Any, dict[str, Any]],
         todo: list[tuple[Any, pd.DataFrame]], *, group_by: str, example_rows: int,
         register: bool) -> None:
    """Fan the chunks out, register each as it comes back, fill in ``rows``."""
    from ._many_register import register_batch

    store = ws.ctx.artifacts
    artifacts = (store.url, store.storage_options)
    chunks: dict[Future[list[dict[str, Any]]], list[Any]] = {
        ex.submit(train_chunk, trainer, chunk, group_by=group_by,
                  example_rows=example_rows, serialise=register, artifacts=artifacts):
        [value for value, _ in chunk]
        for chunk in _chunks(todo, ex.workers)}
    for future in as_completed(chunks):
        try:
            results = future.result()
        except Exception as exc:  # the task itself failed (a worker died, pickling)
            for value in chunks[future]:
                rows[value]["error"] = f"the task failed: {_error(exc)}"
            continue
        ok: list[tuple[str, dict[str, Any]]] = []
        for item in results:
            row = rows[item["group"]]
            row["seconds"] = item.get("seconds", 0.0)
            if item["status"] == "failed":
                row["error"] = item["error"]
                _log.debug("train_many: group %r failed\n%s", item["group"], item.get("traceback"))
            elif register:
                ok.append((row["model"], item))
            else:
                row["status"] = "trained"
        for value, version, error in register_batch(ws.ctx, ok, run_id=run.id,
                                                    group_by=group_by):
            rows[value].update(version=version, error=error,
                               status="failed" if error else "registered")
    failed = sum(row["status"] == "failed" for row in rows.values())
    run.log_metrics({"groups_ok": len(rows) - failed, "groups_failed": failed})
