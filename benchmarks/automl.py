"""AutoML benchmark: modelworks' `ws.automl` against FLAML, same data, same budget, same run.

Data sets: scikit-learn's breast cancer (binary), wine and digits (multi-class) and diabetes
(regression), and statsmodels' `fair` (binary: affairs > 0; exported by the peer script,
since statsmodels lives in the peers' venv). Each is split once, 75/25, stratified for
classification, with `--seed`; both tools get the same training rows and are scored on the
same held-out 25%: ROC AUC for binary, accuracy for multi-class, R² for regression.

  modelworks  ws.automl(train, label=..., metric=..., time_budget_s=60,
              executor="processes", workers=2) in a fresh SQLite workspace; the registered
              model is loaded back from the registry and scored.
  flaml       flaml.AutoML().fit(X, y, task=..., metric=..., time_budget=60, n_jobs=2)
              with its defaults otherwise (benchmarks/peers/flaml_automl.py, `.venv-peers`).

Same CPU for both: two cores — two single-threaded search workers for modelworks, two
threads for FLAML's one-at-a-time trials. The budget is wall time for the whole call in
both tools (search, refit and, for modelworks, registration).

Target (issue 7): mean held-out score at least FLAML's, no data set more than 0.01 behind.
Progress goes to stderr, one JSON object to stdout. Run with the main venv:
`.venv/bin/python benchmarks/automl.py` (`--budget 5 --datasets wine` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    DEFAULT_PEERS_VENV,
    PeerError,
    eprint,
    machine_info,
    now_iso,
    package_version,
    peers_python,
    print_json,
    run_peer,
)

DATASETS = {  # name: (task, metric, label)
    "breast_cancer": ("classification", "roc_auc", "target"),
    "wine": ("classification", "accuracy", "target"),
    "digits": ("classification", "accuracy", "target"),
    "diabetes": ("regression", "r2", "target"),
    "fair": ("classification", "roc_auc", "affair"),
}
MAX_BEHIND = 0.01


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per data set and tool")
    ap.add_argument("--datasets", default=",".join(DATASETS),
                    help=f"comma-separated subset of {', '.join(DATASETS)}")
    ap.add_argument("--executor", default="processes", choices=["local", "processes", "ray"])
    ap.add_argument("--workers", type=int, default=2, help="search workers (modelworks)")
    ap.add_argument("--n-jobs", type=int, default=2, help="threads (FLAML)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-peer", action="store_true", help="measure modelworks alone")
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_PEERS_VENV)
    args = ap.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown or not args.datasets:
        ap.error(f"unknown data sets {unknown}; choose from {', '.join(DATASETS)}")
    return args


def load(name: str, tmp: Path, peers_venv: Path, skip_peer: bool) -> Any:
    """The data set as one frame with its label column."""
    import pandas as pd
    from sklearn import datasets

    if name != "fair":
        loader = getattr(datasets, f"load_{name}")
        x, y = loader(return_X_y=True, as_frame=True)
        return x.assign(target=y)
    try:
        import statsmodels.api as sm  # the main venv may have it too
    except ImportError:
        if skip_peer:
            peers_python(peers_venv)  # the fix, when the venv is missing
        path = tmp / "fair.parquet"
        run_peer("flaml_automl.py", ["--export-fair", str(path)], venv=peers_venv)
        return pd.read_parquet(path)
    data = sm.datasets.fair.load_pandas().data
    data["affair"] = (data.pop("affairs") > 0).astype("int64")
    return data


def split(frame: Any, task: str, label: str, seed: int) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    stratify = frame[label] if task == "classification" else None
    train, test = train_test_split(frame, test_size=0.25, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def score(metric: str, y: Any, model: Any, x: Any) -> float:
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if metric == "roc_auc":
        classes = list(model.model.classes_)
        return float(roc_auc_score(y == classes[1], model.predict_proba(x)[:, 1]))
    if metric == "accuracy":
        return float(accuracy_score(y, model.predict(x)))
    return float(r2_score(y, model.predict(x)))


def run_ours(spec: dict[str, Any], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import pandas as pd

    import modelworks as mw

    train, test = pd.read_parquet(spec["train"]), pd.read_parquet(spec["test"])
    label = spec["label"]
    eprint(f"modelworks: {spec['name']}: searching for {args.budget:g} s "
           f"({args.executor}, {args.workers} workers) ...")
    with mw.Workspace(tmp / f"ws-{spec['name']}", user="bench") as ws:
        t0 = time.perf_counter()
        res = ws.automl(train, label=label, task=spec["task"], metric=spec["metric"],
                        time_budget_s=args.budget, executor=args.executor,
                        workers=args.workers, seed=args.seed, register_as=spec["name"])
        seconds = time.perf_counter() - t0
        assert res.model_version is not None
        loaded = ws.load_model(res.model_version.uri)
        held_out = score(spec["metric"], test[label], loaded, test.drop(columns=[label]))
    eprint(f"modelworks: {spec['name']}: {spec['metric']} {held_out:.4f} in {seconds:.1f} s "
           f"({res.best_family}; {res.counts})")
    return {"score": round(held_out, 6), "seconds": round(seconds, 2),
            "best_family": res.best_family, "best_params": res.best_params,
            "selection": res.selection,
            "cv_score": round(res.best_score, 6), "trials": res.counts}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.skip_peer:
        try:
            peers_python(args.peers_venv)
        except PeerError as exc:
            eprint(f"error: {exc}")
            return 2
    peer: dict[str, Any] | None = None
    peer_error: str | None = None
    ours: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mw-automl-") as name:
        tmp = Path(name)
        specs = []
        for ds in args.datasets:
            task, metric, label = DATASETS[ds]
            train, test = split(load(ds, tmp, args.peers_venv, args.skip_peer), task, label,
                                args.seed)
            paths = {part: tmp / f"{ds}-{part}.parquet" for part in ("train", "test")}
            train.to_parquet(paths["train"], index=False)
            test.to_parquet(paths["test"], index=False)
            specs.append({"name": ds, "task": task, "metric": metric, "label": label,
                          "rows_train": len(train), "rows_test": len(test),
                          "train": str(paths["train"]), "test": str(paths["test"])})
        (tmp / "datasets.json").write_text(json.dumps(specs))
        for spec in specs:
            ours[spec["name"]] = run_ours(spec, args, tmp)
        if not args.skip_peer:
            eprint("flaml: running benchmarks/peers/flaml_automl.py in .venv-peers ...")
            try:
                peer = run_peer("flaml_automl.py", [
                    "--datasets", str(tmp / "datasets.json"), "--budget", str(args.budget),
                    "--n-jobs", str(args.n_jobs), "--seed", str(args.seed)],
                    venv=args.peers_venv)
            except PeerError as exc:
                peer_error = str(exc)
                eprint(f"flaml peer failed: {exc}")
    theirs = peer["results"] if peer else {}
    rows = {}
    for spec in specs:
        ds = spec["name"]
        mine = ours[ds]["score"]
        other = theirs.get(ds, {}).get("score")
        rows[ds] = {"metric": spec["metric"], "rows_train": spec["rows_train"],
                    "rows_test": spec["rows_test"], "modelworks": mine, "flaml": other,
                    "difference": None if other is None else round(mine - other, 4)}
    mean_ours = statistics.fmean(r["modelworks"] for r in rows.values())
    flaml_scores = [r["flaml"] for r in rows.values() if r["flaml"] is not None]
    mean_flaml = statistics.fmean(flaml_scores) if len(flaml_scores) == len(rows) else None
    met = None if mean_flaml is None else bool(
        mean_ours >= mean_flaml and all(r["difference"] >= -MAX_BEHIND for r in rows.values()))
    report: dict[str, Any] = {
        "benchmark": "automl",
        "scores": rows,
        "mean": {"modelworks": round(mean_ours, 4),
                 "flaml": None if mean_flaml is None else round(mean_flaml, 4)},
        "target": f"mean >= FLAML's, no data set more than {MAX_BEHIND} behind",
        "met": met,
        "details": {"modelworks": ours, "flaml": theirs},
        "date": now_iso(),
        "machine": machine_info(),
        "versions": {
            "modelworks": package_version("modelworks"), "optuna": package_version("optuna"),
            "scikit-learn": package_version("scikit-learn"),
            "lightgbm": package_version("lightgbm"), "xgboost": package_version("xgboost-cpu"),
            "flaml": peer["versions"]["flaml"] if peer else None,
        },
        "config": {"budget_s": args.budget, "seed": args.seed, "test_size": 0.25,
                   "executor": args.executor, "workers": args.workers,
                   "flaml_n_jobs": args.n_jobs, "skip_peer": args.skip_peer,
                   "backend": "SQLite file in a fresh temp dir, local artifacts"},
    }
    if peer_error:
        report["peer_error"] = peer_error
    print_json(report)
    eprint("\n".join(
        f"{ds:>14}  {r['metric']:>8}  modelworks {r['modelworks']:.4f}  flaml "
        f"{'-' if r['flaml'] is None else format(r['flaml'], '.4f')}"
        for ds, r in rows.items()))
    eprint(f"{'mean':>14}  {'':>8}  modelworks {mean_ours:.4f}  flaml "
           f"{'-' if mean_flaml is None else format(mean_flaml, '.4f')}  target met: {met}")
    return 1 if peer_error else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        eprint("interrupted")
        sys.exit(130)
