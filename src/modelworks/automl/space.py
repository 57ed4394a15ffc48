"""Model families, their hyperparameter spaces, and the preprocessing each one gets.

Every candidate is a scikit-learn ``Pipeline([("prep", ColumnTransformer), ("model", ...)])``
that takes the raw training frame, so the registered winner's signature is the frame's.

=================  =============================================  ============================
family             model                                          preprocessing
=================  =============================================  ============================
linear             LogisticRegression / Ridge or ElasticNet        impute (median, + missing
                                                                  flags), scale; one-hot
random_forest      RandomForestClassifier / Regressor             ordinal codes, NaN kept
extra_trees        ExtraTreesClassifier / Regressor               ordinal codes, NaN kept
hist_gradient_     HistGradientBoostingClassifier / Regressor     ordinal codes as native
boosting                                                          categoricals, NaN kept
lightgbm           LGBMClassifier / LGBMRegressor (if installed)  ordinal codes, NaN kept
xgboost            XGBClassifier / XGBRegressor (if installed;     ordinal codes, NaN kept
                   classes must be the integers 0..K-1)
=================  =============================================  ============================

Parameters live in the study as ``FAMILY.PARAM`` so families never share a distribution.
Each family also has a default configuration, tried first (FLAML's trick: sensible defaults
find a good model before the sampler has learnt anything).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from .metrics import Task

__all__ = [
    "FAMILIES",
    "Family",
    "Space",
    "available_families",
    "build_model",
    "resolve_families",
    "split_columns",
    "suggest",
    "unprefixed",
    "warm_starts",
]

Params = dict[str, Any]


class Space:
    """Suggests a family's parameters under the ``FAMILY.`` prefix (Optuna's trial API)."""

    def __init__(self, trial: Any, prefix: str) -> None:
        self.trial, self.prefix = trial, prefix

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return float(self.trial.suggest_float(f"{self.prefix}.{name}", low, high, log=log))

    def int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        return int(self.trial.suggest_int(f"{self.prefix}.{name}", low, high, log=log))

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        return self.trial.suggest_categorical(f"{self.prefix}.{name}", list(options))


@dataclass(frozen=True)
class Family:
    """A model family: which tasks it serves, its space, its default, its estimator."""

    name: str
    encoding: str  # "onehot" (scaled, imputed) or "ordinal" (trees: NaN kept)
    suggest: Callable[[Space, Task], Params]
    default: Callable[[Task], Params]
    make: Callable[[Params, Task, int, int, int], Any]  # params, task, seed, n_jobs, n_cat
    requires: str | None = None

    def installed(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


def _weight(task: Task, s: Space) -> Params:
    """Class weights are part of the search for classifiers: imbalance is handled there too."""
    if task == "regression":
        return {}
    return {"class_weight": s.choice("class_weight", ["none", "balanced"])}


def _cw(params: Params) -> Params:
    out = dict(params)
    if out.get("class_weight") == "none":
        out["class_weight"] = None
    return out


# -- linear ---------------------------------------------------------------------------------

def _linear_space(s: Space, task: Task) -> Params:
    if task != "regression":
        return {"C": s.float("C", 1e-3, 1e3, log=True), **_weight(task, s)}
    kind = s.choice("kind", ["ridge", "elastic_net"])
    params: Params = {"kind": kind, "alpha": s.float("alpha", 1e-4, 1e3, log=True)}
    if kind == "elastic_net":
        params["l1_ratio"] = s.float("l1_ratio", 0.01, 1.0)
    return params


def _linear_default(task: Task) -> Params:
    if task == "regression":
        return {"kind": "ridge", "alpha": 1.0}
    return {"C": 1.0, "class_weight": "none"}


def _linear(params: Params, task: Task, seed: int, n_jobs: int, n_cat: int) -> Any:
    from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge

    p = _cw(params)
    if task != "regression":
        return LogisticRegression(max_iter=2000, random_state=seed, **p)
    kind = p.pop("kind", "ridge")
    if kind == "elastic_net":
        return ElasticNet(max_iter=5000, random_state=seed, **p)
    p.pop("l1_ratio", None)
    return Ridge(**p)


# -- forests --------------------------------------------------------------------------------

def _forest_space(s: Space, task: Task) -> Params:
    return {"n_estimators": s.int("n_estimators", 20, 300, log=True),
            "max_features": s.float("max_features", 0.1, 1.0),
            "min_samples_leaf": s.int("min_samples_leaf", 1, 32, log=True),
            **_weight(task, s)}


def _forest_default(task: Task) -> Params:
    params: Params = {"n_estimators": 100, "max_features": 0.5 if task == "regression" else 0.3,
                      "min_samples_leaf": 1}
    return params if task == "regression" else {**params, "class_weight": "none"}


def _forest(extra: bool) -> Callable[[Params, Task, int, int, int], Any]:
    def make(params: Params, task: Task, seed: int, n_jobs: int, n_cat: int) -> Any:
        from sklearn import ensemble

        kind = ("ExtraTrees" if extra else "RandomForest") + (
            "Regressor" if task == "regression" else "Classifier")
        return getattr(ensemble, kind)(random_state=seed, n_jobs=n_jobs, **_cw(params))

    return make


# -- histogram gradient boosting ----------------------------------------------------------

def _hgb_space(s: Space, task: Task) -> Params:
    return {"learning_rate": s.float("learning_rate", 0.01, 0.5, log=True),
            "max_iter": s.int("max_iter", 20, 500, log=True),
            "max_leaf_nodes": s.int("max_leaf_nodes", 4, 128, log=True),
            "min_samples_leaf": s.int("min_samples_leaf", 2, 100, log=True),
            "l2_regularization": s.float("l2_regularization", 1e-8, 10.0, log=True),
            "max_features": s.float("max_features", 0.3, 1.0),
            **_weight(task, s)}


def _hgb_default(task: Task) -> Params:
    params: Params = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31,
                      "min_samples_leaf": 20, "l2_regularization": 1e-8, "max_features": 1.0}
    return params if task == "regression" else {**params, "class_weight": "none"}


def _hgb(params: Params, task: Task, seed: int, n_jobs: int, n_cat: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regression" else \
        HistGradientBoostingClassifier
    # The ordinal codes come first in the transformed matrix (see ``_preprocessor``);
    # cross-validation is the search's holdout, so no inner early-stopping split.
    return cls(early_stopping=False, random_state=seed,
               categorical_features=np.arange(n_cat) if n_cat else None, **_cw(params))


# -- LightGBM and XGBoost -----------------------------------------------------------------

def _lgbm_space(s: Space, task: Task) -> Params:
    return {"n_estimators": s.int("n_estimators", 20, 1000, log=True),
            "learning_rate": s.float("learning_rate", 0.01, 0.5, log=True),
            "num_leaves": s.int("num_leaves", 4, 128, log=True),
            "min_child_samples": s.int("min_child_samples", 2, 64, log=True),
            "subsample": s.float("subsample", 0.5, 1.0),
            "colsample_bytree": s.float("colsample_bytree", 0.3, 1.0),
            "reg_alpha": s.float("reg_alpha", 1e-8, 10.0, log=True),
            "reg_lambda": s.float("reg_lambda", 1e-8, 10.0, log=True),
            **_weight(task, s)}


def _lgbm_default(task: Task) -> Params:
    params: Params = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31,
                      "min_child_samples": 20, "subsample": 1.0, "colsample_bytree": 1.0,
                      "reg_alpha": 1e-8, "reg_lambda": 1e-8}
    return params if task == "regression" else {**params, "class_weight": "none"}


def _lgbm(params: Params, task: Task, seed: int, n_jobs: int, n_cat: int) -> Any:
    import lightgbm

    cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    return cls(subsample_freq=1, random_state=seed, n_jobs=n_jobs, verbose=-1, **_cw(params))


def _xgb_space(s: Space, task: Task) -> Params:
    return {"n_estimators": s.int("n_estimators", 20, 1000, log=True),
            "learning_rate": s.float("learning_rate", 0.01, 0.5, log=True),
            "max_depth": s.int("max_depth", 2, 10),
            "min_child_weight": s.float("min_child_weight", 0.01, 20.0, log=True),
            "subsample": s.float("subsample", 0.5, 1.0),
            "colsample_bytree": s.float("colsample_bytree", 0.3, 1.0),
            "reg_alpha": s.float("reg_alpha", 1e-8, 10.0, log=True),
            "reg_lambda": s.float("reg_lambda", 1e-3, 10.0, log=True)}


def _xgb_default(task: Task) -> Params:
    return {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0,
            "subsample": 1.0, "colsample_bytree": 1.0, "reg_alpha": 1e-8, "reg_lambda": 1.0}


def _xgb(params: Params, task: Task, seed: int, n_jobs: int, n_cat: int) -> Any:
    import xgboost

    cls = xgboost.XGBRegressor if task == "regression" else xgboost.XGBClassifier
    return cls(tree_method="hist", random_state=seed, n_jobs=n_jobs, verbosity=0, **params)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("linear", "onehot", _linear_space, _linear_default, _linear),
    Family("hist_gradient_boosting", "ordinal", _hgb_space, _hgb_default, _hgb),
    Family("lightgbm", "ordinal", _lgbm_space, _lgbm_default, _lgbm, requires="lightgbm"),
    Family("random_forest", "ordinal", _forest_space, _forest_default, _forest(False)),
    Family("extra_trees", "ordinal", _forest_space, _forest_default, _forest(True)),
    Family("xgboost", "ordinal", _xgb_space, _xgb_default, _xgb, requires="xgboost"),
)}


def _xgboost_fits(task: Task, y: pd.Series) -> bool:
    """XGBoost's classifiers take the classes 0..K-1 only (and predict them back)."""
    if task == "regression":
        return True
    if not pd.api.types.is_integer_dtype(y) or pd.api.types.is_bool_dtype(y):
        return False
    return sorted(y.unique().tolist()) == list(range(y.nunique()))


