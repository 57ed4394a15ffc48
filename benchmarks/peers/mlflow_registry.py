"""MLflow side of the registry benchmark (run with `.venv-peers/bin/python`).

MLflow's SQLAlchemy registry store on a SQLite file in a fresh temp dir. The registry holds
N registered models named `{team}-model-{i:05d}` (tag team=..., ten teams) with 3 versions
each and the alias `staging` on version 2 — the same names, tags and aliases the modelworks
side registers.

Seeding (untimed): the first `--api-models` models go through MLflow's public API (one
logged scikit-learn model, `create_registered_model`, three `create_model_version`,
`set_registered_model_alias`); they are also the ones loaded. With `--seed sql` (default)
the rest are cloned from those API-made rows with one executemany per table — the public API
needs about 17 ms a call here, i.e. about 15 minutes for 10,000 models; `--seed api` does
them all through the API. The timed reads below always go through MLflow's public API.

  list_page       search_registered_models(max_results=100), the first page
  list_page_deep  the page at offset 5,000 (MLflow's own page token for that offset)
  alias_lookup    get_model_version_by_alias(name, "staging") for random names
  prefix_search   search_registered_models("name LIKE '{team}-%'", max_results=100)
  cold_load       a new MlflowClient, then mlflow.sklearn.load_model("models:/NAME@staging")

Prints one JSON object on stdout; progress goes to stderr. Self-contained on purpose: it runs
in the peers' virtualenv, which does not have modelworks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from mlflow.utils.search_utils import SearchUtils
from sklearn.linear_model import LogisticRegression

TEAMS = ("claims", "fraud", "pricing", "churn", "credit", "marketing", "ops", "risk",
         "supply", "hr")


def log(msg: str) -> None:
    print(f"[mlflow] {msg}", file=sys.stderr, flush=True)


def model_name(i: int) -> str:
    return f"{TEAMS[i % len(TEAMS)]}-model-{i:05d}"


def training_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.random(200), "b": rng.random(200), "c": rng.random(200)})
    return X, (X["a"] + X["b"] > 1).astype(int)


def summarize(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3),
            "min_ms": round(ms[0], 3), "max_ms": round(ms[-1], 3), "n": len(ms)}


def timed(fn, args_list: list) -> list[float]:
    fn(args_list[0])  # warm-up
    out = []
    for a in args_list:
        t0 = time.perf_counter()
        fn(a)
        out.append(time.perf_counter() - t0)
    return out


def api_register(client: MlflowClient, i: int, source: str, run_id: str, model_id: str) -> None:
    name = model_name(i)
    client.create_registered_model(name, tags={"team": TEAMS[i % len(TEAMS)]})
    for _ in range(3):
        client.create_model_version(name, source=source, run_id=run_id, model_id=model_id)
    client.set_registered_model_alias(name, "staging", "2")


def clone_rows(db_path: Path, template: str, start: int, stop: int) -> None:
    """Copy the API-made rows of `template` for models start..stop-1 (names, tags, times)."""
    con = sqlite3.connect(db_path)
    try:
        tables = {"registered_models": "name", "model_versions": "name",
                  "registered_model_tags": "name", "registered_model_aliases": "name"}
        for table, key in tables.items():
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            rows = con.execute(f"SELECT * FROM {table} WHERE {key} = ?", (template,)).fetchall()
            if not rows:
                raise SystemExit(f"template {template} has no rows in {table}")
            idx = cols.index(key)
            out = []
            for i in range(start, stop):
                name = model_name(i)
                for row in rows:
                    new = list(row)
                    new[idx] = name
                    if table == "registered_model_tags" and "value" in cols:
                        new[cols.index("value")] = TEAMS[i % len(TEAMS)]
                    out.append(new)
            marks = ", ".join("?" for _ in cols)
            con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", out)
        con.commit()
    finally:
        con.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--api-models", type=int, default=20)
    ap.add_argument("--seed", choices=("sql", "api"), default="sql")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--load-repeats", type=int, default=50)
    ap.add_argument("--deep-offset", type=int, default=5_000)
    args = ap.parse_args()
    api_models = min(args.api_models, args.models)

    with tempfile.TemporaryDirectory(prefix="bench-mlflow-registry-") as tmp:
        db_path = Path(tmp) / "mlflow.db"
        uri = f"sqlite:///{db_path}"
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        exp = client.create_experiment("registry", artifact_location=Path(tmp, "art").as_uri())
        X, y = training_data()
        estimator = LogisticRegression().fit(X, y)
        with mlflow.start_run(experiment_id=exp) as run:
            info = mlflow.sklearn.log_model(estimator, name="model", input_example=X.head(3))
        run_id = run.info.run_id

        t0 = time.perf_counter()
        n_api = args.models if args.seed == "api" else api_models
        every = max(n_api // 20, 1)
        for i in range(n_api):
            api_register(client, i, info.model_uri, run_id, info.model_id)
            if (i + 1) % every == 0:
                log(f"seeded {i + 1:,}/{n_api:,} models through the API")
        api_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        if n_api < args.models:
            clone_rows(db_path, model_name(0), n_api, args.models)
        clone_seconds = time.perf_counter() - t1
        log(f"seeded {args.models:,} models x 3 versions "
            f"({n_api} via API in {api_seconds:.1f} s, rest cloned in {clone_seconds:.1f} s)")

        rng = random.Random(11)
        names = [model_name(rng.randrange(args.models)) for _ in range(args.repeats)]
        prefixes = [f"{TEAMS[rng.randrange(len(TEAMS))]}-" for _ in range(args.repeats)]
        loadable = [model_name(rng.randrange(api_models)) for _ in range(args.load_repeats)]

        first = client.search_registered_models(max_results=100)
        if len(first) != min(100, args.models):
            raise SystemExit(f"list page returned {len(first)} models")
        deep_token = SearchUtils.create_page_token(args.deep_offset)
        deep = client.search_registered_models(max_results=100, page_token=deep_token)
        if args.models > args.deep_offset and not deep:
            raise SystemExit("deep page returned nothing")
        got = client.get_model_version_by_alias(names[0], "staging")
        if int(got.version) != 2:
            raise SystemExit(f"alias lookup returned version {got.version}")
        hits = client.search_registered_models(filter_string=f"name LIKE '{prefixes[0]}%'",
                                               max_results=100)
        if not hits or any(not m.name.startswith(prefixes[0]) for m in hits):
            raise SystemExit("prefix search returned wrong models")

        results = {
            "list_page": summarize(timed(
                lambda _: client.search_registered_models(max_results=100),
                list(range(args.repeats)))),
            "list_page_deep": summarize(timed(
                lambda _: client.search_registered_models(max_results=100,
                                                          page_token=deep_token),
                list(range(args.repeats)))),
            "alias_lookup": summarize(timed(
                lambda n: client.get_model_version_by_alias(n, "staging"), names)),
            "prefix_search": summarize(timed(
                lambda p: client.search_registered_models(filter_string=f"name LIKE '{p}%'",
                                                          max_results=100), prefixes)),
        }

        def cold_load(name: str) -> None:
            MlflowClient(tracking_uri=uri, registry_uri=uri)
            model = mlflow.sklearn.load_model(f"models:/{name}@staging")
            if not hasattr(model, "predict"):
                raise SystemExit("load returned no model")

        results["cold_load"] = summarize(timed(cold_load, loadable))
        check = mlflow.sklearn.load_model(f"models:/{loadable[0]}@staging")
        if not (check.predict(X) == estimator.predict(X)).all():
            raise SystemExit("loaded model predicts differently")
        for key, value in results.items():
            log(f"{key}: median {value['median_ms']:.2f} ms")

        out = {
            **results,
            "seed": {"mode": args.seed, "api_models": n_api, "api_seconds": round(api_seconds, 2),
                     "clone_seconds": round(clone_seconds, 2), "models": args.models,
                     "versions": args.models * 3},
            "sqlite_journal_mode": sqlite3.connect(db_path).execute(
                "PRAGMA journal_mode").fetchone()[0],
            "versions": {"mlflow": version("mlflow"), "sqlalchemy": version("sqlalchemy"),
                         "scikit-learn": version("scikit-learn")},
        }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
