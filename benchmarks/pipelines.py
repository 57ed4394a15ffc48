"""Pipelines benchmark: what a step costs on top of the function it runs, and a cached re-run.

Workloads, on a fresh SQLite workspace each (local executor, this process):

  step_overhead   a chain of N steps, each adding 1 to an int (cache=False, so every step
                  runs): the time per step minus a plain call of the same function. Each
                  step is a tracked run with lineage, its output goes through the artifact
                  store. Also with a 1,000-row DataFrame passed along (Parquet each way).
  cached_rerun    a 10-step pipeline (DataFrame steps) run once, then re-run with nothing
                  changed: every step is a cache hit; the wall time of the whole re-run.

Targets (issue 7): under 5 ms per step, under 1 s for the cached re-run. The peer is the
plain function call, measured in the same run. Progress goes to stderr, one JSON object to
stdout. Run with the main venv: `.venv/bin/python benchmarks/pipelines.py`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    eprint,
    machine_info,
    median,
    now_iso,
    package_version,
    print_json,
    summarize_ms,
    time_repeated,
)

import modelworks as mw

TARGET_STEP_MS = 5.0
TARGET_CACHED_S = 1.0


@mw.step
def add_one(x: int) -> int:
    return x + 1


@mw.step
def shift(df: Any) -> Any:
    out = df.copy()
    out["x"] = out["x"] + 1
    return out


@mw.pipeline
def int_chain(steps: int = 20) -> Any:
    value: Any = 0
    for _ in range(steps):
        value = add_one(value)
    return value


@mw.pipeline
def frame_chain(df: Any, steps: int = 20) -> Any:
    value = df
    for _ in range(steps):
        value = shift(value)
    return value


def _frame(rows: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": np.arange(rows), "y": rng.normal(size=rows),
                         "group": rng.choice(["a", "b", "c"], size=rows)})


def _plain_ms(fn: Any, arg: Any, calls: int) -> float:
    """A plain call of the step's function, per call, in milliseconds."""
    per_round = time_repeated(lambda: [fn(arg) for _ in range(calls)], repeats=5)
    return median(per_round) / calls * 1000


def step_overhead(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    frame = _frame(args.frame_rows)
    cases = {"int": (int_chain, {}, add_one.fn, 0),
             "frame_1k": (frame_chain, {"df": frame}, shift.fn, frame)}
    for name, (pipe, params, fn, arg) in cases.items():
        with mw.Workspace(root / f"overhead-{name}", user="bench") as ws:
            def once(pipe: Any = pipe, params: Any = params, ws: Any = ws) -> None:
                run = ws.run_pipeline(pipe, steps=args.steps, cache=False, **params)
                assert run.status == "FINISHED" and len(run.steps) == args.steps

            seconds = time_repeated(once, repeats=args.repeats, warmup=1)
        per_step = [s / args.steps for s in seconds]
        plain = _plain_ms(fn, arg, args.steps)
        step_ms = median(per_step) * 1000
        out[name] = {"per_step": summarize_ms(per_step), "plain_call_ms": round(plain, 4),
                     "overhead_ms": round(step_ms - plain, 3)}
        eprint(f"  {name}: {step_ms:.2f} ms per step, plain call {plain:.4f} ms")
    worst = max(v["overhead_ms"] for v in out.values())
    return {"modelworks": out["int"]["overhead_ms"], "target": TARGET_STEP_MS,
            "met": worst < TARGET_STEP_MS, "unit": "ms per step (median)",
            "details": {"steps_per_pipeline": args.steps, "frame_rows": args.frame_rows,
                        "repeats": args.repeats, **out}}


def cached_rerun(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    frame = _frame(args.frame_rows)
    with mw.Workspace(root / "cached", user="bench") as ws:
        first = ws.run_pipeline(frame_chain, df=frame, steps=10)
        assert first.cached_steps == []

        def rerun() -> None:
            run = ws.run_pipeline(frame_chain, df=frame, steps=10)
            assert run.status == "FINISHED" and len(run.cached_steps) == 10

        seconds = time_repeated(rerun, repeats=args.repeats, warmup=0)
    value = median(seconds)
    eprint(f"  cached re-run of 10 steps: {value * 1000:.1f} ms (first run "
           f"{(first.seconds or 0) * 1000:.1f} ms)")
    return {"modelworks": round(value, 4), "target": TARGET_CACHED_S,
            "met": value < TARGET_CACHED_S, "unit": "s (median)",
            "details": {"steps": 10, "first_run_s": first.seconds,
                        "rerun": summarize_ms(seconds)}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="steps per pipeline (overhead)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--frame-rows", type=int, default=1_000)
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the workspaces go (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    for name in ("steps", "repeats", "frame_rows"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mw-bench-pipelines-", dir=args.workdir))
    try:
        eprint("modelworks: step overhead (local executor)")
        overhead = step_overhead(root, args)
        eprint("modelworks: fully cached re-run")
        cached = cached_rerun(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_json({
        "benchmark": "pipelines", "date": now_iso(), "machine": machine_info(),
        "versions": {"modelworks": mw.__version__, "pandas": package_version("pandas"),
                     "pyarrow": package_version("pyarrow"),
                     "sqlalchemy": package_version("sqlalchemy")},
        "config": {"steps": args.steps, "repeats": args.repeats,
                   "frame_rows": args.frame_rows},
        "step_overhead": overhead, "cached_rerun": cached,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
