"""Loaded model versions, lazily, in an LRU cache bounded by a memory budget.

One copy per version per worker process. Aliases are resolved through the registry and
refreshed behind the traffic every ``alias_ttl`` seconds (``refresh.py``), so a moved alias is
served within a few seconds without a restart and without a database read per request. A
version's memory is estimated from its artifact's size (the serialised arrays are what a
scikit-learn, LightGBM or XGBoost model holds in memory); the budget evicts the least recently
used versions first, never the one just loaded.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..context import Context
from ..errors import InvalidInput, NotFound
from ..registry.loading import LoadedModel, load
from ..registry.records import ModelVersion
from ..registry.uri import ModelRef
from .inputs import matrix_plan, numeric_signature, rows_to_matrix
from .refresh import Refreshing

if TYPE_CHECKING:
    from .compiled_pipeline import CompiledPipeline

__all__ = ["CacheStats", "ModelCache", "ServedModel"]

LogFilter = Callable[[dict[str, Any]], dict[str, Any]]

# Tree ensembles whose predict runs an OpenMP parallel region.
_OPENMP_MODULES = ("sklearn.ensemble._hist_gradient_boosting", "lightgbm", "xgboost")
_ONE_THREAD_ROWS = 1_000  # requests up to this size predict on one OpenMP thread
_controller: Any = None


def _estimators(model: Any) -> list[Any]:
    """The model and, for a scikit-learn Pipeline, each of its steps."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list):
        return [model, *(step for _, step in steps if step not in (None, "passthrough"))]
    return [model]


def _predicts_argmax(model: Any) -> bool:
    """Whether ``predict`` is the argmax of ``predict_proba`` but where the top is tied.

    True of scikit-learn's single-output forests, whose ``predict`` is
    ``classes_.take(argmax(predict_proba))``, and of histogram gradient boosting classifiers,
    whose probabilities are a monotone function (sigmoid, softmax) of the raw scores their
    ``predict`` takes the argmax of — so the two agree wherever the top probability is not
    tied, and rounding can only ever make a tie. Also as a Pipeline's last step. For them,
    asking for both walks the trees twice: :meth:`ServedModel.predict` walks once and asks
    ``predict`` again only for tied rows.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.ensemble._forest import ForestClassifier
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    final = _estimators(model)[-1]
    if getattr(model, "classes_", None) is None:
        return False
    if isinstance(final, ForestClassifier):
        return (getattr(final, "n_outputs_", 0) == 1
                and type(final).predict is ForestClassifier.predict
                and type(final).predict_proba is ForestClassifier.predict_proba)
    return (isinstance(final, HistGradientBoostingClassifier)
            and type(final).predict is HistGradientBoostingClassifier.predict
            and type(final).predict_proba is HistGradientBoostingClassifier.predict_proba)


def _uses_openmp(model: Any) -> bool:
    return any(type(est).__module__.startswith(_OPENMP_MODULES) for est in _estimators(model))


def _one_openmp_thread() -> Any:
    """A context limiting the calling thread's OpenMP team to one thread.

    Every thread that enters an OpenMP region gets a team of helper threads, which spin
    waiting for more work after it: on the server they compete with the event loop (and
    with each other, one team per thread of the pool), and a one-row HistGradientBoosting
    answer took 4.6 ms on a 2-core machine against 0.5 ms in a bare loop. A small request
    gains nothing from more threads; with one there is no team. The controller scans the
    loaded libraries once; each limit then costs ~9 µs, paid only by models using OpenMP.
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="openmp")


def _rows(data: Any, mask: Any) -> Any:
    return data.loc[mask] if hasattr(data, "loc") else data[mask]


