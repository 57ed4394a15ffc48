"""FLAML side of the AutoML benchmark (run with `.venv-peers/bin/python`).

For each data set in `--datasets` (a JSON list the modelworks side wrote: name, task, metric,
train and test Parquet paths, label), runs `flaml.AutoML().fit(X_train, y_train,
task=..., metric=..., time_budget=..., n_jobs=..., seed=...)` with FLAML's defaults otherwise
(its own estimator list, its own resampling choice, retraining the best on all rows), then
scores `predict_proba` / `predict` on the held-out rows with the benchmark's metric.

`--export-fair PATH` writes statsmodels' `fair` data set (affairs > 0 as the binary label)
to PATH as Parquet and exits: statsmodels lives in this venv, not in modelworks'.

Prints one JSON object on stdout; progress goes to stderr. Self-contained on purpose: it runs
in the peers' virtualenv, which does not have modelworks.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

# FLAML's metric names for the benchmark's metrics (FLAML minimises 1 - score internally).
FLAML_METRIC = {"roc_auc": "roc_auc", "accuracy": "accuracy", "r2": "r2"}


def log(msg: str) -> None:
    print(f"[flaml] {msg}", file=sys.stderr, flush=True)


def export_fair(path: Path) -> None:
    import statsmodels.api as sm

    data = sm.datasets.fair.load_pandas().data
    data["affair"] = (data.pop("affairs") > 0).astype("int64")
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_parquet(path, index=False)


def held_out_score(metric: str, y: pd.Series, model: Any, x: pd.DataFrame) -> float:
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if metric == "roc_auc":
        proba = model.predict_proba(x)
        classes = list(model.classes_)
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    if metric == "accuracy":
        return float(accuracy_score(y, model.predict(x)))
    return float(r2_score(y, model.predict(x)))


def run_one(spec: dict[str, Any], *, budget: float, n_jobs: int, seed: int) -> dict[str, Any]:
    from flaml import AutoML

    train = pd.read_parquet(spec["train"])
    test = pd.read_parquet(spec["test"])
    label = spec["label"]
    automl = AutoML()
    log(f"{spec['name']}: fitting for {budget:g} s ...")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(train.drop(columns=[label]), train[label],
                   task="regression" if spec["task"] == "regression" else "classification",
                   metric=FLAML_METRIC[spec["metric"]], time_budget=budget, n_jobs=n_jobs,
                   seed=seed, verbose=0)
    seconds = time.perf_counter() - t0
    score = held_out_score(spec["metric"], test[label], automl, test.drop(columns=[label]))
    log(f"{spec['name']}: {spec['metric']} {score:.4f} in {seconds:.1f} s "
        f"({automl.best_estimator})")
    return {"score": round(score, 6), "seconds": round(seconds, 2),
            "best_estimator": automl.best_estimator,
            "best_config": {k: v for k, v in (automl.best_config or {}).items()},
            "cv_score": round(1 - float(automl.best_loss), 6)}  # FLAML's loss: 1 - score


def _xgboost_version() -> str | None:
    try:
        import xgboost
    except ImportError:
        return None
    return str(xgboost.__version__)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=Path, help="JSON list of data set specs")
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export-fair", type=Path, default=None)
    args = ap.parse_args()
    if args.export_fair is not None:
        export_fair(args.export_fair)
        print(json.dumps({"fair": str(args.export_fair)}))
        return 0
    if args.datasets is None:
        ap.error("--datasets is required")
    logging.getLogger("flaml").setLevel(logging.ERROR)
    specs = json.loads(args.datasets.read_text())
    results = {spec["name"]: run_one(spec, budget=args.budget, n_jobs=args.n_jobs,
                                     seed=args.seed) for spec in specs}
    print(json.dumps({
        "results": results,
        "versions": {"flaml": version("flaml"), "lightgbm": version("lightgbm"),
                     "xgboost": _xgboost_version(), "scikit-learn": version("scikit-learn")},
        "config": {"budget_s": args.budget, "n_jobs": args.n_jobs, "seed": args.seed},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