def available_families(task: Task, y: pd.Series) -> list[str]:
    """The families that can run here, in warm-start order (cheapest default first)."""
    return [name for name, fam in FAMILIES.items() if fam.installed()
            and (name != "xgboost" or _xgboost_fits(task, y))]


def resolve_families(names: Sequence[str] | None, task: Task, y: pd.Series) -> list[str]:
    usable = available_families(task, y)
    if names is None:
        return usable
    if isinstance(names, str) or not names:
        raise InvalidInput("families must be a non-empty list of family names",
                           field="families")
    for name in names:
        if name not in FAMILIES:
            raise InvalidInput(f"unknown model family {name!r}; expected some of "
                               f"{', '.join(FAMILIES)}", field="families")
        if name not in usable:
            why = (f"{FAMILIES[name].requires} is not installed" if not FAMILIES[name].installed()
                   else "its classifiers need the classes to be the integers 0..K-1")
            raise InvalidInput(f"model family {name!r} cannot run here: {why}",
                               field="families")
    return list(dict.fromkeys(names))


def split_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns; other kinds (datetimes...) are not used."""
    numeric, categorical = [], []
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            numeric.append(str(name))
        elif (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
              or isinstance(dtype, pd.CategoricalDtype)):
            categorical.append(str(name))
    return numeric, categorical


def _preprocessor(encoding: str, numeric: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    parts: list[tuple[str, Any, list[str]]] = []
    if encoding == "onehot":
        if categorical:
            parts.append(("cat", make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=32,
                              sparse_output=False)), categorical))
        if numeric:
            parts.append(("num", make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                numeric))
    else:
        if categorical:  # first: HistGradientBoosting marks the first n columns categorical
            parts.append(("cat", OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=np.nan,
                encoded_missing_value=np.nan, max_categories=250), categorical))
        if numeric:
            parts.append(("num", "passthrough", numeric))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def build_model(family: str, params: Params, task: Task, frame: pd.DataFrame, *,
                seed: int, n_jobs: int = 1) -> Any:
    """An unfitted Pipeline for ``family`` with ``params`` (unprefixed) on ``frame``'s columns."""
    from sklearn.pipeline import Pipeline

    fam = FAMILIES[family]
    numeric, categorical = split_columns(frame)
    if not numeric and not categorical:
        raise InvalidInput("the training data has no numeric or categorical feature columns",
                           field="train_df")
    model = fam.make(dict(params), task, seed, n_jobs, len(categorical))
    return Pipeline([("prep", _preprocessor(fam.encoding, numeric, categorical)),
                     ("model", model)])


def suggest(trial: Any, families: Sequence[str], task: Task) -> tuple[str, Params]:
    """The family and its (unprefixed) parameters for one trial."""
    family = str(trial.suggest_categorical("family", list(families)))
    return family, FAMILIES[family].suggest(Space(trial, family), task)


def warm_starts(families: Sequence[str], task: Task) -> list[Params]:
    """Each family's default as study parameters, to enqueue before the sampler's trials."""
    return [{"family": name, **{f"{name}.{k}": v
                                for k, v in FAMILIES[name].default(task).items()}}
            for name in families]


def unprefixed(params: Params) -> tuple[str, Params]:
    """(family, parameters) from a trial's study parameters."""
    family = str(params["family"])
    cut = len(family) + 1
    return family, {k[cut:]: v for k, v in params.items() if k.startswith(f"{family}.")}
