"""The validation benchmark runs end to end at toy sizes and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "validation.py"


def test_validation_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "1000", "--trees", "10", "--max-depth", "4",
         "--n-bootstrap", "20", "--explain-sample", "100", "--skip-peer"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object
    row = report["validate"]
    assert isinstance(row["modelworks"], float) and row["modelworks"] > 0
    assert row["mlflow"] is None and row["ratio"] is None  # --skip-peer
    assert isinstance(row["met"], bool)
    details = row["details"]["modelworks"]
    assert details["held_out"] is True
    assert details["explanation_method"] == "shap-tree"
    assert set(details["metrics"]) >= {"accuracy", "roc_auc", "log_loss"}
    assert report["config"]["rows"] == 1000 and report["config"]["train_rows"] == 500
    assert "modelworks: validated in" in proc.stderr
