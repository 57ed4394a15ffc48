"""Model performance over a window: real metrics from feedback labels, and an estimate before.

Labels arrive late (serving's ``/v1/feedback``), so a window is scored two ways:

* **real** metrics from the rows that have a label — the validation report's metric names
  (``accuracy, precision, recall, f1, roc_auc, log_loss, brier``; ``mae, rmse, r2, mape``);
* for classifiers whose probabilities were logged, an **estimate** over every row, labelled or
  not: confidence-based performance estimation (CBPE, as NannyML does it). If the model's
  probabilities are calibrated, row ``i`` is right with probability ``p_i[predicted]``, so the
  expected confusion matrix is ``E[t, j] = sum of p_i[t] over the rows predicted j`` and the
  metrics follow from it. It is only as good as the calibration.

Everything is kept as sums that add across chunks (and across workers, ``merge``): confusion
counts, regression sums, and, for ROC AUC, fixed histograms of each class's score (see
``AUC_EDGES``), so a 10-million-row window is read in bounded memory. ROC AUC from the
histograms is within ``error_bounds["roc_auc"]`` of the exact value; the bound is computed
from the same histograms (pairs in one bin are the only ones whose order is unknown).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..context import Context
    from ..governance.validation import ValidationReport
    from ..registry.loading import LoadedModel

__all__ = [
    "AUC_EDGES",
    "ESTIMATE_METHOD",
    "LOWER_IS_BETTER",
    "PerformanceAccumulator",
    "PerformanceResult",
    "accumulator_for",
    "baseline_of",
    "performance_baseline",
]

Task = Literal["classification", "regression"]
Label = str | int | float | bool

_TASKS = ("classification", "regression")
# For these a rise is the worsening, so their drop is current - baseline (else baseline - now).
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "mae", "rmse", "mape"})
ESTIMATE_METHOD = ("confidence-based performance estimation (CBPE): expected metrics from the "
                   "model's own probabilities; assumes they are calibrated")
_EPS = float(np.finfo(np.float64).eps)  # scikit-learn clips log-loss probabilities to this
_TAIL = np.logspace(-12, -4, 9)
# Score bins for ROC AUC: 1,000 equal bins of width 0.001, the outer two split at 1e-4 ...
# 1e-12 (and 1 - those), so confident scores piled up near 0 or 1 are still told apart.
AUC_EDGES = np.unique(np.concatenate([np.linspace(0.0, 1.0, 1001), _TAIL, 1.0 - _TAIL]))
_BINS = len(AUC_EDGES) - 1  # 10 low-tail bins, 998 of width 0.001, 10 high-tail bins
_LOW = np.concatenate([[0.0], _TAIL, [1e-3]])
_HIGH = np.concatenate([[0.999], (1.0 - _TAIL)[::-1], [1.0]])
_PROBA_SLACK = 1e-6  # probabilities a hair outside [0, 1] (float error) are clipped


class PerformanceResult(BaseModel):
    """Performance of one window; ``estimated`` holds estimates, never measured values.

    ``drop`` is how much worse than the validation report (``baseline``) the window is:
    ``baseline - current`` for scores (accuracy, f1, roc_auc, r2, ...) and ``current -
    baseline`` for errors (``LOWER_IS_BETTER``: log_loss, brier, mae, rmse, mape), so a
    positive drop is always a worsening.
    """

    model_config = ConfigDict(frozen=True)

    task: Task
    rows: int
    labelled_rows: int  # rows with a usable label: what ``metrics`` are computed on
    estimated_rows: int  # rows with logged probabilities: what ``estimated`` covers
    metrics: dict[str, float]
    estimated: dict[str, float]
    estimate_method: str | None  # set when ``estimated`` is not empty
    baseline: dict[str, float]
    drop: dict[str, float]
    estimated_drop: dict[str, float]
    error_bounds: dict[str, float]  # max |binned - exact| of ``roc_auc``, ``estimated.roc_auc``
    positive_label: Label | None
    positive_rate: float | None  # share of all rows predicted positive (binary)
    classes: list[Label] | None  # the rows and columns of ``confusion_matrix``
    confusion_matrix: list[list[int]] | None  # labelled rows: true class x predicted class
    notes: list[str]

    def flat(self, prefix: str = "performance") -> dict[str, float]:
        """Flat keys for alert rules: ``performance.f1``, ``performance.estimated.f1.drop``."""
        out = {f"{prefix}.rows": float(self.rows),
               f"{prefix}.labelled_rows": float(self.labelled_rows),
               f"{prefix}.estimated_rows": float(self.estimated_rows)}
        if self.positive_rate is not None:
            out[f"{prefix}.positive_rate"] = self.positive_rate
        for group, values, drops in (("", self.metrics, self.drop),
                                     ("estimated.", self.estimated, self.estimated_drop)):
            for name, value in values.items():
                out[f"{prefix}.{group}{name}"] = value
                if name in drops:
                    out[f"{prefix}.{group}{name}.drop"] = drops[name]
        return out


def _canon(value: Any) -> Any:
    """A hashable, JSON-like form of a class value; None for a missing one."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, int):
        return value
    try:  # lists, dicts: compared by their JSON text
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _factorize(values: pd.Series) -> tuple[np.ndarray, Sequence[Any]]:
    array = values.to_numpy(dtype=object)
    try:
        codes, uniques = pd.factorize(array, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists): factorize their canonical text
        codes, uniques = pd.factorize(np.array([_canon(v) for v in array], dtype=object),
                                      use_na_sentinel=True)
    return np.asarray(codes), list(uniques)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _numbers(values: pd.Series) -> np.ndarray:
    """Floats, NaN where a value is not a number (a label sent as text, a list)."""
    try:
        return pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    except (TypeError, ValueError):
        return np.array([_number(v) for v in values], dtype=np.float64)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0  # scikit-learn's zero_division=0


