"""The AutoML benchmark runs end to end with a tiny budget and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "automl.py"


@pytest.mark.slow
def test_automl_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--budget", "4", "--datasets", "wine,diabetes",
         "--executor", "local", "--skip-peer"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert set(report["scores"]) == {"wine", "diabetes"}
    wine = report["scores"]["wine"]
    assert wine["metric"] == "accuracy" and 0 <= wine["modelworks"] <= 1
    assert wine["flaml"] is None and wine["difference"] is None  # --skip-peer
    assert report["scores"]["diabetes"]["metric"] == "r2"
    assert report["met"] is None and report["mean"]["flaml"] is None
    assert report["details"]["modelworks"]["wine"]["best_family"]
    assert report["config"]["budget_s"] == 4
    assert "modelworks: wine: accuracy" in proc.stderr
