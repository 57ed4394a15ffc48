"""What an AutoML search optimises: the task, the metric, its direction, and the defaults.

Defaults (documented in docs/automl.md):

* binary classification: ``roc_auc`` — it ranks, so it is not fooled by a rare positive
  class the way accuracy is;
* multi-class classification: ``accuracy``, or ``balanced_accuracy`` when the classes are
  imbalanced (the rarest class is under a fifth of the most common one);
* regression: ``r2``.

Class imbalance is handled in the metric (the defaults above; ``average_precision`` and
``balanced_accuracy`` are there to choose) and in the search space (families that take
``class_weight`` search ``balanced`` against none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from ..errors import InvalidInput

__all__ = [
    "IMBALANCE_RATIO",
    "METRICS",
    "TASKS",
    "Metric",
    "default_metric",
    "imbalanced",
    "infer_task",
    "resolve_metric",
]

Task = Literal["binary", "multiclass", "regression"]
TASKS = ("classification", "regression")
#: Rarest class count / most common class count under which classes count as imbalanced.
IMBALANCE_RATIO = 0.2


@dataclass(frozen=True)
class Metric:
    """A score of held-out predictions. ``uses`` says what it needs: labels, probabilities
    (classes in ``classes`` order), or regression values."""

    name: str
    direction: Literal["maximize", "minimize"]
    tasks: tuple[Task, ...]
    uses: Literal["label", "proba", "value"]
    fn: Callable[..., float]

    def score(self, y_true: Any, predicted: Any, classes: Any = None) -> float:
        if self.uses != "proba":
            return float(self.fn(y_true, predicted))
        if predicted.shape[1] == 2 and self.name in ("roc_auc", "average_precision"):
            return float(self.fn(y_true == classes[1], predicted[:, 1]))
        return float(self.fn(y_true, predicted, labels=classes))

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


def _metrics() -> dict[str, Metric]:
    from sklearn import metrics as m

    def auc(y: Any, p: Any, labels: Any = None) -> float:
        if labels is None:  # binary: p is the positive class's probability
            return float(m.roc_auc_score(y, p))
        return float(m.roc_auc_score(y, p, multi_class="ovr", labels=labels))

    def rmse(y: Any, p: Any) -> float:
        return float(m.root_mean_squared_error(y, p))

    classify: tuple[Task, ...] = ("binary", "multiclass")
    return {metric.name: metric for metric in (
        Metric("roc_auc", "maximize", classify, "proba", auc),
        Metric("average_precision", "maximize", ("binary",), "proba", m.average_precision_score),
        Metric("log_loss", "minimize", classify, "proba", m.log_loss),
        Metric("accuracy", "maximize", classify, "label", m.accuracy_score),
        Metric("balanced_accuracy", "maximize", classify, "label", m.balanced_accuracy_score),
        Metric("f1", "maximize", ("binary",), "label",
               lambda y, p: m.f1_score(y, p, pos_label=sorted(set(y))[-1])),
        Metric("f1_macro", "maximize", classify, "label",
               lambda y, p: m.f1_score(y, p, average="macro")),
        Metric("r2", "maximize", ("regression",), "value", m.r2_score),
        Metric("rmse", "minimize", ("regression",), "value", rmse),
        Metric("mae", "minimize", ("regression",), "value", m.mean_absolute_error),
    )}


METRICS: dict[str, Metric] = _metrics()


def infer_task(y: pd.Series, task: str | None) -> Task:
    """``binary``, ``multiclass`` or ``regression`` from ``task`` (or the label's values).

    Without ``task``: text, booleans, categories and integers with at most 20 distinct values
    are classes; anything else is regression.
    """
    if task is not None and task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}; expected one of {', '.join(TASKS)} "
                           "(or leave it unset to infer it from the label)", field="task")
    distinct = y.nunique(dropna=True)
    if task is None:
        discrete = (not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)
                    or (pd.api.types.is_integer_dtype(y) and distinct <= 20))
        task = "classification" if discrete else "regression"
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise InvalidInput(f"task regression needs a numeric label, got {y.dtype}",
                               field="task")
        return "regression"
    return "binary" if distinct == 2 else "multiclass"


def imbalanced(y: pd.Series) -> bool:
    counts = y.value_counts()
    return bool(counts.min() < IMBALANCE_RATIO * counts.max())


def default_metric(task: Task, y: pd.Series) -> str:
    if task == "binary":
        return "roc_auc"
    if task == "multiclass":
        return "balanced_accuracy" if imbalanced(y) else "accuracy"
    return "r2"


def resolve_metric(name: str | None, task: Task, y: pd.Series) -> Metric:
    """The metric called ``name`` (the task's default when None), checked against the task."""
    if name is None:
        return METRICS[default_metric(task, y)]
    metric = METRICS.get(name)
    if metric is None:
        raise InvalidInput(f"unknown metric {name!r}; expected one of "
                           f"{', '.join(sorted(METRICS))}", field="metric")
    if task not in metric.tasks:
        fits = sorted(n for n, m in METRICS.items() if task in m.tasks)
        raise InvalidInput(f"metric {name!r} does not apply to {task} tasks; use one of "
                           f"{', '.join(fits)}", field="metric")
    return metric