def _bins(p: np.ndarray) -> np.ndarray:
    """The ``AUC_EDGES`` bin of each probability: ``floor(1000 p)`` in the middle (a binary
    search per value is ten times slower), a search only in the tails. The map is monotone,
    so the bins are ordered intervals, which is all the AUC bound needs."""
    middle = np.floor(p * 1000.0).astype(np.int64)
    bins = middle + 9
    low, high = middle < 1, middle > 998
    if low.any():
        bins[low] = np.clip(np.searchsorted(_LOW, p[low], side="right") - 1, 0, 9)
    if high.any():
        bins[high] = 1008 + np.clip(np.searchsorted(_HIGH, p[high], side="right") - 1, 0, 9)
    return bins


def _binned_auc(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float] | None:
    """(AUC, bound) from per-bin positive and negative weights; None without both classes.

    Pairs in different bins are ordered exactly; a pair in one bin counts one half, at most
    one half away from its true 0, 1/2 or 1 — hence the bound ``sum(pos * neg) / (2 P N)``.
    """
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    if total_pos <= 0 or total_neg <= 0:
        return None
    below = np.cumsum(neg) - neg
    denom = total_pos * total_neg
    return (float((pos * (below + 0.5 * neg)).sum() / denom),
            float(0.5 * (pos * neg).sum() / denom))


