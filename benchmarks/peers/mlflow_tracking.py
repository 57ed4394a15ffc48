"""MLflow side of the tracking benchmark (run with `.venv-peers/bin/python`).

MLflow's SQLAlchemy tracking store on a SQLite file in a fresh temp dir, artifacts beside it.
Workloads (sizes from the CLI):

  per_call  N runs x (P `mlflow.log_param` calls + S `mlflow.log_metric` calls, one per step)
            through the fluent API, default (synchronous) logging: metric points/s.
  batch     the same volume through `MlflowClient.log_batch`, one call per run holding the
            S Metric objects and the P params: metric points/s.
  search    an experiment of M runs (seeded with log_batch: metrics auc ~ U[0,1] and loss,
            param model in rf/gb/lr), then `MlflowClient.search_runs(filter_string=
            "metrics.auc > 0.8", order_by=["metrics.auc DESC"], max_results=100)` repeated
            after a warm-up: median latency in ms. `--big-search-runs` adds a second one.

Prints one JSON object on stdout; progress goes to stderr. Self-contained on purpose: it runs in
the peers' virtualenv, which does not have modelworks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

# No network here: keep MLflow from trying to send telemetry or probing git remotes.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

MODELS = ("rf", "gb", "lr")


def log(msg: str) -> None:
    print(f"[mlflow] {msg}", file=sys.stderr, flush=True)


class Store:
    """A fresh MLflow SQLite store in its own temp dir (migrations run here, untimed)."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / name
        self.dir.mkdir()
        self.db_path = self.dir / "mlflow.db"
        self.uri = f"sqlite:///{self.db_path}"
        self.artifacts = (self.dir / "artifacts").as_uri()
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri)

    def journal_mode(self) -> str:
        with sqlite3.connect(self.db_path) as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    def experiment(self, name: str) -> str:
        return self.client.create_experiment(name, artifact_location=f"{self.artifacts}/{name}")


def params_for(i: int, n_params: int) -> dict[str, str]:
    return {f"p{j}": str(i * n_params + j) for j in range(n_params)}


def per_call(store: Store, runs: int, steps: int, n_params: int) -> dict:
    exp_id = store.experiment("per_call")
    t0 = time.perf_counter()
    for i in range(runs):
        with mlflow.start_run(experiment_id=exp_id, run_name=f"r{i}"):
            for k, v in params_for(i, n_params).items():
                mlflow.log_param(k, v)
            for step in range(steps):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    seconds = time.perf_counter() - t0
    check_points(store, exp_id, runs, steps)
    points = runs * steps
    return {
        "api": "mlflow.log_param + mlflow.log_metric (fluent, synchronous)",
        "sqlite_journal_mode": store.journal_mode(),
        "runs": runs,
        "points": points,
        "seconds": round(seconds, 4),
        "points_per_s": round(points / seconds, 1),
    }


def batch(store: Store, runs: int, steps: int, n_params: int) -> dict:
    exp_id = store.experiment("batch")
    client = store.client
    t0 = time.perf_counter()
    for i in range(runs):
        run = client.create_run(exp_id, run_name=f"r{i}")
        ts = int(time.time() * 1000)
        metrics = [Metric("loss", 1.0 / (s + 1), ts, s) for s in range(steps)]
        params = [Param(k, v) for k, v in params_for(i, n_params).items()]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        client.set_terminated(run.info.run_id)
    seconds = time.perf_counter() - t0
    check_points(store, exp_id, runs, steps)
    points = runs * steps
    return {
        "api": "MlflowClient.create_run + log_batch + set_terminated",
        "runs": runs,
        "points": points,
        "seconds": round(seconds, 4),
        "points_per_s": round(points / seconds, 1),
    }


def check_points(store: Store, exp_id: str, runs: int, steps: int) -> None:
    """Untimed: the runs and the metric points really are in the store."""
    found = store.client.search_runs([exp_id], max_results=max(runs, 1))
    if len(found) != runs:
        raise SystemExit(f"expected {runs} runs in the store, found {len(found)}")
    history = store.client.get_metric_history(found[0].info.run_id, "loss")
    if len(history) != steps:
        raise SystemExit(f"expected {steps} points of 'loss', found {len(history)}")


