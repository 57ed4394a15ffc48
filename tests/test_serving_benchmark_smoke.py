"""The serving benchmark runs end to end at toy sizes and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape,
that the servers answered, that every prediction was logged, and that nothing was left
running or written to the working directory. It starts three real servers, so it is slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serving.py"


def _our_servers(markers: tuple[str, ...] = ("bench-mw-serving-", "bare_asgi:app")
                 ) -> list[str]:
    """Command lines of live processes started from the benchmark's temp dirs."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(marker in cmd for marker in markers):
                found.append(cmd.replace("\0", " "))
    return found


@pytest.mark.slow
def test_serving_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    before = _our_servers()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--requests", "40", "--warmup", "5", "--duration", "1",
         "--many-models", "3", "--floor-repeats", "50", "--skip-peer"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object

    for key in ("throughput", "latency_p50", "latency_p99", "transport", "sequential", "floor",
                "many_models", "prediction_log", "servers", "date", "machine", "versions",
                "config"):
        assert key in report, key
    tp = report["throughput"]
    assert set(tp) >= {"modelworks", "modelworks_invocations", "mlflow", "ratio", "target",
                       "met", "generator", "details"}
    assert tp["modelworks"] > 0 and tp["modelworks_invocations"] > 0
    assert tp["mlflow"] is None and tp["ratio"] is None and tp["met"] is None  # --skip-peer
    load = tp["details"]["modelworks"]
    assert load["generator_cpu_percent_of_one_core"] >= 0
    assert load["server_cpu_percent_of_one_core"] > 0
    p50 = report["latency_p50"]
    assert p50["modelworks"] > 0 and p50["floor_ms"] > 0 and isinstance(p50["met"], bool)
    seq = report["sequential"]["modelworks"]
    assert seq["n"] == 40 and seq["p99_ms"] >= seq["p50_ms"] > 0
    assert seq["sample_answer"]["model"] == "bc" and seq["sample_answer"]["version"] == 1
    assert report["sequential"]["modelworks_invocations"]["sample_answer"] == {
        "predictions": seq["sample_answer"]["predictions"]}
    assert report["transport"]["bare_uvicorn_asgi"] > 0
    assert report["floor"]["predict_numpy_one_row_us"] > 0
    assert report["floor"]["served_predict_path_us"] > 0

    log = report["prediction_log"]
    assert log["on"] is True and log["complete"] is True and log["logged"] >= 80

    many = report["many_models"]
    assert many["models"] == 3 and many["cold_first_request"]["n"] == 2
    assert many["cold_first_request"]["median_ms"] > 0
    assert many["warm_request"]["n"] == 3
    assert many["server_cache"]["model_cache_models"] == 3
    assert many["server_cache"]["model_evictions_total"] == 0
    assert many["memory_per_loaded_model_kib"] is not None

    assert report["config"]["skip_peer"] is True and report["config"]["workers"] == 1
    assert report["versions"]["modelworks"] and report["versions"]["scikit-learn"]
    assert "modelworks native: 40 sequential requests" in proc.stderr  # progress on stderr
    assert list(tmp_path.iterdir()) == []  # nothing written to the working directory
    assert _our_servers() == before  # every server was stopped


def test_missing_peers_venv_names_the_fix(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--peers-venv", str(tmp_path / "no-venv"),
         "--skip-many"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "make bench-peers" in proc.stderr
    assert proc.stdout == ""


def test_probabilities_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    script = SCRIPT.parent / "serving_probabilities.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--rounds", "1", "--requests", "5", "--warmup", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["benchmark"] == "serving_probabilities"
    assert set(report["models"]) == {"logistic", "forest", "hgb", "pipeline"}
    for row in report["models"].values():
        assert row["off_p50_ms"] > 0 and row["on_p50_ms"] > 0 and row["ratio"] > 0
        assert len(row["rounds"]["off"]) == len(row["rounds"]["on"]) == 1
    assert list(tmp_path.iterdir()) == []  # everything went to its temporary folder
    assert _our_servers(("bench-mw-proba-",)) == []  # both servers were stopped
