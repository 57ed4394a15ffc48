"""Tracking benchmark: modelworks against MLflow, both on SQLite, measured in the same run.

Workloads (sizes from the CLI; each on a fresh store in a temp dir):

  per_call_logging  R runs, each: P params logged one call at a time, then S metric points
                    logged one call per step; metric points/s. The modelworks figure stops
                    the clock only after every point is durably written (runs ended, flush).
  batch_logging     the same volume, one bulk call per run (points and params together).
  search            an experiment of N runs (metrics auc ~ U[0,1] and loss, param model in
                    rf/gb/lr), then search "metrics.auc > 0.8" ordered by auc DESC, 100 rows,
                    repeated after a warm-up; median ms.
  search_big        the same at --big-search-runs (modelworks; MLflow only with --mlflow-100k,
                    since seeding MLflow with 100,000 runs takes very long).

MLflow runs in its own process with the peers' interpreter (benchmarks/peers/
mlflow_tracking.py; `make bench-peers` builds it). Progress goes to stderr; stdout holds one
JSON object. Run with the main venv: `.venv/bin/python benchmarks/tracking.py`.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    time_repeated,
)
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

MODELS = ("rf", "gb", "lr")
SEARCH_FILTER = "metrics.auc > 0.8"
SEARCH_ORDER = ["metrics.auc DESC"]
SEARCH_LIMIT = 100
SEED = 42

TARGETS = {
    "per_call_logging": (50.0, ">= 50x MLflow points/s (mlflow.log_metric, one call per point)"),
    "batch_logging": (10.0, ">= 10x MLflow points/s (MlflowClient.log_batch)"),
    "search": (10.0, ">= 10x faster than MLflow search_runs (median)"),
    "search_big": (100.0, "< 100 ms median for modelworks"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per logging workload")
    ap.add_argument("--steps", type=int, default=100, help="metric points per run")
    ap.add_argument("--params", type=int, default=10, help="params per run")
    ap.add_argument("--search-runs", type=int, default=2000)
    ap.add_argument("--big-search-runs", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=20, help="timed searches (after a warm-up)")
    ap.add_argument("--skip-peer", action="store_true", help="measure modelworks alone")
    ap.add_argument("--mlflow-100k", action="store_true",
                    help="also seed and search MLflow at --big-search-runs (very slow)")
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_PEERS_VENV)
    ap.add_argument("--peer-timeout", type=float, default=None, help="seconds (default: none)")
    args = ap.parse_args(argv)
    for name in ("runs", "steps", "search_runs", "big_search_runs", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.params < 0:
        ap.error("--params must be >= 0")
    return args


# --- data shared by both sides (the peer generates the same values from the same seed) ---


def params_for(i: int, n_params: int) -> dict[str, str]:
    return {f"p{j}": str(i * n_params + j) for j in range(n_params)}


def search_rows(n_runs: int, seed: int = SEED) -> Iterator[tuple[float, float, str]]:
    """(auc, loss, model) per run, drawn in the same order as the MLflow peer draws them."""
    rng = random.Random(seed)
    for _ in range(n_runs):
        auc = rng.random()
        loss = rng.random()
        yield auc, loss, rng.choice(MODELS)


def expected_hits(n_runs: int) -> int:
    return min(SEARCH_LIMIT, sum(1 for auc, _, _ in search_rows(n_runs) if auc > 0.8))


# --- modelworks side ----------------------------------------------------------------------


@contextmanager
def fresh_workspace(name: str) -> Iterator[Any]:
    import modelworks as mw

    with tempfile.TemporaryDirectory(prefix=f"bench-mw-{name}-") as tmp:
        ws = mw.Workspace(str(Path(tmp) / "ws"))
        try:
            yield ws
        finally:
            close = getattr(ws, "close", None)
            if close is not None:
                close()


def journal_mode(ws: Any) -> str | None:
    """The SQLite journal mode of the workspace's database file (None if not SQLite)."""
    path = getattr(getattr(ws, "db", None), "sqlite_path", None)
    if path is None:
        return None
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def check_logged(ws: Any, experiment: str, runs: int, steps: int) -> None:
    """Untimed: every run and every point is in the store."""
    found = ws.search_runs(experiment=experiment, limit=runs + 1)
    if len(found) != runs:
        raise SystemExit(f"modelworks: expected {runs} runs, found {len(found)}")
    points = sum(r.metric_count for r in found)
    if points != runs * steps:
        raise SystemExit(f"modelworks: expected {runs * steps} metric points, found {points}")
    if any(r.status != "FINISHED" for r in found):
        raise SystemExit("modelworks: some runs did not end FINISHED")