class ServedModel:
    """A loaded version ready for requests: the fast matrix path when the model allows it.

    The fast path is taken for scikit-learn models whose signature is all numeric and whose
    predictions on the stored input example are identical from a NumPy matrix and from the
    checked DataFrame; other models get the DataFrame built by ``check_input``.
    """

    def __init__(self, loaded: LoadedModel, log_filter: LogFilter | None = None) -> None:
        self.loaded = loaded
        self.version: ModelVersion = loaded.version
        self.name = loaded.version.name
        self.number = loaded.version.version
        self.signature = loaded.signature
        self.columns = [c.name for c in self.signature.inputs] if self.signature else None
        self.model = loaded.model
        self.has_proba = hasattr(self.model, "predict_proba")
        classes = getattr(self.model, "classes_", None)
        self.classes = None if classes is None else np.asarray(classes).tolist()
        self.log_filter = log_filter
        self.size = max(int(loaded.version.size), 1)
        self._predict: Callable[[Any], Any] = self.model.predict
        self._proba: Callable[[Any], Any] | None = getattr(self.model, "predict_proba", None)
        self._plan = (matrix_plan(self.signature) if self.signature is not None
                      and numeric_signature(self.signature) else None)
        self.fast = self._enable_fast_path()
        self._compiled = (self._compile_pipeline()
                          if not self.fast and self.version.format == "sklearn" else None)
        self._argmax = _predicts_argmax(self.model)
        # (transforms, final step): answers with probabilities transform once
        self._split: tuple[Any, Any] | None = None
        if self._compiled is not None:
            self._split = (self._compiled, self._compiled.final)
        elif self._proba == getattr(self.model, "predict_proba", None):  # not compiled linear
            self._split = _pipeline_split(self.model)
        self._openmp = _uses_openmp(self.model)
        self.loaded_at = time.time()

    def _compile(self) -> None:
        """Plain NumPy predict/predict_proba for linear models, when provably identical.

        scikit-learn's per-call validation (array-API dispatch, finiteness, dtype checks)
        costs several times the arithmetic of a one-row linear prediction; the fast path has
        already checked every value, so the arithmetic alone is what remains. The compiled
        functions are kept only if they reproduce the model's own predictions exactly (and
        its probabilities to 1e-12) on the input example and perturbed copies of it.
        """
        from .compiled import compile_linear

        assert self.signature is not None and self.version.input_example
        probe = rows_to_matrix(self.version.input_example, self.signature)
        compiled = compile_linear(self.model, probe)
        if compiled is not None:
            self._predict, self._proba = compiled

    def _compile_pipeline(self) -> CompiledPipeline | None:
        """NumPy preprocessing for a ``Pipeline(ColumnTransformer, final)`` on checked
        frames, when provably identical (see ``compiled_pipeline``)."""
        from .compiled_pipeline import compile_pipeline

        compiled = compile_pipeline(self.model, self.signature, self.version.input_example)
        if compiled is not None:
            self._predict = compiled.predict
            if compiled.final.predict_proba is not None:
                self._proba = compiled.predict_proba
        return compiled

    def _enable_fast_path(self) -> bool:
        if self.version.format != "sklearn" or not numeric_signature(self.signature):
            return False
        example = self.version.input_example
        assert self.signature is not None
        if not example:
            return False
        stripped: list[tuple[Any, Any]] = []
        try:
            expected = np.asarray(self.loaded.predict(example))
            # Names were checked against the signature already; without feature_names_in_
            # scikit-learn skips its own per-call name check (and its warning for arrays).
            # Only fitted attributes: a Pipeline's feature_names_in_ is a read-only property
            # over its first step, which is stripped itself.
            stripped = [(est, est.feature_names_in_) for est in _estimators(self.model)
                        if "feature_names_in_" in vars(est)]
            for est, _ in stripped:
                del est.feature_names_in_
            got = np.asarray(self.model.predict(rows_to_matrix(example, self.signature)))
        except Exception:  # the model needs its DataFrame: keep the safe path
            self._restore(stripped)
            return False
        if got.shape != expected.shape or not np.array_equal(got, expected):
            self._restore(stripped)
            return False
        self._compile()
        return True

    @staticmethod
    def _restore(stripped: list[tuple[Any, Any]]) -> None:
        for est, names in stripped:
            est.feature_names_in_ = names

    def inputs(self, rows: list[dict[str, Any]]) -> Any:
        """What the model takes: a checked matrix (fast path) or a checked DataFrame."""
        if self.fast:
            assert self.signature is not None
            return rows_to_matrix(rows, self.signature, self._plan)
        from ..registry.signatures import check_input

        if self.signature is None:
            import pandas as pd

            return pd.DataFrame(rows)
        return check_input(self.signature, rows)

    def predict(self, data: Any, *, proba: bool = False) -> tuple[list[Any], list[Any] | None]:
        if self._openmp and len(data) <= _ONE_THREAD_ROWS:
            with _one_openmp_thread():
                return self._answer(data, proba)
        return self._answer(data, proba)

    def _answer(self, data: Any, proba: bool) -> tuple[list[Any], list[Any] | None]:
        if not proba:
            return _as_list(self._predict(data)), None
        if self._proba is None:
            raise InvalidInput(f"{self.version.uri} has no class probabilities",
                               field="probabilities")
        predict, predict_proba = self._predict, self._proba
        if self._split is not None:  # the pipeline's transforms once, not once per answer
            head, final = self._split
            data = head.transform(data)
            predict, predict_proba = final.predict, final.predict_proba
        got = np.asarray(predict_proba(data))
        if not self._argmax:
            return _as_list(predict(data)), got.tolist()
        # predict is this argmax (see _predicts_argmax): one pass over the trees, not two
        labels = self.model.classes_.take(np.argmax(got, axis=1))
        tied = (got == got.max(axis=1, keepdims=True)).sum(axis=1) > 1
        if tied.any():  # where the top is tied, the model's own predict decides
            labels = labels.copy()
            labels[tied] = np.asarray(predict(_rows(data, tied)))
        return labels.tolist(), got.tolist()


