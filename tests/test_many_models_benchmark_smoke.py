"""The many-models benchmark runs end to end at a toy size and prints the JSON it promises.

Figures are not asserted (benchmarks are scripts, not timed tests): only the report's shape,
that every timing is a positive number, and that the speed-ups are computed from them. It
starts its own local Ray instance in a fresh process, so it is slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "many_models.py"


@pytest.mark.slow
def test_many_models_benchmark_prints_a_complete_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--groups", "12", "--rows", "40", "--repeats", "1",
         "--workdir", str(tmp_path / "work")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object

    assert report["benchmark"] == "many_models"
    assert report["config"]["groups"] == 12 and report["config"]["workers"] == [1, 2]
    assert len(report["machine"]["load_average_before"]) == 3
    for workers in ("1", "2"):
        row = report["workers"][workers]
        assert row["train_only_s"] > 0 and row["end_to_end_s"] > 0, row
        assert row["ms_per_model_end_to_end"] > 0
    for key in ("plain_loop_s", "registration_only_s", "ray_start_s"):
        assert report[key] > 0, key
    one, two = report["workers"]["1"], report["workers"]["2"]
    assert report["speedup"]["end_to_end"] == round(one["end_to_end_s"] / two["end_to_end_s"], 2)
    assert isinstance(report["target"]["met_train_only"], bool)
    # the benchmark's own workspaces hold every model it registered
    assert (tmp_path / "work" / "w2-r0").is_dir()
