"""Validation benchmark: modelworks' validation report against MLflow's `evaluate`, same run.

A RandomForestClassifier(n_estimators=200, max_depth=12, random_state=0, n_jobs=-1) is
trained on 50,000 rows and validated on a 100,000-row hold-out set drawn from the same
generator (seeded). Ten features: nine floats and an integer `segment` (0-2), which is also
the sensitive feature for the fairness section.

  modelworks  ws.validate(...) with the defaults: 200 vectorised bootstrap resamples for
              every metric's interval, fairness across `segment`, SHAP on a 1,000-row
              sample, the comparison/held-out checks (the training data is logged, so its
              50,000 rows are loaded and hashed), the HTML page with its plots, and the
              records (row, audit event, lineage) — timed end to end, registration untimed.
  mlflow      mlflow.models.evaluate(model_uri, data, targets="label",
              model_type="classifier") with its default evaluator, on the same pickled
              model and the same hold-out Parquet file (benchmarks/peers/mlflow_evaluate.py,
              run with `.venv-peers`); logging the model is untimed.

Target (issue 4): modelworks under 60 s on this machine. Progress goes to stderr, one JSON
object to stdout. Run with the main venv: `.venv/bin/python benchmarks/validation.py`
(`--rows 5000` for a quick run: training rows = rows / 2).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
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
)

TARGET_SECONDS = 60.0
N_FEATURES = 9


def make_data(rows: int, seed: int) -> Any:
    """Features x0..x8 (float), segment (int 0-2) and a noisy non-linear binary label."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES))
    segment = rng.integers(0, 3, size=rows)
    logit = (x[:, 0] + 0.8 * x[:, 1] * x[:, 2] - 0.6 * x[:, 3] ** 2 + 0.3 * segment
             + rng.normal(scale=0.8, size=rows))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(N_FEATURES)])
    frame["segment"] = segment.astype("int64")
    frame["label"] = (logit > 0).astype("int64")
    return frame


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="hold-out rows")
    ap.add_argument("--train-rows", type=int, default=None,
                    help="training rows (default: 50,000, or rows / 2 when --rows is smaller)")
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--max-depth", type=int, default=12)
    ap.add_argument("--n-bootstrap", type=int, default=200)
    ap.add_argument("--explain-sample", type=int, default=1000)
    ap.add_argument("--skip-peer", action="store_true", help="measure modelworks alone")
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_PEERS_VENV)
    ap.add_argument("--peer-timeout", type=float, default=None)
    args = ap.parse_args(argv)
    if args.rows < 100:
        ap.error("--rows must be at least 100")
    if args.train_rows is None:
        args.train_rows = 50_000 if args.rows >= 100_000 else max(args.rows // 2, 100)
    return args


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier

    import modelworks as mw

    train = make_data(args.train_rows, seed=1)
    holdout = make_data(args.rows, seed=2)
    features = [c for c in train.columns if c != "label"]
    eprint(f"modelworks: training the forest on {len(train):,} rows ...")
    with Timer() as fit:
        model = RandomForestClassifier(n_estimators=args.trees, max_depth=args.max_depth,
                                       random_state=0, n_jobs=-1)
        model.fit(train[features], train["label"])
    eprint(f"modelworks: trained in {fit.seconds:.1f} s")
    (tmp / "model.pkl").write_bytes(pickle.dumps(model))
    holdout.to_parquet(tmp / "holdout.parquet", index=False)

    ws = mw.Workspace(tmp / "ws", user="bench")
    with ws.start_run("validation-bench") as run:
        run.use_dataset(ws.log_dataset(train, name="bench-train"), role="train")
        ws.register_model("bench-rf", model=model, run=run,
                          input_example=train[features].head())
    eprint(f"modelworks: validating on {len(holdout):,} rows ...")
    with Timer() as t:
        report = ws.validate("models:/bench-rf/1", data=holdout, label="label",
                             sensitive_features=["segment"], n_bootstrap=args.n_bootstrap,
                             explain_sample=args.explain_sample, seed=0)
    ws.close()
    if not report.held_out or report.rows != len(holdout):
        raise SystemExit(f"modelworks: unexpected report (held_out={report.held_out})")
    eprint(f"modelworks: validated in {t.seconds:.1f} s "
           f"(explanations: {report.explanations.method if report.explanations else None})")
    return {
        "seconds": round(t.seconds, 2),
        "fit_seconds": round(fit.seconds, 2),
        "metrics": {k: round(v.value, 4) for k, v in report.metrics.items()
                    if v.value is not None},
        "explanation_method": report.explanations.method if report.explanations else None,
        "explanation_reason": report.explanations.reason if report.explanations else None,
        "held_out": report.held_out,
    }


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
    with tempfile.TemporaryDirectory(prefix="bench-mw-validation-") as name:
        tmp = Path(name)
        ours = measure(args, tmp)
        if not args.skip_peer:
            eprint("mlflow: running benchmarks/peers/mlflow_evaluate.py in .venv-peers ...")
            try:
                peer = run_peer("mlflow_evaluate.py", [
                    "--model", str(tmp / "model.pkl"), "--data", str(tmp / "holdout.parquet"),
                    "--workdir", str(tmp / "mlflow")],
                    venv=args.peers_venv, timeout=args.peer_timeout)
            except PeerError as exc:
                peer_error = str(exc)
                eprint(f"mlflow peer failed: {exc}")
    theirs = peer["seconds"] if peer else None
    report: dict[str, Any] = {
        "benchmark": "validation",
        "validate": {
            "unit": "seconds (lower is better); ratio = mlflow / modelworks",
            "modelworks": ours["seconds"],
            "mlflow": theirs,
            "ratio": ratio(theirs, ours["seconds"]),
            "target": f"< {TARGET_SECONDS:g} s",
            "met": ours["seconds"] < TARGET_SECONDS,
            "details": {"modelworks": ours, "mlflow": peer},
        },
        "date": now_iso(),
        "machine": machine_info(),
        "versions": {
            "modelworks": package_version("modelworks"),
            "mlflow": peer["versions"]["mlflow"] if peer else None,
            "scikit-learn": package_version("scikit-learn"),
            "shap": package_version("shap"),
            "fairlearn": package_version("fairlearn"),
        },
        "config": {
            "rows": args.rows, "train_rows": args.train_rows, "trees": args.trees,
            "max_depth": args.max_depth, "n_bootstrap": args.n_bootstrap,
            "explain_sample": args.explain_sample, "skip_peer": args.skip_peer,
            "backend": "SQLite file in a fresh temp dir, local artifacts",
        },
    }
    if peer_error:
        report["peer_error"] = peer_error
    print_json(report)
    return 1 if peer_error else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        eprint("interrupted")
        sys.exit(130)