def _as_list(predictions: Any) -> list[Any]:
    return predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)


def _pipeline_split(model: Any) -> tuple[Any, Any] | None:
    """(the transforms, the final step) of a plain scikit-learn Pipeline ending in a
    classifier: its predict and predict_proba are the final step's on ``transforms.transform
    (X)``, so an answer with probabilities transforms the input once instead of twice (for a
    ColumnTransformer with encoders, most of the time of a one-row answer)."""
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None
    if type(model) is not Pipeline or len(model.steps) < 2:
        return None
    final = model.steps[-1][1]
    if final in (None, "passthrough") or not hasattr(final, "predict_proba"):
        return None
    return model[:-1], final


@dataclass
class CacheStats:
    loaded: int
    bytes: int
    loads: int
    evictions: int
    budget_bytes: int


class ModelCache:
    """Thread-safe LRU of ServedModels keyed by (name, version)."""

    def __init__(self, ctx: Context, *, budget_bytes: int, alias_ttl: float = 2.0,
                 log_filter: Callable[[ModelVersion], LogFilter | None] | None = None) -> None:
        self.ctx = ctx
        self.budget = budget_bytes
        self.alias_ttl = alias_ttl
        self._log_filter = log_filter
        self._models: OrderedDict[tuple[str, int], ServedModel] = OrderedDict()
        self._aliases: Refreshing[int] = Refreshing(alias_ttl)
        self._latest: Refreshing[int] = Refreshing(alias_ttl)
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self.loads = 0
        self.evictions = 0
        self.bytes = 0

    # -- resolution ------------------------------------------------------------------------

    def version_of(self, ref: ModelRef) -> int:
        if ref.alias is None:
            assert ref.version is not None
            return ref.version
        return self._aliases.get((ref.name, ref.alias), lambda: self._lookup_alias(ref))

    def _lookup_alias(self, ref: ModelRef) -> int:
        from ..registry.models import resolve

        with self.ctx.db.read() as conn:
            return resolve(conn, ref).version

    def latest_of(self, name: str) -> int:
        """The model's newest registered version (cached like an alias)."""
        return self._latest.get(name, lambda: self._lookup_latest(name))

    def _lookup_latest(self, name: str) -> int:
        from sqlalchemy import func, select

        from ..store.tables import model_versions, registered_models

        with self.ctx.db.read() as conn:
            found = conn.execute(
                select(registered_models.c.id, func.max(model_versions.c.version))
                .outerjoin(model_versions, (model_versions.c.model_id == registered_models.c.id)
                           & (model_versions.c.status == "registered"))
                .where(registered_models.c.name == name)
                .group_by(registered_models.c.id)).first()
        if found is None:
            raise NotFound(f"no registered model named {name!r}")
        if found[1] is None:
            raise NotFound(f"model {name!r} has no registered versions")
        return int(found[1])

    def cached(self, ref: ModelRef) -> ServedModel | None:
        """The loaded model if it is in memory (no I/O unless an alias needs refreshing)."""
        key = (ref.name, self.version_of(ref))
        with self._lock:
            served = self._models.get(key)
            if served is not None:
                self._models.move_to_end(key)
            return served

    def get(self, ref: ModelRef) -> ServedModel:
        """The loaded model, loading it (once, even under concurrent requests) on a miss."""
        served = self.cached(ref)
        if served is not None:
            return served
        key = (ref.name, self.version_of(ref))
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                served = self._models.get(key)
            if served is None:
                served = self._load(*key)
        return served

    def _load(self, name: str, version: int) -> ServedModel:
        try:
            loaded = load(self.ctx, f"models:/{name}/{version}")
        except InvalidInput as exc:  # e.g. a pickle version: not served without opt-in
            raise NotFound(f"models:/{name}/{version} cannot be served: {exc}") from exc
        filt = self._log_filter(loaded.version) if self._log_filter else None
        served = ServedModel(loaded, filt)
        with self._lock:
            self._models[(name, version)] = served
            self.bytes += served.size
            self.loads += 1
            while self.bytes > self.budget and len(self._models) > 1:
                _, old = self._models.popitem(last=False)
                self.bytes -= old.size
                self.evictions += 1
            self._loading.pop((name, version), None)
        return served

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(loaded=len(self._models), bytes=self.bytes, loads=self.loads,
                              evictions=self.evictions, budget_bytes=self.budget)

    def loaded_versions(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._models)
