"""Registry benchmark: modelworks against MLflow's model registry, both on SQLite, same run.

Both registries hold N models named `{team}-model-{i:05d}` (tag team=..., ten teams), three
versions each (the same small scikit-learn LogisticRegression), alias `staging` on version 2.
modelworks is seeded through its public API (`register_model`, `set_alias`); the seeding time
is reported. Timed reads, each over the same random names / prefixes on both sides:

  list_page       the first page of 100 models (by name)
  list_page_deep  the page of 100 at offset 5,000
  alias_lookup    resolve NAME@staging to its version
  prefix_search   the first 100 models whose name starts with `{team}-`
  cold_load       a new Workspace object (MLflow: a new MlflowClient), then load
                  models:/NAME@staging — nothing cached in the object; the model is usable

Targets (issue 3): list page, alias lookup and prefix search < 20 ms median; cold load
< 50 ms median. MLflow runs in its own process (benchmarks/peers/mlflow_registry.py, with
`.venv-peers`, built by `make bench-peers`). Progress goes to stderr, one JSON object to
stdout. Run with the main venv: `.venv/bin/python benchmarks/registry.py`.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_PEERS_VENV,
    PeerError,
    Timer,
    eprint,
    machine_info,
    now_iso,
    package_version,
    peers_python,
    print_json,
    ratio,
    run_peer,
    summarize_ms,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

TEAMS = ("claims", "fraud", "pricing", "churn", "credit", "marketing", "ops", "risk",
         "supply", "hr")
TARGETS_MS = {"list_page": 20.0, "alias_lookup": 20.0, "prefix_search": 20.0,
              "cold_load": 50.0}


def model_name(i: int) -> str:
    return f"{TEAMS[i % len(TEAMS)]}-model-{i:05d}"


def training_data() -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.random(200), "b": rng.random(200), "c": rng.random(200)})
    return X, (X["a"] + X["b"] > 1).astype(int)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=200, help="timed reads per workload")
    ap.add_argument("--load-repeats", type=int, default=50)
    ap.add_argument("--load-models", type=int, default=20,
                    help="models the loads rotate over (the MLflow peer registers these "
                         "through its API)")
    ap.add_argument("--deep-offset", type=int, default=5_000)
    ap.add_argument("--mlflow-seed", choices=("sql", "api"), default="sql",
                    help="how the peer seeds the models beyond --load-models (see the peer)")
    ap.add_argument("--skip-peer", action="store_true", help="measure modelworks alone")
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_PEERS_VENV)
    ap.add_argument("--peer-timeout", type=float, default=None)
    args = ap.parse_args(argv)
    for name in ("models", "repeats", "load_repeats", "load_models"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.deep_offset < 0:
        ap.error("--deep-offset must be >= 0")
    return args


def timed(fn: Callable[[Any], Any], inputs: Sequence[Any]) -> list[float]:
    fn(inputs[0])  # warm-up, untimed
    out = []
    for item in inputs:
        with Timer() as t:
            fn(item)
        out.append(t.seconds)
    return out


def seed(ws: Any, n: int, progress: Progress) -> float:
    from sklearn.linear_model import LogisticRegression

    X, y = training_data()
    estimator = LogisticRegression().fit(X, y)
    task = progress.add_task(f"modelworks: registering {n:,} models x 3 versions", total=n)
    every = max(n // 200, 1)
    with Timer() as t:
        for i in range(n):
            name = model_name(i)
            for _ in range(3):
                ws.register_model(name, model=estimator, input_example=X.head(3),
                                  tags={"team": TEAMS[i % len(TEAMS)]})
            ws.set_alias(name, "staging", 2, reason="benchmark")
            if (i + 1) % every == 0:
                progress.update(task, completed=i + 1)
                progress.refresh()
    progress.update(task, completed=n)
    progress.refresh()
    return t.seconds


def measure(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    import modelworks as mw

    X, _ = training_data()
    with tempfile.TemporaryDirectory(prefix="bench-mw-registry-") as tmp:
        path = str(Path(tmp) / "ws")
        ws = mw.Workspace(path)
        seed_seconds = seed(ws, args.models, progress)
        progress.console.print(f"modelworks: seeded in {seed_seconds:.1f} s")

        rng = random.Random(11)  # the peer draws the same names in the same order
        names = [model_name(rng.randrange(args.models)) for _ in range(args.repeats)]
        prefixes = [f"{TEAMS[rng.randrange(len(TEAMS))]}-" for _ in range(args.repeats)]
        loadable = [model_name(rng.randrange(min(args.load_models, args.models)))
                    for _ in range(args.load_repeats)]

        first = ws.list_models(limit=100)
        if len(first) != min(100, args.models):
            raise SystemExit(f"modelworks: list page returned {len(first)} models")
        if ws.resolve_model(f"models:/{names[0]}@staging").version != 2:
            raise SystemExit("modelworks: alias lookup returned the wrong version")
        hits = ws.list_models(prefix=prefixes[0], limit=100)
        if not hits or any(not m.name.startswith(prefixes[0]) for m in hits):
            raise SystemExit("modelworks: prefix search returned wrong models")

        results = {
            "list_page": summarize_ms(timed(lambda _: ws.list_models(limit=100),
                                            range(args.repeats))),
            "list_page_deep": summarize_ms(timed(
                lambda _: ws.list_models(limit=100, offset=args.deep_offset),
                range(args.repeats))),
            "alias_lookup": summarize_ms(timed(
                lambda n: ws.resolve_model(f"models:/{n}@staging"), names)),
            "prefix_search": summarize_ms(timed(
                lambda p: ws.list_models(prefix=p, limit=100), prefixes)),
        }
        ws.close()

        def cold_load(name: str) -> None:
            fresh = mw.Workspace(path)
            try:
                fresh.load_model(f"models:/{name}@staging")
            finally:
                fresh.close()

        results["cold_load"] = summarize_ms(timed(cold_load, loadable))
        check = mw.Workspace(path)
        predictions = check.load_model(f"models:/{loadable[0]}@staging").predict(X)
        check.close()
        if len(predictions) != len(X):
            raise SystemExit("modelworks: loaded model did not predict every row")
        for key, value in results.items():
            progress.console.print(f"  {key}: median {value['median_ms']:.2f} ms")
        results["seed"] = {"api": "register_model x3 + set_alias per model",
                           "seconds": round(seed_seconds, 2),
                           "versions_per_s": round(3 * args.models / seed_seconds, 1)}
        return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    if not args.skip_peer:
        try:
            peers_python(args.peers_venv)
        except PeerError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            return 2

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, auto_refresh=False) as progress:
        mw_results = measure(args, progress)

    peer: dict[str, Any] | None = None
    peer_error: str | None = None
    if not args.skip_peer:
        console.print("mlflow: running benchmarks/peers/mlflow_registry.py in .venv-peers ...")
        try:
            peer = run_peer("mlflow_registry.py", [
                "--models", str(args.models), "--api-models", str(args.load_models),
                "--seed", args.mlflow_seed, "--repeats", str(args.repeats),
                "--load-repeats", str(args.load_repeats),
                "--deep-offset", str(args.deep_offset)],
                venv=args.peers_venv, timeout=args.peer_timeout)
        except PeerError as exc:
            peer_error = str(exc)
            console.print(f"[bold red]mlflow peer failed:[/] {exc}")

    report: dict[str, Any] = {"benchmark": "registry"}
    for key in ("list_page", "list_page_deep", "alias_lookup", "prefix_search", "cold_load"):
        ours = mw_results[key]["median_ms"]
        theirs = peer[key]["median_ms"] if peer else None
        goal = TARGETS_MS.get(key)
        report[key] = {
            "unit": "median ms (lower is better); ratio = mlflow / modelworks",
            "modelworks": ours,
            "mlflow": theirs,
            "ratio": ratio(theirs, ours),
            "target": f"< {goal:g} ms median" if goal else None,
            "met": (ours < goal) if goal else None,
            "details": {"modelworks": mw_results[key], "mlflow": peer[key] if peer else None},
        }
    report.update({
        "seed": {"modelworks": mw_results["seed"], "mlflow": peer["seed"] if peer else None},
        "date": now_iso(),
        "machine": machine_info(),
        "versions": {
            "modelworks": package_version("modelworks"),
            "mlflow": peer["versions"]["mlflow"] if peer else None,
            "sqlalchemy": package_version("sqlalchemy"),
            "scikit-learn": package_version("scikit-learn"),
        },
        "config": {
            "models": args.models, "versions_per_model": 3, "repeats": args.repeats,
            "load_repeats": args.load_repeats, "load_models": args.load_models,
            "deep_offset": args.deep_offset, "mlflow_seed": args.mlflow_seed,
            "backend": "SQLite file in a fresh temp dir, local artifacts",
            "mlflow_sqlite_journal_mode": peer.get("sqlite_journal_mode") if peer else None,
            "skip_peer": args.skip_peer,
        },
    })
    if peer_error:
        report["peer_error"] = peer_error
    print_json(report)
    for key in ("list_page", "list_page_deep", "alias_lookup", "prefix_search", "cold_load"):
        row = report[key]
        met = {True: "[green]met[/]", False: "[red]NOT met[/]", None: ""}[row["met"]]
        console.print(f"{key:>15}: modelworks {row['modelworks']} ms, mlflow {row['mlflow']} "
                      f"ms, ratio {row['ratio']} {row['target'] or ''} {met}")
    return 1 if peer_error else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        eprint("interrupted")
        sys.exit(130)