def seed_search(store: Store, name: str, n_runs: int, seed: int = 42) -> tuple[str, float]:
    exp_id = store.experiment(name)
    client = store.client
    rng = random.Random(seed)
    t0 = time.perf_counter()
    every = max(n_runs // 10, 1)
    for i in range(n_runs):
        auc = rng.random()
        loss = rng.random()
        model = rng.choice(MODELS)
        run = client.create_run(exp_id, run_name=f"s{i}")
        ts = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("auc", auc, ts, 0), Metric("loss", loss, ts, 0)],
            params=[Param("model", model)],
            tags=[RunTag("bench", "search")],
        )
        client.set_terminated(run.info.run_id)
        if (i + 1) % every == 0:
            log(f"seeded {i + 1}/{n_runs} runs ({time.perf_counter() - t0:.1f} s)")
    return exp_id, time.perf_counter() - t0


def search(store: Store, n_runs: int, repeats: int, name: str) -> dict:
    exp_id, seed_seconds = seed_search(store, name, n_runs)
    client = store.client

    def query():
        return client.search_runs(
            [exp_id],
            filter_string="metrics.auc > 0.8",
            order_by=["metrics.auc DESC"],
            max_results=100,
        )

    result = query()  # warm-up
    aucs = [r.data.metrics["auc"] for r in result]
    if aucs != sorted(aucs, reverse=True) or any(a <= 0.8 for a in aucs):
        raise SystemExit("search_runs returned rows out of order or not matching the filter")
    expected = min(100, _count_matching(n_runs))
    if len(result) != expected:
        raise SystemExit(f"search_runs returned {len(result)} rows, expected {expected}")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        query()
        times.append(time.perf_counter() - t0)
    ms = sorted(t * 1000 for t in times)
    return {
        "runs": n_runs,
        "rows_returned": len(result),
        "seed_seconds": round(seed_seconds, 2),
        "seed_runs_per_s": round(n_runs / seed_seconds, 1),
        "repeats": repeats,
        "median_ms": round(statistics.median(ms), 3),
        "min_ms": round(ms[0], 3),
        "max_ms": round(ms[-1], 3),
    }


def _count_matching(n_runs: int, seed: int = 42) -> int:
    rng = random.Random(seed)
    count = 0
    for _ in range(n_runs):
        auc = rng.random()
        rng.random()
        rng.choice(MODELS)
        count += auc > 0.8
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--params", type=int, default=10)
    ap.add_argument("--search-runs", type=int, default=2000)
    ap.add_argument("--big-search-runs", type=int, default=0, help="0: skip (seeding is slow)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--only", choices=("per_call", "batch", "search"), action="append")
    args = ap.parse_args(argv)
    only = set(args.only or ("per_call", "batch", "search"))

    out: dict = {
        "peer": "mlflow",
        "versions": {
            "mlflow": version("mlflow"),
            "sqlalchemy": version("sqlalchemy"),
            "python": platform.python_version(),
        },
        "backend": "sqlite (SQLAlchemy store), local artifacts",
    }
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        root = Path(tmp)
        os.chdir(root)  # anything MLflow writes relative to cwd lands in the temp dir
        if "per_call" in only:
            log(f"per-call logging: {args.runs} runs x {args.steps} steps")
            out["per_call"] = per_call(Store(root, "per_call"), args.runs, args.steps, args.params)
            log(f"  {out['per_call']['points_per_s']:.0f} points/s")
        if "batch" in only:
            log(f"log_batch: {args.runs} runs x {args.steps} steps")
            out["batch"] = batch(Store(root, "batch"), args.runs, args.steps, args.params)
            log(f"  {out['batch']['points_per_s']:.0f} points/s")
        if "search" in only:
            log(f"search_runs over {args.search_runs} runs")
            out["search"] = search(Store(root, "search"), args.search_runs, args.repeats, "s")
            log(f"  median {out['search']['median_ms']:.1f} ms")
            if args.big_search_runs:
                log(f"search_runs over {args.big_search_runs} runs")
                out["search_big"] = search(
                    Store(root, "search_big"), args.big_search_runs, args.repeats, "big"
                )
                log(f"  median {out['search_big']['median_ms']:.1f} ms")
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
