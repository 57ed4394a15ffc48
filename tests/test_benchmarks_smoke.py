"""The tracking benchmark runs end to end at toy sizes and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape,
that every modelworks figure is a positive number, and the clear error without .venv-peers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tracking.py"
WORKLOADS = ("per_call_logging", "batch_logging", "search", "search_big")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )


def test_tracking_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    proc = _run(["--runs", "3", "--steps", "5", "--search-runs", "50",
                 "--big-search-runs", "200", "--repeats", "2", "--skip-peer"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object

    for key in (*WORKLOADS, "date", "machine", "versions", "config"):
        assert key in report, key
    for name in WORKLOADS:
        row = report[name]
        assert set(row) >= {"modelworks", "mlflow", "ratio", "target", "met"}, name
        assert isinstance(row["modelworks"], float) and row["modelworks"] > 0, (name, row)
        assert row["mlflow"] is None and row["ratio"] is None  # --skip-peer
    assert isinstance(report["search_big"]["met"], bool)  # judged without the peer
    assert report["per_call_logging"]["details"]["modelworks"]["points"] == 15
    assert report["search"]["details"]["modelworks"]["rows_returned"] > 0  # checked in-script
    assert report["search_big"]["details"]["modelworks"]["runs"] == 200
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["python"]
    assert report["versions"]["modelworks"]
    assert report["versions"]["sqlalchemy"]
    # Progress went to stderr, so nothing else shares stdout with the JSON.
    assert "modelworks: per-call logging" in proc.stderr


def test_missing_peers_venv_names_the_fix(tmp_path: Path) -> None:
    proc = _run(["--peers-venv", str(tmp_path / "no-venv"), "--runs", "1"], tmp_path)
    assert proc.returncode == 2
    assert "make bench-peers" in proc.stderr
    assert proc.stdout == ""
