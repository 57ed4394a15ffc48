"""The drift benchmark runs end to end at toy sizes and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape,
that the detector flags the columns the generator shifted (as the SciPy floor does), that
the prediction log written in its storage format reads back through the log's own reader,
and that ``Monitor.run`` over that log -- the product path, against a registered version's
stored reference -- saw every logged row, flagged the shifted inputs and stored its run.
Each measurement runs in a fresh process (eight of them), so it is slow.
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
         "--monitor-chunk-rows", "2000",
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
    write = log["write"]
    assert write["files"] == 3
    assert write["format_check"]["equal_to_table_from_rows"] is True
    assert write["get_prediction_check"]["inputs_keys"] == 25
    assert write["get_prediction_check"]["version"] == 1
    assert write["get_prediction_check"]["output"] in (0, 1)  # the model's own classes
    assert write["model"]["uri"] == "models:/drift-bench/1"
    assert write["model"]["signature_inputs"] == 25
    assert write["reference_profile"]["source"] == "training"
    assert write["reference_profile"]["rows"] == 3000
    assert write["feedback_labels"] > 0

    monitor = log["monitor"]  # Monitor.run over the whole log
    assert monitor["source"] == "prediction-log" and monitor["reference"] == "training"
    assert monitor["rows"] == 12000 and monitor["files"] == 3 and monitor["chunk_rows"] == 2000
    assert set(monitor["drifted"]) == set(agreement["expected_shifted"])
    assert monitor["prediction_drift"]["status"] == "scored"
    stored = monitor["stored_run"]
    assert stored["found"] and stored["rows"] == 12000 and len(stored["result_sha256"]) == 64
    assert set(agreement["expected_shifted"]) <= set(stored["drifted_columns"])
    assert stored["listed_same_drifted_columns"]
    performance = monitor["performance"]
    assert performance["estimated_rows"] == 12000  # CBPE from the logged probabilities
    assert performance["labelled_rows"] == write["feedback_labels"]
    assert 0.0 <= performance["metrics"]["accuracy"] <= 1.0
    assert "c2:unseen_category" in monitor["quality"]["flagged"]  # region-new
    assert monitor["peak_rss_mib"] > 0

    stream = log["stream"]  # the hand-written score_chunks loop over the same files
    assert stream["rows"] == 12000 and stream["files"] == 3
    checks = log["agreement"]
    assert checks["monitor_equals_expected"] and checks["monitor_run_stored"]
    assert checks["stream_equals_monitor"] and checks["same_rows"]
    assert checks["max_abs_value_diff_monitor_vs_stream"] < 1e-9
    assert "targets at 3,000 rows" in proc.stderr
    assert "Monitor.run over 12,000 rows" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # the temp folder is gone
