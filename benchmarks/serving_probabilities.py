"""What logging class probabilities costs a served classifier, on the real server.

The server logs class probabilities for every classifier even when the client did not ask
(`MODELWORKS_SERVE_LOG_PROBABILITIES`, on by default), so performance estimation works from
the first request. This measures that cost per model family: one workspace with a logistic
regression, a 100-tree random forest and a HistGradientBoosting classifier fitted on the
breast-cancer data shipped with scikit-learn, and the common tabular pipeline (one-hot
categories, imputed and scaled numbers, a logistic regression) fitted on the quickstart's
claims, whose preprocessing the server compiles; two `modelworks serve` processes on it (one
worker each), the setting off and on; single-row native requests over one keep-alive
connection from a separate client process (benchmarks/_http_client.py), the two servers
interleaved in `--rounds` rounds of `--requests` requests per model. Reported per model:
the median of the rounds' p50 latencies with the setting off and on, and their ratio.

No peer: the comparison is the same server with and without the probabilities. Progress
goes to stderr, one JSON object to stdout. Run with the main venv:
`.venv/bin/python benchmarks/serving_probabilities.py [--rounds 5] [--requests 400]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import eprint, machine_info, median, now_iso, package_version, print_json, ratio

from serving import (
    Server,
    _clean_env,
    free_port,
    modelworks_cli,
    payloads,
    sequential,
    training_data,
)


def models() -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    return {"logistic": LogisticRegression(max_iter=5000),
            "forest": RandomForestClassifier(n_estimators=100, random_state=0),
            "hgb": HistGradientBoostingClassifier(random_state=0)}


def claims_pipeline() -> tuple[Any, Any, Any]:
    """The common tabular model on the quickstart's claims: one-hot categories, imputed and
    scaled numbers, a logistic regression (its preprocessing is compiled when served)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from modelworks.quickstart.claims_data import LABEL_COLUMN, generate_claims

    df = generate_claims(3_000, seed=1)
    X = df.drop(columns=[LABEL_COLUMN, "claim_id"])
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    nums = [c for c in X.columns if c not in cats]
    model = make_pipeline(ColumnTransformer([
        ("cats", OneHotEncoder(handle_unknown="ignore"), cats),
        ("nums", make_pipeline(SimpleImputer(), StandardScaler()), nums)]),
        LogisticRegression(max_iter=2000))
    return model.fit(X, df[LABEL_COLUMN]), X, df[LABEL_COLUMN]


def _row_body(X: Any) -> bytes:
    row = {k: (None if isinstance(v, float) and v != v else v)
           for k, v in X.iloc[0].to_dict().items()}
    return json.dumps({"instances": [row]}, default=str).encode()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per server")
    ap.add_argument("--requests", type=int, default=400, help="timed requests per round")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    return ap.parse_args(argv)


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import modelworks as mw

    X, y = training_data()
    folder = tmp / "workspace"
    ws = mw.Workspace(str(folder))
    bodies: dict[str, Path] = {}
    for name, model in models().items():
        ws.register_model(name, model=model.fit(X, y), input_example=X.head(5))
        bodies[name] = tmp / "body.json"
    bodies["pipeline"] = tmp / "claims-body.json"
    pipeline, claims, _ = claims_pipeline()
    ws.register_model("pipeline", model=pipeline, input_example=claims.head(5))
    ws.close()
    bodies["logistic"].write_bytes(payloads(X)["instances"])
    bodies["pipeline"].write_bytes(_row_body(claims))

    servers: dict[str, Server] = {}
    try:
        for arm, flag in (("off", "false"), ("on", "true")):
            port = free_port()
            servers[arm] = Server(
                f"serve ({arm})", [*modelworks_cli(), "-w", str(folder), "serve", "--port",
                                   str(port), "--models", "logistic/1,forest/1,hgb/1,pipeline/1",
                                   "--workers", "1"],
                port=port, ready_path="/v1/health/ready", cwd=tmp,
                log_path=tmp / f"serve-{arm}.log",
                env=_clean_env({"MODELWORKS_SERVE_LOG_PROBABILITIES": flag}))
        for server in servers.values():
            server.wait_ready(args.startup_timeout)
        p50: dict[str, dict[str, list[float]]] = {n: {"off": [], "on": []} for n in bodies}
        for round_ in range(args.rounds):
            for name in p50:
                for arm, server in servers.items():
                    got = sequential(server.port, f"/v1/models/{name}/predict", bodies[name],
                                     args.requests, args.warmup)
                    p50[name][arm].append(got["p50_ms"])
            eprint(f"round {round_ + 1}/{args.rounds}: " + ", ".join(
                f"{n} {v['off'][-1]:.3f}/{v['on'][-1]:.3f} ms" for n, v in p50.items()))
    finally:
        for server in servers.values():
            server.stop()
    out: dict[str, Any] = {}
    for name, arms in p50.items():
        off, on = median(arms["off"]), median(arms["on"])
        out[name] = {"off_p50_ms": round(off, 3), "on_p50_ms": round(on, 3),
                     "ratio": ratio(on, off), "rounds": arms}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-mw-proba-") as tmp:
        results = measure(args, Path(tmp))
    print_json({
        "benchmark": "serving_probabilities", "date": now_iso(), "machine": machine_info(),
        "versions": {n: package_version(n) for n in ("modelworks", "scikit-learn", "uvicorn")},
        "config": {"rounds": args.rounds, "requests_per_round": args.requests,
                   "warmup": args.warmup, "data": "breast cancer (569 x 30)",
                   "request": "one row, native /v1/models/NAME/predict, keep-alive"},
        "models": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