def mw_per_call(runs: int, steps: int, n_params: int) -> dict[str, Any]:
    with fresh_workspace("per-call") as ws:
        with Timer() as t:
            for i in range(runs):
                with ws.start_run(experiment="per_call", name=f"r{i}") as run:
                    for k, v in params_for(i, n_params).items():
                        run.log_param(k, v)
                    for step in range(steps):
                        run.log_metric("loss", 1.0 / (step + 1), step=step)
            ws.flush()  # the clock stops when every point is written, not when it is queued
        check_logged(ws, "per_call", runs, steps)
        mode = journal_mode(ws)
    points = runs * steps
    return {
        "api": "run.log_param + run.log_metric (queued; timed until runs ended and flushed)",
        "sqlite_journal_mode": mode,
        "runs": runs,
        "points": points,
        "seconds": round(t.seconds, 4),
        "points_per_s": round(points / t.seconds, 1),
    }


def mw_batch(runs: int, steps: int, n_params: int) -> dict[str, Any]:
    with fresh_workspace("batch") as ws:
        with Timer() as t:
            for i in range(runs):
                with ws.start_run(experiment="batch", name=f"r{i}") as run:
                    run.log_batch(
                        metrics=[("loss", 1.0 / (s + 1), s) for s in range(steps)],
                        params=params_for(i, n_params),
                    )
            ws.flush()
        check_logged(ws, "batch", runs, steps)
    points = runs * steps
    return {
        "api": "ws.start_run + run.log_batch (synchronous) + end",
        "runs": runs,
        "points": points,
        "seconds": round(t.seconds, 4),
        "points_per_s": round(points / t.seconds, 1),
    }