class PerformanceAccumulator:
    """Sums over chunks of ``prediction`` / ``proba`` / ``label`` rows; ``result()`` at the end.

    Args:
        task: ``"classification"`` or ``"regression"``.
        classes: the model's classes in ``predict_proba`` column order (``classes_``);
            needed to read ``proba``. Labels and predictions are matched to them by value,
            or by text (a label ``"1"`` is class ``1``).
        positive_label: the class that precision, recall, F1 and ROC AUC are about; by
            default ``classes[1]`` for two classes (as the validation report), else the
            metrics are macro averages over the classes seen.
        baseline: metric values to compare with (``performance_baseline``).
    """

    def __init__(self, task: Task, classes: Sequence[Any] | None = None,
                 positive_label: Any = None, baseline: dict[str, float] | None = None) -> None:
        if task not in _TASKS:
            raise InvalidInput(f"task must be one of {', '.join(_TASKS)}, got {task!r}",
                               field="task")
        self.task: Task = task
        self._values: list[Any] = []  # class vocabulary: given classes, then unseen values
        self._index: dict[Any, int] = {}
        self.classes: list[Any] | None = None
        if classes is not None:
            if task == "regression":
                raise InvalidInput("a regression has no classes: pass classes=None",
                                   field="classes")
            if isinstance(classes, str) or not isinstance(classes, Iterable):
                raise InvalidInput("classes must be a list of class values", field="classes")
            canon = [_canon(c) for c in classes]
            if not canon or any(c is None for c in canon) or len(set(map(str, canon))) < len(
                    canon):
                raise InvalidInput(f"classes must be distinct, non-missing values, got "
                                   f"{list(classes)!r}", field="classes")
            self.classes = canon
            for c in canon:
                self._intern(c)
        self.positive_label = self._positive(positive_label)
        self.baseline = self._baseline(baseline)
        k = len(self.classes or [])
        self.rows = 0
        # classification
        self._conf: Counter[tuple[int, int]] = Counter()
        self._predicted: Counter[int] = Counter()
        self._no_prediction = 0
        self._est_rows = 0
        self._est_known = 0  # rows with probabilities whose prediction is one of the classes
        self._expected = np.zeros((k, k))  # true class x predicted class, expected counts
        self._est_count = np.zeros((k, _BINS))  # per class: rows per bin of its score
        self._est_score = np.zeros((k, _BINS))  # per class: sum of its score per bin
        self._lab_all = np.zeros((k, _BINS))  # labelled rows with probabilities, per bin
        self._lab_pos = np.zeros((k, _BINS))  # ... of which the label is that class
        self._lab_proba = 0
        self._log_loss = 0.0
        self._brier = 0.0
        # regression: sums of errors, and of labels about a pivot (the first label seen)
        self._pivot: float | None = None
        self._n = 0
        self._sums = np.zeros(6)  # err, |err|, err^2, y - pivot, (y - pivot)^2, |err| / |y|
        self._unusable = 0  # labelled rows whose label (or prediction) cannot be scored

    # -- set-up ----------------------------------------------------------------------------

    def _intern(self, canon: Any) -> int:
        idx = self._index.get(canon)
        if idx is None:
            idx = self._index.get(str(canon))
        if idx is None:
            idx = len(self._values)
            self._values.append(canon)
            self._index.setdefault(canon, idx)
            self._index.setdefault(str(canon), idx)
        return idx

    def _positive(self, positive_label: Any) -> Any:
        if positive_label is None:
            return self.classes[1] if self.classes and len(self.classes) == 2 else None
        if self.task == "regression":
            raise InvalidInput("a regression has no positive label", field="positive_label")
        canon = _canon(positive_label)
        if canon is None:
            raise InvalidInput("positive_label must be a class value", field="positive_label")
        if self.classes is None:
            self._intern(canon)  # so the metrics are about it even before it is seen
        else:
            idx = self._index.get(canon, self._index.get(str(canon)))
            if idx is None or idx >= len(self.classes):
                raise InvalidInput(f"positive_label {positive_label!r} is not one of the "
                                   f"classes {self.classes}", field="positive_label")
            return self.classes[idx]
        return canon

    @staticmethod
    def _baseline(baseline: dict[str, float] | None) -> dict[str, float]:
        if baseline is None:
            return {}
        if not isinstance(baseline, dict):
            raise InvalidInput("baseline must be a dict of metric name to value",
                               field="baseline")
        out = {}
        for name, value in baseline.items():
            if isinstance(value, int | float) and not isinstance(value, bool) \
                    and math.isfinite(value):
                out[str(name)] = float(value)
        return out

    # -- adding ----------------------------------------------------------------------------

    def add(self, frame: pd.DataFrame) -> PerformanceAccumulator:
        """Add a chunk: ``prediction``, optional ``proba`` (list or None) and ``label``."""
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput("frame must be a pandas DataFrame", field="frame")
        if "prediction" not in frame.columns:
            raise InvalidInput(f"frame has no prediction column (columns: "
                               f"{[str(c) for c in frame.columns][:20]})", field="prediction")
        if frame.empty:
            return self
        if self.task == "regression":
            self._add_regression(frame)
        else:
            self._add_classification(frame)
        self.rows += len(frame)
        return self

    def _codes(self, values: pd.Series) -> np.ndarray:
        codes, uniques = _factorize(values)
        if not uniques:
            return np.full(len(values), -1, dtype=np.int64)
        table = np.array([-1 if (c := _canon(u)) is None else self._intern(c)
                          for u in uniques], dtype=np.int64)
        return np.where(codes >= 0, table[codes], -1)

    def _add_classification(self, frame: pd.DataFrame) -> None:
        proba = self._proba(frame)  # checked before any count changes
        pred = self._codes(frame["prediction"])
        label = (self._codes(frame["label"]) if "label" in frame.columns
                 else np.full(len(frame), -1, dtype=np.int64))
        self._no_prediction += int((pred < 0).sum())
        values, counts = np.unique(pred[pred >= 0], return_counts=True)
        self._predicted.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        both = (pred >= 0) & (label >= 0)
        width = len(self._values)
        pairs, counts = np.unique(label[both] * width + pred[both], return_counts=True)
        for pair, count in zip(pairs.tolist(), counts.tolist(), strict=True):
            self._conf[divmod(pair, width)] += count
        if proba is not None:
            rows, p = proba
            self._add_proba(p, pred[rows], label[rows])

    def _proba(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """(row positions, n x K matrix) of the rows that carry probabilities."""
        if "proba" not in frame.columns:
            return None
        has = frame["proba"].notna().to_numpy()
        if not has.any():
            return None
        if self.classes is None:
            raise InvalidInput("proba needs the model's classes (in predict_proba column "
                               "order): pass classes=", field="classes")
        rows = np.flatnonzero(has)
        k = len(self.classes)
        picked = frame["proba"].to_numpy(dtype=object)[rows]
        try:
            matrix = np.asarray(list(picked), dtype=np.float64)
        except (TypeError, ValueError):  # ragged, or not numbers: say which
            matrix = None
        if matrix is None or matrix.ndim != 2 or matrix.shape[1] != k:
            raise self._proba_error(frame, rows, picked, k)
        if not np.isfinite(matrix).all() or matrix.min() < -_PROBA_SLACK \
                or matrix.max() > 1 + _PROBA_SLACK:
            raise InvalidInput("proba values must be probabilities in [0, 1]", field="proba")
        return rows, np.clip(matrix, 0.0, 1.0)

    def _proba_error(self, frame: pd.DataFrame, rows: np.ndarray, picked: np.ndarray,
                     k: int) -> InvalidInput:
        for row, value in zip(rows, picked, strict=True):
            try:
                size = len(value)
            except TypeError:
                return InvalidInput("proba must hold one list of class probabilities per row "
                                    "(or None)", field="proba")
            if size != k:
                return InvalidInput(f"proba has {size} values in row {frame.index[row]!r}; "
                                    f"the model has {k} classes {self.classes}", field="proba")
        return InvalidInput("proba values must be numbers", field="proba")

    def _add_proba(self, p: np.ndarray, pred: np.ndarray, label: np.ndarray) -> None:
        k = p.shape[1]
        bins = _bins(p)
        flat = (bins + np.arange(k) * _BINS).ravel()
        self._est_rows += len(p)
        self._est_count += np.bincount(flat, minlength=k * _BINS).reshape(k, _BINS)
        self._est_score += np.bincount(flat, weights=p.ravel(),
                                       minlength=k * _BINS).reshape(k, _BINS)
        known = (pred >= 0) & (pred < k)
        self._est_known += int(known.sum())
        np.add.at(self._expected.T, pred[known], p[known])  # E[:, j] += p of rows predicted j
        ok = (label >= 0) & (label < k)  # labels outside the classes have no probability
        if not ok.any():
            return
        y, pl, bl = label[ok], p[ok], bins[ok]
        self._lab_proba += len(y)
        self._lab_all += np.bincount((bl + np.arange(k) * _BINS).ravel(),
                                     minlength=k * _BINS).reshape(k, _BINS)
        own = bl[np.arange(len(y)), y] + y * _BINS
        self._lab_pos += np.bincount(own, minlength=k * _BINS).reshape(k, _BINS)
        p_true = np.clip(pl[np.arange(len(y)), y], _EPS, 1 - _EPS)
        self._log_loss += float(-np.log(p_true).sum())
        pos = self._pos_index()
        if k == 2 and pos is not None:
            self._brier += float(((pl[:, pos] - (y == pos)) ** 2).sum())

    def _add_regression(self, frame: pd.DataFrame) -> None:
        if "label" not in frame.columns:
            return
        labelled = frame["label"].notna().to_numpy()
        if not labelled.any():
            return
        y = _numbers(frame["label"][labelled])
        p = _numbers(frame["prediction"][labelled])
        ok = np.isfinite(y) & np.isfinite(p)
        self._unusable += int((~ok).sum())
        y, p = y[ok], p[ok]
        if not len(y):
            return
        if self._pivot is None:
            self._pivot = float(y[0])
        err = y - p
        shifted = y - self._pivot
        self._n += len(y)
        self._sums += [err.sum(), np.abs(err).sum(), (err**2).sum(), shifted.sum(),
                       (shifted**2).sum(),
                       (np.abs(err) / np.maximum(np.abs(y), _EPS)).sum()]

    def merge(self, other: PerformanceAccumulator) -> PerformanceAccumulator:
        """Add another accumulator's sums (same task and classes): a window split in parts."""
        if other.task != self.task or other.classes != self.classes:
            raise InvalidInput("only accumulators of the same task and classes merge",
                               field="other")
        if self.task == "regression":
            if other._n:
                if self._pivot is None:  # no labels here yet: all our sums are zero
                    self._pivot = other._pivot
                # re-centre the other's label sums on our pivot: sum(y - a) = sum(y - b) + n(b - a)
                assert self._pivot is not None and other._pivot is not None
                d = other._pivot - self._pivot
                e, a, s, sy, syy, ape = other._sums
                self._sums += [e, a, s, sy + other._n * d,
                               syy + 2 * d * sy + other._n * d * d, ape]
                self._n += other._n
        else:
            remap = np.array([self._intern(v) for v in other._values], dtype=np.int64)
            for (t, p), count in other._conf.items():
                self._conf[(int(remap[t]), int(remap[p]))] += count
            for p, count in other._predicted.items():
                self._predicted[int(remap[p])] += count
            for name in ("_expected", "_est_count", "_est_score", "_lab_all", "_lab_pos"):
                setattr(self, name, getattr(self, name) + getattr(other, name))
            self._no_prediction += other._no_prediction
            self._est_rows += other._est_rows
            self._est_known += other._est_known
            self._lab_proba += other._lab_proba
            self._log_loss += other._log_loss
            self._brier += other._brier
        self._unusable += other._unusable
        self.rows += other.rows
        return self

    # -- results ---------------------------------------------------------------------------

    def _pos_index(self) -> int | None:
        if self.positive_label is None:
            return None
        return self._index.get(self.positive_label, self._index.get(str(self.positive_label)))

    def result(self) -> PerformanceResult:
        """The window's metrics, estimate, and their drop against the baseline."""
        notes: list[str] = []
        bounds: dict[str, float] = {}
        if self.task == "regression":
            metrics, estimated, labelled = self._regression_metrics(notes), {}, self._n
            classes = matrix = positive_rate = None
        else:
            labelled = sum(self._conf.values())
            metrics = self._classification_metrics(notes, bounds)
            estimated = self._estimated_metrics(bounds)
            classes, matrix = self._confusion()
            pos = self._pos_index()
            positive_rate = (self._predicted.get(pos, 0) / self.rows
                             if pos is not None and self.rows else None)
        self._notes(notes, labelled, estimated)
        return PerformanceResult(
            task=self.task, rows=self.rows, labelled_rows=labelled,
            estimated_rows=self._est_rows, metrics=metrics,
            estimated=estimated, estimate_method=ESTIMATE_METHOD if estimated else None,
            baseline=dict(self.baseline), drop=self._drops(metrics),
            estimated_drop=self._drops(estimated), error_bounds=bounds,
            positive_label=self.positive_label, positive_rate=positive_rate,
            classes=classes, confusion_matrix=matrix, notes=notes)

    def _drops(self, values: dict[str, float]) -> dict[str, float]:
        return {name: (value - self.baseline[name] if name in LOWER_IS_BETTER
                       else self.baseline[name] - value)
                for name, value in values.items() if name in self.baseline}

    def _confusion(self) -> tuple[list[Any] | None, list[list[int]] | None]:
        if not self._values:
            return None, None
        n = len(self._values)
        matrix = np.zeros((n, n), dtype=np.int64)
        for (t, p), count in self._conf.items():
            matrix[t, p] += count
        return list(self._values), matrix.tolist()

    def _scores(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray,
                present: np.ndarray) -> dict[str, float]:
        """Precision, recall, F1: of the positive class, or macro over ``present`` classes."""
        pos = self._pos_index()
        if pos is not None and pos < len(tp):
            t, pp, ap = float(tp[pos]), float(predicted[pos]), float(actual[pos])
            return {"precision": _ratio(t, pp), "recall": _ratio(t, ap),
                    "f1": _ratio(2 * t, pp + ap)}
        idx = np.flatnonzero(present)
        if not len(idx):
            return {}
        return {"precision": float(np.mean([_ratio(tp[i], predicted[i]) for i in idx])),
                "recall": float(np.mean([_ratio(tp[i], actual[i]) for i in idx])),
                "f1": float(np.mean([_ratio(2 * tp[i], predicted[i] + actual[i])
                                     for i in idx]))}

    def _classification_metrics(self, notes: list[str], bounds: dict[str, float]
                                ) -> dict[str, float]:
        labelled = sum(self._conf.values())
        if not labelled:
            return {}
        _, rows = self._confusion()
        assert rows is not None
        c = np.asarray(rows, dtype=np.float64)
        tp, predicted, actual = np.diag(c), c.sum(axis=0), c.sum(axis=1)
        out = {"accuracy": float(tp.sum() / labelled)}
        out.update(self._scores(tp, predicted, actual, (predicted + actual) > 0))
        k = len(self.classes or [])
        unknown = labelled - int(c[:k, :].sum()) if k else 0
        if unknown:
            notes.append(f"{unknown} labelled rows have a label that is not one of the "
                         f"model's classes {self.classes}")
        if self._lab_proba:
            out["log_loss"] = self._log_loss / self._lab_proba
            if k == 2 and self._pos_index() is not None:
                out["brier"] = self._brier / self._lab_proba
            auc = self._auc(self._lab_pos, self._lab_all - self._lab_pos)
            if auc is None:
                notes.append("no roc_auc: the labelled rows do not hold every class")
            else:
                out["roc_auc"], bounds["roc_auc"] = auc
        return out

    def _auc(self, pos: np.ndarray, neg: np.ndarray) -> tuple[float, float] | None:
        """Binary: the positive class's AUC; else the one-vs-rest macro AUC."""
        k = pos.shape[0]
        p = self._pos_index()
        if k == 2 and p is not None:
            return _binned_auc(pos[p], neg[p])
        each = [_binned_auc(pos[c], neg[c]) for c in range(k)]
        if k < 2 or any(e is None for e in each):
            return None
        return (float(np.mean([e[0] for e in each if e])),
                float(np.mean([e[1] for e in each if e])))

    def _estimated_metrics(self, bounds: dict[str, float]) -> dict[str, float]:
        if not self._est_known:
            return {}
        e = self._expected
        tp, predicted, actual = np.diag(e), e.sum(axis=0), e.sum(axis=1)
        out = {"accuracy": float(tp.sum() / self._est_known)}
        out.update(self._scores(tp, predicted, actual, (predicted + actual) > 0))
        auc = self._auc(self._est_score, self._est_count - self._est_score)
        if auc is not None:
            out["roc_auc"], bounds["estimated.roc_auc"] = auc
        return out

    def _regression_metrics(self, notes: list[str]) -> dict[str, float]:
        if self._unusable:
            notes.append(f"{self._unusable} labelled rows were left out: label or prediction "
                         "is not a finite number")
        n = self._n
        if not n:
            return {}
        _, abs_err, sq_err, sy, syy, ape = self._sums.tolist()
        ss_tot = syy - sy * sy / n
        # constant labels: scikit-learn's convention (1 for a perfect fit, else 0)
        r2 = 1.0 - sq_err / ss_tot if ss_tot > 0 else float(sq_err == 0)
        return {"mae": abs_err / n, "rmse": math.sqrt(sq_err / n), "r2": r2, "mape": ape / n}

    def _notes(self, notes: list[str], labelled: int, estimated: dict[str, float]) -> None:
        if not self.rows:
            notes.append("no rows in this window")
            return
        if self.task == "classification":
            if not self._est_rows:
                notes.append("probabilities not logged: no estimate")
            elif self._est_rows < self.rows:
                notes.append(f"the estimate covers the {self._est_rows} of {self.rows} rows "
                             "logged with probabilities")
            if estimated:
                notes.append("the estimate assumes calibrated probabilities; the validation "
                             "report's calibration curve and Brier score say how far to "
                             "trust it")
            if self._no_prediction:
                notes.append(f"{self._no_prediction} rows have no prediction")
        else:
            notes.append("no estimate for a regression: it needs class probabilities")
        if not labelled:
            notes.append("no labels yet: only the estimate" if estimated
                         else "no labels yet: no metrics")
        if not self.baseline:
            notes.append("no validation report: no baseline, no drop")


def _latest(ctx: Context, model: str, version: int) -> ValidationReport | None:
    from ..governance.validation import latest_validation
    from ..registry.models import version_id

    with ctx.db.read() as conn:
        return latest_validation(conn, version_id(conn, model, int(version)))


def baseline_of(report: ValidationReport | None) -> dict[str, float]:
    """A validation report's finite metric values ({} without a report)."""
    if report is None:
        return {}
    return {name: float(m.value) for name, m in report.metrics.items()
            if m.value is not None and math.isfinite(m.value)}


def performance_baseline(ctx: Context, model: str, version: int) -> dict[str, float]:
    """The metric values of the version's latest validation report ({} without one)."""
    return baseline_of(_latest(ctx, model, version))


def accumulator_for(ctx: Context, loaded: LoadedModel, *, positive_label: Any = None,
                    report: ValidationReport | Literal["latest"] | None = "latest"
                    ) -> PerformanceAccumulator:
    """An accumulator for a loaded version: its task, classes and validation baseline
    (``report``: the version's validation report when the caller has read it already)."""
    from ..governance.evaluation_data import infer_task

    version = loaded.version
    if report == "latest":
        report = _latest(ctx, version.name, version.version)
    task: Task = (report.task if report is not None
                  else infer_task(loaded, pd.Series([], dtype=np.float64), None))
    classes = getattr(loaded.model, "classes_", None) if task == "classification" else None
    return PerformanceAccumulator(task, None if classes is None else list(classes),
                                  positive_label=positive_label, baseline=baseline_of(report))
