"""MLflow side of the validation benchmark (run with `.venv-peers/bin/python`).

Loads the scikit-learn forest the modelworks side trained (a pickle: both venvs have the
same scikit-learn) and the same hold-out Parquet file, logs the model with
`mlflow.sklearn.log_model` to a SQLite tracking store in `--workdir` (untimed), then times
`mlflow.models.evaluate(model_uri, data, targets="label", model_type="classifier")` with the
default evaluator and its default configuration. Whether shap is installed here decides
whether MLflow's evaluator computes SHAP explanations (it skips them without shap); the JSON
records which.

Prints one JSON object on stdout; progress goes to stderr. Self-contained on purpose: it runs
in the peers' virtualenv, which does not have modelworks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import sys
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow
import pandas as pd


def log(msg: str) -> None:
    print(f"[mlflow] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{(args.workdir / 'mlflow.db').resolve()}")
    model = pickle.loads(args.model.read_bytes())  # our own file, written by the same bench
    data = pd.read_parquet(args.data)
    # artifacts beside the database in the work dir, never in the caller's cwd (./mlruns)
    exp = mlflow.create_experiment(
        "validation-bench", artifact_location=(args.workdir / "artifacts").resolve().as_uri())
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(model, name="model",
                                        skops_trusted_types=["sklearn.tree._tree.Tree"])
        log(f"evaluating on {len(data):,} rows ...")
        t0 = time.perf_counter()
        result = mlflow.models.evaluate(info.model_uri, data, targets="label",
                                        model_type="classifier")
        seconds = time.perf_counter() - t0
    log(f"evaluated in {seconds:.1f} s")
    metrics = {k: round(float(v), 4) for k, v in result.metrics.items()
               if k in ("accuracy_score", "f1_score", "roc_auc", "log_loss", "precision_score",
                        "recall_score")}
    out = {
        "seconds": round(seconds, 2),
        "metrics": metrics,
        "shap_installed": importlib.util.find_spec("shap") is not None,
        "artifacts": sorted(result.artifacts),
        "versions": {"mlflow": version("mlflow"), "scikit-learn": version("scikit-learn")},
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
