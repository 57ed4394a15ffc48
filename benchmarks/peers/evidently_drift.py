"""Evidently side of the drift benchmark (run with `.venv-peers/bin/python`).

Reads the reference and current frames from the Parquet files `benchmarks/drift.py` wrote
(the same files the modelworks side reads), declares the column types (numeric and
categorical, as modelworks infers them) and runs Evidently 0.7's data drift preset:

    Report([DataDriftPreset()]).run(current, reference)

timed around `run` alone (reading the files is timed apart). Peak memory is the process's
peak RSS (`VmHWM`, also `ru_maxrss`); the RSS after loading the frames is reported too, and
the peak while running (the high-water mark reset through /proc/self/clear_refs after the
frames are loaded, where the kernel allows it).

Prints one JSON object on stdout (per-column drift values and verdicts included); progress
goes to stderr. Self-contained on purpose: the peers' virtualenv does not have modelworks.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from importlib.metadata import version

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

MiB = 1024 * 1024


def log(msg: str) -> None:
    print(f"[evidently] {msg}", file=sys.stderr, flush=True)


def status_mib() -> dict[str, float]:
    """VmRSS and VmHWM of this process in MiB (Linux)."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = round(int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--current", required=True)
    ap.add_argument("--numeric", required=True, help="comma-separated numeric columns")
    ap.add_argument("--categorical", required=True, help="comma-separated categorical columns")
    args = ap.parse_args()
    numeric = [c for c in args.numeric.split(",") if c]
    categorical = [c for c in args.categorical.split(",") if c]
    baseline = status_mib()

    t0 = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    load_seconds = time.perf_counter() - t0
    loaded = status_mib()
    log(f"read {len(reference):,} + {len(current):,} rows in {load_seconds:.2f} s "
        f"(RSS {loaded.get('VmRSS')} MiB)")
    peak_before_run = loaded.get("VmHWM")
    peak_reset = reset_peak()

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    t1 = time.perf_counter()
    cur_ds = Dataset.from_pandas(current, data_definition=definition)
    ref_ds = Dataset.from_pandas(reference, data_definition=definition)
    wrap_seconds = time.perf_counter() - t1
    t2 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(cur_ds, ref_ds)
    run_seconds = time.perf_counter() - t2
    after = status_mib()
    ru_maxrss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    log(f"Report([DataDriftPreset()]).run: {run_seconds:.2f} s "
        f"(+ {wrap_seconds:.2f} s Dataset.from_pandas), peak RSS {after.get('VmHWM')} MiB")

    columns: dict[str, dict] = {}
    summary: dict = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        kind = config.get("type", "")
        if kind.endswith("ValueDrift"):
            value = float(metric["value"])
            threshold = float(config["threshold"])
            columns[config["column"]] = {
                "method": config.get("method"), "value": value, "threshold": threshold,
                # distances (the defaults at these sizes) drift at or above the threshold
                "drifted": value >= threshold,
            }
        elif kind.endswith("DriftedColumnsCount"):
            summary = {"count": metric["value"]["count"], "share": metric["value"]["share"],
                       "drift_share": config.get("drift_share")}

    peak_candidates = [v for v in (peak_before_run, after.get("VmHWM")) if v is not None]
    out = {
        "rows": {"reference": len(reference), "current": len(current)},
        "load_seconds": round(load_seconds, 3),
        "dataset_wrap_seconds": round(wrap_seconds, 3),
        "run_seconds": round(run_seconds, 3),
        "rss_mib": {
            "baseline": baseline.get("VmRSS"),
            "after_load": loaded.get("VmRSS"),
            "peak_before_run": peak_before_run,
            "peak_during_run": after.get("VmHWM") if peak_reset else None,
            "peak": max(peak_candidates) if peak_candidates else ru_maxrss_mib,
            "ru_maxrss": ru_maxrss_mib,
            "after_run": after.get("VmRSS"),
        },
        "peak_reset": peak_reset,
        "columns": columns,
        "drifted_columns": summary,
        "versions": {"evidently": version("evidently"), "pandas": version("pandas"),
                     "numpy": version("numpy"), "scipy": version("scipy"),
                     "pyarrow": version("pyarrow")},
        "python": sys.version.split()[0],
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
