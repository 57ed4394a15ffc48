"""Global explanations: mean |SHAP value| per feature, or permutation importance.

SHAP (the ``explain`` extra) is used for tree ensembles (``TreeExplainer``) and linear
models (``LinearExplainer``), also when the model is the last step of a scikit-learn
Pipeline: the sample is transformed by the preceding steps and the features are named by
their ``get_feature_names_out``. Any other model, or an environment without shap, gets
permutation importance (``sklearn.inspection``) on the same sample. The method used and the
reason are recorded with the result.

Exact tree SHAP costs about trees x leaves x depth² per row: a 200-tree, depth-12 forest
needs ~45 s for 1,000 rows on one core. When the estimate exceeds ``EXACT_TREE_BUDGET`` the
explainer switches to shap's ``approximate=True`` (Saabas attributions along each decision
path: the same ranking of important features in practice, linear in depth) and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

__all__ = ["EXACT_TREE_BUDGET", "Explanation", "FeatureImportance", "explain_model"]

# tree-path work units (leaves x depth² x rows, all trees) exact TreeSHAP may spend: ~10 s
# (a 200-tree, depth-12 forest on 1,000 rows is ~4.6e10 units and took ~45 s on one core)
EXACT_TREE_BUDGET = 1.0e10
_TOP = 20  # features kept in the record (sorted by importance)


class FeatureImportance(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str
    importance: float
    std: float | None = None


class Explanation(BaseModel):
    """Which features the model relies on, how that was measured, and why that way."""

    model_config = ConfigDict(frozen=True)

    method: str  # shap-tree, shap-tree-approximate, shap-linear, permutation
    reason: str
    sample_rows: int
    features: list[FeatureImportance]


def _split_pipeline(model: Any) -> tuple[Any | None, Any]:
    """(preprocessing steps or None, final estimator)."""
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return None, model
    if isinstance(model, Pipeline) and len(model.steps) > 1:
        return model[:-1], model[-1]
    if isinstance(model, Pipeline):
        return None, model[-1]
    return None, model


def _transform(pre: Any | None, sample: pd.DataFrame) -> tuple[Any, list[str]]:
    if pre is None:
        return sample, [str(c) for c in sample.columns]
    data = pre.transform(sample)
    if hasattr(data, "toarray"):
        data = data.toarray()
    try:
        names = [str(n) for n in pre.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = []
    width = np.shape(data)[1]
    if len(names) != width:
        names = [f"x{i}" for i in range(width)]
    return data, names


def _tree_cost(explainer: Any, rows: int) -> float:
    """Exact TreeSHAP work estimate from shap's own tree arrays."""
    model = explainer.model
    try:
        leaves = float((np.asarray(model.children_left) < 0).sum())  # over all trees
        depth = float(model.max_depth)
    except AttributeError:
        return 0.0
    return leaves * depth * depth * rows


def _importance(values: Any, n_features: int) -> np.ndarray:
    """Mean |SHAP| per feature, averaged over rows and (for classifiers) classes."""
    arr = np.abs(np.asarray(values, dtype=np.float64))
    if isinstance(values, list):  # older shap: one array per class
        arr = np.abs(np.stack([np.asarray(v, dtype=np.float64) for v in values], axis=-1))
    feature_axis = next(i for i in range(1, arr.ndim) if arr.shape[i] == n_features)
    other = tuple(i for i in range(arr.ndim) if i != feature_axis)
    return arr.mean(axis=other)


def _shap(estimator: Any, data: Any, names: list[str]) -> tuple[str, str, np.ndarray] | None:
    """(method, reason, importances) by SHAP, or None when SHAP does not apply."""
    try:
        import shap
    except ImportError:
        return None
    frame = pd.DataFrame(data, columns=names) if not isinstance(data, pd.DataFrame) else data
    try:
        explainer = shap.TreeExplainer(estimator)
    except Exception:  # shap raises bare Exceptions for model types it does not know
        explainer = None
    if explainer is not None:
        cost = _tree_cost(explainer, len(frame))
        approximate = cost > EXACT_TREE_BUDGET
        values = explainer.shap_values(frame, check_additivity=False,
                                       approximate=approximate)
        if approximate:
            reason = (f"tree model; exact TreeSHAP estimated at {cost:.2g} path steps "
                      f"(budget {EXACT_TREE_BUDGET:.2g}): Saabas approximation used")
            return "shap-tree-approximate", reason, _importance(values, len(names))
        return "shap-tree", "tree model: exact TreeSHAP", _importance(values, len(names))
    if hasattr(estimator, "coef_"):
        try:
            explainer = shap.LinearExplainer(estimator, frame)
            values = explainer.shap_values(frame)
        except Exception:
            return None
        return "shap-linear", "linear model: LinearExplainer", _importance(values, len(names))
    return None


def explain_model(
    model: Any, sample: pd.DataFrame, y_sample: np.ndarray, *,
    score: Callable[[np.ndarray, np.ndarray], float], seed: int,
) -> Explanation:
    """Explain ``model`` (the loaded estimator or pipeline) on ``sample`` (its input rows).

    ``score(y_true, y_pred)`` (higher is better) is what permutation importance perturbs.
    """
    pre, estimator = _split_pipeline(model)
    try:
        import shap  # noqa: F401
        have_shap = True
    except ImportError:
        have_shap = False
    if have_shap:
        try:
            data, names = _transform(pre, sample)
            found = _shap(estimator, data, names)
        except Exception as exc:
            found = None
            fallback = f"SHAP failed ({type(exc).__name__}: {str(exc)[:120]})"
        else:
            fallback = f"{type(estimator).__name__} is neither a tree nor a linear model"
        if found is not None:
            method, reason, values = found
            return _result(method, reason, len(sample), names, values, None)
    else:
        fallback = "shap is not installed (pip install 'modelworks[explain]')"
    from sklearn.inspection import permutation_importance

    def scorer(est: Any, X: Any, y: Any) -> float:
        return float(score(np.asarray(y), np.asarray(est.predict(X))))

    result = permutation_importance(model, sample, y_sample, scoring=scorer, n_repeats=5,
                                    random_state=seed)
    return _result("permutation", f"{fallback}: permutation importance", len(sample),
                   [str(c) for c in sample.columns], result.importances_mean,
                   result.importances_std)


def _result(method: str, reason: str, rows: int, names: list[str], values: np.ndarray,
            std: np.ndarray | None) -> Explanation:
    order = np.argsort(-np.asarray(values), kind="stable")[:_TOP]
    features = [FeatureImportance(feature=names[i], importance=float(values[i]),
                                  std=None if std is None else float(std[i])) for i in order]
    return Explanation(method=method, reason=reason, sample_rows=rows, features=features)
