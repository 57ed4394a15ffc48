"""The drift benchmark runs end to end at toy sizes and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape,
that the detector flags the columns the generator shifted (as the SciPy floor does), that
the prediction log written in its storage format reads back through the log's own reader,
and that every logged row reached the detector. Each measurement runs in a fresh process
(seven of them), so it is slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "drift.py"


@pytest.mark.slow
def test_drift_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "3000", "--log-rows", "12000",
         "--log-file-rows", "5000", "--log-reference-rows", "3000", "--chunk-rows", "2000",
         "--skip-peer", "--workdir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert report["benchmark"] == "drift"
    row = report["sizes"]["3000"]
    assert row["speed"]["modelworks_score"] > 0 and row["speed"]["evidently_run"] is None
    assert row["speed"]["ratio"] is None and row["memory"]["evidently_process"] is None
    assert row["memory"]["modelworks_score_process"] > 0
    agreement = row["agreement"]
    assert agreement["modelworks_equals_expected"] and agreement["modelworks_equals_floor"]
    assert row["modelworks"]["score_chunks"]["current_rows"] == 3000
    assert row["modelworks"]["score_chunks"]["chunks"] == 2
    assert report["targets"]["speed"]["met"] is None  # no peer, no verdict

    log = report["prediction_log"]
    assert log["write"]["files"] == 3
    assert log["write"]["format_check"]["equal_to_table_from_rows"] is True
    assert log["write"]["get_prediction_check"]["inputs_keys"] == 25
    monitor = log["monitor"]
    assert monitor["rows"] == 12000 and monitor["files"] == 3
    assert set(monitor["drifted"]) == set(agreement["expected_shifted"])
    assert monitor["peak_rss_mib"] > 0
    assert "targets at 3,000 rows" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # the temp folder is gone
