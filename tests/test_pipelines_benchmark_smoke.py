"""The pipelines benchmark runs end to end at toy sizes and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape,
that every figure is a positive number, and that the re-run was served from the cache (the
script checks each run's step statuses itself and fails otherwise).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pipelines.py"


@pytest.mark.slow
def test_pipelines_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "4", "--repeats", "2", "--frame-rows", "50",
         "--workdir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert report["benchmark"] == "pipelines"
    assert report["config"] == {"steps": 4, "repeats": 2, "frame_rows": 50}
    overhead = report["step_overhead"]
    assert overhead["target"] == 5.0 and isinstance(overhead["met"], bool)
    for case in ("int", "frame_1k"):
        row = overhead["details"][case]
        assert row["per_step"]["n"] == 2 and row["per_step"]["median_ms"] > 0
        assert row["plain_call_ms"] >= 0
    cached = report["cached_rerun"]
    assert cached["target"] == 1.0 and cached["modelworks"] > 0
    assert cached["details"]["steps"] == 10 and cached["details"]["rerun"]["n"] == 2
    assert report["machine"]["cpu_count"] >= 1 and report["versions"]["modelworks"]
    assert "fully cached re-run" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # the temporary workspaces are gone
