"""MLflow side of the serving benchmark (run with `.venv-peers/bin/python`): log the model.

Trains the same model as the modelworks side — LogisticRegression(max_iter=5000) on
scikit-learn's breast-cancer data, spaces in column names replaced by underscores, so the
coefficients are identical — and logs it with `mlflow.sklearn.log_model(...,
input_example=...)` to a tracking store on a SQLite file inside `--dir` (artifacts there too;
the working directory is `--dir`, so no `mlruns/` appears anywhere else).

The driver (benchmarks/serving.py) then starts `mlflow models serve -m MODEL_URI
--env-manager local --workers 1` itself and measures it with the same client as modelworks.

Prints one JSON object: the model URI, the tracking URI, a hash of the coefficients (the
driver checks it against its own), predictions for the first rows, and — for reference — the
in-process cost of what MLflow's scoring server does per request (a one-row DataFrame through
the pyfunc wrapper, which enforces the schema). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def log(msg: str) -> None:
    print(f"[mlflow] {msg}", file=sys.stderr, flush=True)


def median_us(fn, repeats: int, warmup: int = 100) -> float:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return round(statistics.median(out) * 1e6, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, required=True, help="where the store and artifacts go")
    ap.add_argument("--example-rows", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2000)
    args = ap.parse_args()
    root = args.dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)  # nothing MLflow writes by default can land in the caller's directory

    import mlflow
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    y = data.target
    estimator = LogisticRegression(max_iter=5000).fit(X, y)

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("serving", artifact_location=(root / "artifacts").as_uri())
    t0 = time.perf_counter()
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(estimator, name="model",
                                        input_example=X.head(args.example_rows))
    log(f"logged {info.model_uri} in {time.perf_counter() - t0:.1f} s")

    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    one = X.head(1)
    split = one.to_dict(orient="split")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyfunc_us = median_us(lambda: pyfunc.predict(
            pd.DataFrame(split["data"], columns=split["columns"])), args.repeats)
    log(f"in-process pyfunc.predict(one-row DataFrame): median {pyfunc_us:.0f} us")

    coef = estimator.coef_.tobytes() + estimator.intercept_.tobytes()
    out = {
        "model_uri": info.model_uri,
        "tracking_uri": uri,
        "coef_sha256": hashlib.sha256(coef).hexdigest(),
        "predictions_head": estimator.predict(X.head(args.example_rows)).tolist(),
        "in_process_pyfunc_predict_one_row_dataframe_us": pyfunc_us,
        "versions": {"mlflow": version("mlflow"), "scikit-learn": version("scikit-learn"),
                     "pandas": version("pandas"), "uvicorn": version("uvicorn"),
                     "fastapi": version("fastapi")},
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
