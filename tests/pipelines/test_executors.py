"""One contract over every executor: local, a spawned process pool, and a real local Ray.

Ray starts once for the test process (`ray_instance` in conftest.py: Ray allows one
connection per process); the pool is started once per module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelworks.config import Settings
from modelworks.errors import InvalidInput
from modelworks.pipelines.executors import EXECUTORS, Executor, get_executor

NAMES = ["local", "processes", "ray"]


class StepFailed(Exception):
    """A user's own exception type: it must come back as itself."""


# -- functions the executors run (top level, so every backend can import them) ----------


def summarise(seed: int, *, rows: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"g": rng.integers(0, 3, rows), "x": rng.normal(size=rows)})
    return frame.groupby("g", as_index=False)["x"].agg(["mean", "count"])


def fail(message: str) -> None:
    raise StepFailed(message)


def fail_builtin(key: str) -> None:
    raise KeyError(key)


def _mark(folder: str, sign: bytes) -> None:
    fd = os.open(os.path.join(folder, "log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, sign)
    finally:
        os.close(fd)


def _log(folder: str) -> bytes:
    with open(os.path.join(folder, "log"), "rb") as fh:
        return fh.read()


def barrier(folder: str, parties: int, timeout: float) -> bool:
    """Arrive, then wait for ``parties`` arrivals: True only if they all ran together."""
    _mark(folder, b"+")
    deadline = time.monotonic() + timeout
    while _log(folder).count(b"+") < parties:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def peak(folder: str, hold: float) -> int:
    """Stay ``hold`` seconds; the most calls seen running meanwhile (this one included)."""
    _mark(folder, b"+")
    deadline, seen = time.monotonic() + hold, 0
    while time.monotonic() < deadline:
        log = _log(folder)
        seen = max(seen, log.count(b"+") - log.count(b"-"))
        time.sleep(0.01)
    _mark(folder, b"-")
    return seen


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=NAMES)
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    if request.param == "ray":
        request.getfixturevalue("ray_instance")
    with get_executor(request.param, workers=2) as ex:
        yield ex


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the contract -----------------------------------------------------------------------


def test_registry_names_every_backend() -> None:
    assert sorted(EXECUTORS) == sorted(NAMES)


def test_same_function_same_results_everywhere(executor: Executor) -> None:
    futures = [executor.submit(summarise, seed, rows=50 + seed) for seed in range(5)]
    for seed, future in enumerate(futures):
        pd.testing.assert_frame_equal(future.result(timeout=120), summarise(seed, rows=50 + seed))
    assert [f.result() for f in executor.map(pow, [2, 3], [10, 2])] == [1024, 9]


def test_exceptions_come_back_with_their_type_and_message(executor: Executor) -> None:
    with pytest.raises(StepFailed) as info:
        executor.submit(fail, "step 3 broke").result(timeout=120)
    assert type(info.value) is StepFailed
    assert str(info.value) == "step 3 broke"

    error = executor.submit(fail_builtin, "col").exception(timeout=120)
    assert type(error) is KeyError and error.args == ("col",)


def test_two_workers_run_two_calls_at_once(executor: Executor, tmp_path: Path) -> None:
    if executor.name == "local":
        pytest.skip("the local executor runs one call at a time by design")
    assert executor.workers == 2
    # Each call waits until both have arrived: true only if both ran together.
    met = [f.result(timeout=120) for f in
           [executor.submit(barrier, str(tmp_path), 2, 60.0) for _ in range(2)]]
    assert met == [True, True]


@pytest.mark.parametrize("name", NAMES)
def test_one_worker_never_runs_two_calls_at_once(name: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    if name == "ray":
        request.getfixturevalue("ray_instance")  # two CPUs: the cap is the executor's
    with get_executor(name, workers=1) as ex:
        assert ex.workers == 1
        # Each call stays a moment, watching for another one; one worker: none comes.
        seen = [f.result(timeout=120) for f in
                [ex.submit(peak, str(tmp_path), 0.5) for _ in range(3)]]
    assert seen == [1, 1, 1]


def test_bad_names_and_worker_counts_are_refused() -> None:
    with pytest.raises(InvalidInput, match="local, processes, ray") as info:
        get_executor("threads")
    assert info.value.field == "executor"
    for bad in (0, -2, 1.5, True):
        with pytest.raises(InvalidInput) as info:
            get_executor("processes", workers=bad)  # type: ignore[arg-type]
        assert info.value.field == "workers"


def test_an_executor_instance_is_borrowed_not_shut_down() -> None:
    with get_executor("processes", workers=1) as owned:
        with get_executor(owned) as borrowed:
            assert borrowed.name == "processes" and borrowed.workers == 1
            assert borrowed.submit(pow, 2, 5).result(timeout=120) == 32
        # leaving the borrower's block left the pool running for its owner
        assert owned.submit(pow, 3, 2).result(timeout=120) == 9
        with pytest.raises(InvalidInput):
            get_executor(owned, workers=4)


def test_an_unreachable_ray_address_is_a_clear_error(ray_instance: str) -> None:
    address = f"ray://127.0.0.1:{_closed_port()}"
    with pytest.raises(InvalidInput, match=f"Ray address {address} is unreachable") as info:
        get_executor("ray", settings=Settings(ray_address=address, ray_token="t0ken"))
    assert info.value.field == "ray_address"
    assert "t0ken" not in str(info.value)


def test_the_ray_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MODELWORKS_RAY_ADDRESS", address)
    with pytest.raises(InvalidInput, match=f"Ray address {address} is unreachable"):
        get_executor("ray")
    monkeypatch.setenv("MODELWORKS_RAY_ADDRESS", "ray://no-port")
    with pytest.raises(InvalidInput, match="HOST:PORT"):
        get_executor("ray")


_CONNECT = """
import json, sys
from modelworks.config import Settings
from modelworks.errors import InvalidInput
from modelworks.pipelines.executors import get_executor
try:
    ex = get_executor("ray", settings=Settings(ray_address=sys.argv[1], ray_token=sys.argv[2]))
    print(json.dumps({"remote": ex.remote, "result": ex.submit(pow, 2, 10).result(60)}))
except InvalidInput as exc:
    print(json.dumps({"field": exc.field, "error": str(exc)}))
"""


@pytest.mark.slow
def test_a_token_authenticated_cluster_takes_the_token_from_settings() -> None:
    """A real `ray start --head` with token auth; the driver in its own process (one Ray
    connection per process), with no Ray variables of its own."""
    ray_bin = Path(sys.executable).with_name("ray")
    token = uuid.uuid4().hex + uuid.uuid4().hex
    port, client_port = _closed_port(), _closed_port()
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MODELWORKS_"))}
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=1",
         f"--ray-client-server-port={client_port}", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp}", "--block"],
        env={**clean, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def connect(address: str, with_token: str) -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-c", _CONNECT, address, with_token],
                              env=clean, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))

    try:
        deadline = time.monotonic() + 120
        while True:  # the client server is the last thing the head starts
            try:
                socket.create_connection(("127.0.0.1", client_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Ray head did not start"
                time.sleep(0.5)
        assert connect(f"ray://127.0.0.1:{client_port}", token) == {"remote": True,
                                                                     "result": 1024}
        refused = connect(f"127.0.0.1:{port}", "not-the-token")
        assert refused["field"] == "ray_address"
        assert f"127.0.0.1:{port}" in refused["error"]
        assert "MODELWORKS_RAY_TOKEN" in refused["error"]
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and everything it started
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)
