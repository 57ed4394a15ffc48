"""Shared helpers for the benchmark scripts (standard library only).

Every benchmark prints one JSON object on stdout; progress goes to stderr. A peer (MLflow,
Evidently, ...) always runs in its own process with the peers' interpreter
(`.venv-peers/bin/python`, built by `make bench-peers`) and prints its own JSON object, which
`run_peer` reads back.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "peers"
DEFAULT_PEERS_VENV = REPO_ROOT / ".venv-peers"


class PeerError(RuntimeError):
    """A peer benchmark could not be run or did not print a JSON object."""


class PeersVenvMissing(PeerError):
    """The peers' virtualenv does not exist yet."""


# --- statistics -------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p95, min and max of a list of durations in seconds, reported in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "median_ms": round(median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "n": len(ms),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 2)


# --- timing -----------------------------------------------------------------------------


class Timer:
    """`with Timer() as t: ...` then `t.seconds`; wall clock (perf_counter)."""

    def __init__(self) -> None:
        self.start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def time_repeated(fn: Any, repeats: int, warmup: int = 1) -> list[float]:
    """Call fn() `warmup` times untimed, then `repeats` times; return each call's seconds."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# --- output -----------------------------------------------------------------------------


def print_json(obj: Any, stream: Any = None) -> None:
    stream = stream or sys.stdout
    json.dump(obj, stream, indent=2, sort_keys=False, default=str)
    stream.write("\n")
    stream.flush()


def eprint(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- peers ------------------------------------------------------------------------------


def peers_python(venv: Path | str | None = None) -> Path:
    """The peers' interpreter; raises PeersVenvMissing with the fix if it is not there."""
    venv_path = Path(venv) if venv is not None else DEFAULT_PEERS_VENV
    python = venv_path / "bin" / "python"
    if not python.exists():
        raise PeersVenvMissing(
            f"the peers' virtualenv is missing ({python} not found): run `make bench-peers` "
            "first (or pass --skip-peer to measure modelworks alone)"
        )
    return python


def run_peer(
    script: str | Path,
    args: Sequence[str] = (),
    *,
    venv: Path | str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run a peer script with the peers' interpreter in its own process; return its JSON.

    The peer's stderr (its progress) goes straight to ours; its stdout must hold one JSON
    object (anything before the first '{' line, e.g. a library's chatter, is ignored).
    """
    python = peers_python(venv)
    script_path = Path(script)
    if not script_path.is_absolute():
        script_path = PEERS_DIR / script_path
    if not script_path.exists():
        raise PeerError(f"peer script not found: {script_path}")
    cmd = [str(python), str(script_path), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"peer {script_path.name} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise PeerError(f"peer {script_path.name} exited with {proc.returncode}: {' '.join(cmd)}")
    return parse_json_output(proc.stdout, script_path.name)


def parse_json_output(stdout: str, who: str = "peer") -> dict[str, Any]:
    start = stdout.find("\n{")
    text = stdout if stdout.startswith("{") else (stdout[start + 1 :] if start >= 0 else "")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        tail = stdout[-2000:]
        raise PeerError(f"{who} did not print a JSON object on stdout: {exc}\n{tail}") from exc
    if not isinstance(obj, dict):
        raise PeerError(f"{who} printed JSON that is not an object")
    return obj