def mw_seed(ws: Any, experiment: str, n_runs: int, progress: Progress) -> float:
    """Seed through the public API: one run per row, its metrics written with log_batch."""
    task = progress.add_task(f"modelworks: seeding {n_runs:,} runs", total=n_runs)
    every = max(n_runs // 200, 1)
    with Timer() as t:
        for i, (auc, loss, model) in enumerate(search_rows(n_runs)):
            with ws.start_run(experiment=experiment, name=f"s{i}", params={"model": model},
                              tags={"bench": "search"}) as run:
                run.log_batch(metrics=[("auc", auc, 0), ("loss", loss, 0)])
            if (i + 1) % every == 0:
                progress.update(task, completed=i + 1)
                progress.refresh()
        ws.flush()
    progress.update(task, completed=n_runs)
    progress.refresh()
    return t.seconds


def mw_search(n_runs: int, repeats: int, progress: Progress) -> dict[str, Any]:
    with fresh_workspace(f"search-{n_runs}") as ws:
        seed_seconds = mw_seed(ws, "search", n_runs, progress)

        def query() -> list[Any]:
            return ws.search_runs(experiment="search", filter=SEARCH_FILTER,
                                  order_by=SEARCH_ORDER, limit=SEARCH_LIMIT)

        result = query()
        aucs = [r.metrics["auc"] for r in result]
        if aucs != sorted(aucs, reverse=True) or any(a <= 0.8 for a in aucs):
            raise SystemExit("modelworks: search returned rows out of order or off the filter")
        if len(result) != expected_hits(n_runs):
            raise SystemExit(f"modelworks: search returned {len(result)} rows, "
                             f"expected {expected_hits(n_runs)}")
        times = time_repeated(query, repeats, warmup=1)
    return {
        "runs": n_runs,
        "rows_returned": len(result),
        "seed_seconds": round(seed_seconds, 2),
        "seed_runs_per_s": round(n_runs / seed_seconds, 1),
        "repeats": repeats,
        **summarize_ms(times),
    }


# --- report -------------------------------------------------------------------------------


def _throughput(name: str, mw: dict[str, Any], peer: dict[str, Any] | None) -> dict[str, Any]:
    goal, text = TARGETS[name]
    mlflow = peer["points_per_s"] if peer else None
    r = ratio(mw["points_per_s"], mlflow)
    return {
        "unit": "metric points/s (higher is better)",
        "modelworks": mw["points_per_s"],
        "mlflow": mlflow,
        "ratio": r,
        "target": text,
        "met": None if r is None else r >= goal,
        "details": {"modelworks": mw, "mlflow": peer},
    }


def _latency(name: str, mw: dict[str, Any], peer: dict[str, Any] | None) -> dict[str, Any]:
    goal, text = TARGETS[name]
    mlflow = peer["median_ms"] if peer else None
    r = ratio(mlflow, mw["median_ms"])  # how many times faster modelworks is
    if name == "search_big":
        met: bool | None = mw["median_ms"] < goal
    else:
        met = None if r is None else r >= goal
    return {
        "unit": "median ms per search (lower is better); ratio = mlflow / modelworks",
        "modelworks": mw["median_ms"],
        "mlflow": mlflow,
        "ratio": r,
        "target": text,
        "met": met,
        "details": {"modelworks": mw, "mlflow": peer},
    }


def _in_git_repo() -> bool:
    try:
        out = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "true"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    if not args.skip_peer:
        try:
            peers_python(args.peers_venv)  # fail before minutes of work, not after
        except PeerError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            return 2

    mw_results: dict[str, dict[str, Any]] = {}
    # Refreshed by hand, only outside timed sections: no render thread competes with the
    # code being measured.
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, auto_refresh=False) as progress:

        def phase(label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            progress.console.print(f"modelworks: {label} ...")
            out = fn()
            progress.console.print(f"  -> {_headline(out)}")
            return out

        mw_results["per_call_logging"] = phase(
            f"per-call logging, {args.runs} runs x {args.steps} steps",
            lambda: mw_per_call(args.runs, args.steps, args.params))
        mw_results["batch_logging"] = phase(
            f"log_batch, {args.runs} runs x {args.steps} steps",
            lambda: mw_batch(args.runs, args.steps, args.params))
        mw_results["search"] = phase(
            f"search over {args.search_runs:,} runs",
            lambda: mw_search(args.search_runs, args.repeats, progress))
        mw_results["search_big"] = phase(
            f"search over {args.big_search_runs:,} runs",
            lambda: mw_search(args.big_search_runs, args.repeats, progress))

    peer: dict[str, Any] | None = None
    peer_error: str | None = None
    if not args.skip_peer:
        console.print("mlflow: running benchmarks/peers/mlflow_tracking.py in .venv-peers ...")
        peer_args = ["--runs", str(args.runs), "--steps", str(args.steps),
                     "--params", str(args.params), "--search-runs", str(args.search_runs),
                     "--repeats", str(args.repeats)]
        if args.mlflow_100k:
            peer_args += ["--big-search-runs", str(args.big_search_runs)]
        try:
            peer = run_peer("mlflow_tracking.py", peer_args, venv=args.peers_venv,
                            timeout=args.peer_timeout)
        except PeerError as exc:
            peer_error = str(exc)
            console.print(f"[bold red]mlflow peer failed:[/] {exc}")

    def p(key: str) -> dict[str, Any] | None:
        return peer.get(key) if peer else None

    report: dict[str, Any] = {
        "benchmark": "tracking",
        "per_call_logging": _throughput("per_call_logging", mw_results["per_call_logging"],
                                        p("per_call")),
        "batch_logging": _throughput("batch_logging", mw_results["batch_logging"], p("batch")),
        "search": _latency("search", mw_results["search"], p("search")),
        "search_big": _latency("search_big", mw_results["search_big"], p("search_big")),
        "date": now_iso(),
        "machine": machine_info(),
        "versions": {
            "modelworks": package_version("modelworks"),
            "mlflow": peer["versions"]["mlflow"] if peer else None,
            "sqlalchemy": package_version("sqlalchemy"),
            "sqlalchemy_peers": peer["versions"]["sqlalchemy"] if peer else None,
        },
        "config": {
            "runs": args.runs,
            "steps": args.steps,
            "params": args.params,
            "search_runs": args.search_runs,
            "big_search_runs": args.big_search_runs,
            "repeats": args.repeats,
            "search": {"filter": SEARCH_FILTER, "order_by": SEARCH_ORDER,
                       "limit": SEARCH_LIMIT},
            "backend": "SQLite file in a fresh temp dir per workload, local artifacts",
            "cwd_in_git_repo": _in_git_repo(),
            "skip_peer": args.skip_peer,
        },
    }
    if peer_error:
        report["peer_error"] = peer_error
    print_json(report)
    _summary(console, report)
    return 1 if peer_error else 0


def _headline(result: dict[str, Any]) -> str:
    if "points_per_s" in result:
        return f"{result['points_per_s']:,.0f} points/s"
    return f"median {result['median_ms']:.2f} ms (seeded in {result['seed_seconds']:.1f} s)"


def _summary(console: Console, report: dict[str, Any]) -> None:
    for name in TARGETS:
        row = report[name]
        met = {True: "[green]met[/]", False: "[red]NOT met[/]", None: "[yellow]n/a[/]"}
        console.print(f"{name:>17}: modelworks {row['modelworks']}, mlflow {row['mlflow']}, "
                      f"ratio {row['ratio']} — target {row['target']}: {met[row['met']]}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        eprint("interrupted")
        sys.exit(130)
