"""Serving benchmark: `modelworks serve` against `mlflow models serve`, same model, same run.

Model: scikit-learn LogisticRegression(max_iter=5000) on the breast-cancer data shipped with
scikit-learn (30 features; spaces in column names become underscores on both sides, so the
columns and the coefficients are identical). One row per request, one worker per server,
each server a fresh process of its own (its process group is killed at the end, even on
failure):

  modelworks  a fresh workspace folder in a temp dir, the model registered as `bc` (input
              example: the first rows), then `modelworks -w DIR serve --port P --models bc/1`
              (prediction logging on: the default); ready when GET /v1/health/ready is 200.
  mlflow      the same model logged with `mlflow.sklearn.log_model(..., input_example=...)`
              to a SQLite tracking store in a temp dir (benchmarks/peers/mlflow_serving.py,
              run with `.venv-peers`), then `.venv-peers/bin/mlflow models serve -m URI
              --env-manager local --workers 1`; ready when GET /ping is 200.

Measured, for modelworks' native `POST /v1/models/bc/predict` ({"instances": [row]}),
modelworks' `POST /invocations` and MLflow's `POST /invocations` (both {"dataframe_split":
{"columns": [...], "data": [[...]]}}):

  sequential  N requests one at a time over one keep-alive connection from a separate client
              process (benchmarks/_http_client.py: http.client, standard library only), after
              a warm-up: p50, p99 and mean latency.
  throughput  8 concurrent connections for D seconds from `wrk -t1` (a Lua script sets the
              POST body), or, without wrk, 4 client processes x 2 threads; the generator's
              own CPU time is reported to show it is not the bottleneck, and so is the
              server's.
  floor       in-process `model.predict(one-row 2-D NumPy array)` (median), and for reference
              modelworks' own in-process path `served.predict(served.inputs([row]))`.

Targets (issue 5): throughput at least 2.5x MLflow's; modelworks' native p50 within 0.5 ms
of the floor.

Many models (`--many-models`, default 1,000): that many copies of the model registered as
m0000, m0001, ... in another fresh workspace; `modelworks serve` with nothing pinned
(MODELWORKS_SERVE_MEMORY_BUDGET_MB=4096, so nothing is evicted); after one warm request to
m0000, the server's RSS; then one request to every other model (its first: a cold load),
timed; RSS again. Reported: median and p95 cold first-request time, memory per loaded model
((RSS after - RSS before) / models loaded) and the median warm latency of a second pass.

Progress goes to stderr, one JSON object to stdout. Run with the main venv:
`.venv/bin/python benchmarks/serving.py [--skip-peer] [--skip-many] [--requests N] ...`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    DEFAULT_PEERS_VENV,
    PeerError,
    eprint,
    machine_info,
    median,
    now_iso,
    package_version,
    parse_json_output,
    peers_python,
    percentile,
    print_json,
    ratio,
    run_peer,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

TARGET_THROUGHPUT_RATIO = 2.5
TARGET_P50_OVER_FLOOR_MS = 0.5
EXAMPLE_ROWS = 5
CLIENT = BENCH_DIR / "_http_client.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MANY_BUDGET_MB = "4096"


# --- the model --------------------------------------------------------------------------


def training_data() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data.rename(columns=lambda c: c.replace(" ", "_")), data.target


def fit(X: Any, y: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000).fit(X, y)


def coef_sha256(estimator: Any) -> str:
    return hashlib.sha256(estimator.coef_.tobytes() + estimator.intercept_.tobytes()).hexdigest()


def payloads(X: Any) -> dict[str, bytes]:
    """The one-row bodies: native instances and MLflow's dataframe_split (same row)."""
    row = X.iloc[0]
    return {
        "instances": json.dumps({"instances": [{k: float(v) for k, v in row.items()}]}).encode(),
        "dataframe_split": json.dumps({"dataframe_split": {
            "columns": list(X.columns), "data": [[float(v) for v in row.tolist()]]}}).encode(),
    }


# --- processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("MODELWORKS_")}
    env.update(extra or {})
    return env


class Server:
    """A server started in its own session (process group), stopped with the whole group."""

    def __init__(self, name: str, cmd: Sequence[str], *, port: int, ready_path: str,
                 cwd: Path, log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.port = port
        self.ready_path = ready_path
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.pgid = self.proc.pid
        self.started = time.perf_counter()
        self.ready_seconds: float | None = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before it "
                                   f"was ready; its log:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", self.ready_path)
                    if conn.getresponse().status == 200:
                        self.ready_seconds = time.perf_counter() - self.started
                        return self.ready_seconds
                finally:
                    conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s; its log:\n"
                           f"{self.log_tail()}")

    def group_pids(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == self.pgid:  # fields[2] is pgrp
                pids.append(int(entry))
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process in the server's group."""
        total = 0
        for pid in self.group_pids():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLK_TCK

    def rss_kib(self, pid: int | None = None) -> int:
        for line in Path(f"/proc/{pid or self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def command_lines(self) -> list[str]:
        out = []
        for pid in sorted(self.group_pids()):
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                out.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
        return out

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGINT to the group (uvicorn drains and runs its shutdown), then SIGKILL."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(grace)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)  # stragglers (e.g. MLflow's uvicorn)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            return self.proc.returncode
        finally:
            self._log.close()


# --- clients ----------------------------------------------------------------------------


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def answer_of(port: int, path: str, body: bytes) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        status, data = post(conn, path, body)
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"POST {path} answered {status}: {data[:300]!r}")
    return json.loads(data)


def sequential(port: int, path: str, body_file: Path | None, requests: int, warmup: int
               ) -> dict:
    """Latency from a separate client process (stdlib only), one keep-alive connection;
    a GET when there is no body."""
    body = ["--body-file", str(body_file)] if body_file is not None else []
    proc = subprocess.run(
        [sys.executable, str(CLIENT), "seq", "--port", str(port), "--path", path, *body,
         "--requests", str(requests), "--warmup", str(warmup)],
        capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the latency client failed on {path}: {proc.stderr[-2000:]}")
    return parse_json_output(proc.stdout, "latency client")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return round(float(match.group(1)) * _UNITS[match.group(2)], 3)


def parse_wrk(out: str) -> dict[str, Any]:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", out, re.M)
    if not rps or not total:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    latency = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    dist = {f"p{q}_ms": _ms(v) for q, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    return {
        "requests_per_s": float(rps.group(1)),
        "requests": int(total.group(1)),
        "seconds": _ms(total.group(2) + total.group(3)) / 1000,
        "latency_mean_ms": _ms(latency.group(1)) if latency else None,
        "latency_max_ms": _ms(latency.group(3)) if latency else None,
        **dist,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": dict(zip(("connect", "read", "write", "timeout"),
                                  map(int, sock.groups()), strict=True)) if sock else None,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def throughput(server: Server, path: str, body_file: Path, args: argparse.Namespace,
               lua: Path) -> dict[str, Any]:
    """Requests/s under `--connections` concurrent connections; who used how much CPU."""
    url = f"http://127.0.0.1:{server.port}{path}"
    wrk = shutil.which("wrk") if args.load_generator in ("auto", "wrk") else None
    if args.load_generator == "wrk" and wrk is None:
        raise RuntimeError("--load-generator wrk: wrk is not on PATH")
    server_cpu0 = server.cpu_seconds()
    children0 = _children_cpu()
    t0 = time.perf_counter()
    if wrk is not None:
        cmd = [wrk, f"-t{args.wrk_threads}", f"-c{args.connections}",
               f"-d{args.duration:g}s", "--timeout", "10s", "--latency", "-s", str(lua), url]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env={**os.environ, "BODY_FILE": str(body_file)},
                              timeout=args.duration + 120)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-2000:]}")
        result = parse_wrk(proc.stdout)
        if result["non_2xx"]:
            raise RuntimeError(f"{server.name} {path}: {result['non_2xx']} answers were not 2xx "
                               f"under load:\n{proc.stdout}")
        result["generator"] = (f"wrk {args.wrk_threads} thread(s), {args.connections} "
                               "connections, Lua script for the POST body")
    else:
        threads = max(1, args.connections // args.fallback_processes)
        proc = subprocess.run(
            [sys.executable, str(CLIENT), "load", "--port", str(server.port), "--path", path,
             "--body-file", str(body_file), "--processes", str(args.fallback_processes),
             "--threads", str(threads), "--duration", str(args.duration)],
            capture_output=True, text=True, check=False, timeout=args.duration + 120)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"the load client failed on {path}: {proc.stderr[-2000:]}")
        result = parse_json_output(proc.stdout, "load client")
        result.pop("pid", None)
    generator_cpu = _children_cpu() - children0
    server_cpu = server.cpu_seconds() - server_cpu0
    result["generator_cpu_s"] = round(generator_cpu, 3)
    result["generator_cpu_percent_of_one_core"] = round(100 * generator_cpu / wall, 1)
    result["server_cpu_percent_of_one_core"] = round(100 * server_cpu / wall, 1)
    return result


def measure_endpoint(server: Server, label: str, path: str, body_file: Path,
                     args: argparse.Namespace, lua: Path, console: Console) -> dict[str, Any]:
    console.print(f"{label}: {args.requests:,} sequential requests (after {args.warmup} "
                  "warm-up) ...")
    seq = sequential(server.port, path, body_file, args.requests, args.warmup)
    console.print(f"  p50 {seq['p50_ms']:.3f} ms, p99 {seq['p99_ms']:.3f} ms, mean "
                  f"{seq['mean_ms']:.3f} ms")
    console.print(f"{label}: {args.connections} connections for {args.duration:g} s ...")
    load = throughput(server, path, body_file, args, lua)
    console.print(f"  {load['requests_per_s']:,.0f} requests/s (generator CPU "
                  f"{load['generator_cpu_percent_of_one_core']}% of a core, server "
                  f"{load['server_cpu_percent_of_one_core']}%)")
    return {"path": path, "sequential": seq, "throughput": load}


# --- in-process floor -------------------------------------------------------------------


def median_us(fn: Callable[[], Any], repeats: int, warmup: int = 200) -> float:
    for _ in range(warmup):
        fn()
    out = []
    clock = time.perf_counter
    for _ in range(repeats):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return round(median(out) * 1e6, 1)


def floor(ws: Any, estimator: Any, X: Any, repeats: int) -> dict[str, Any]:
    """model.predict on one 2-D NumPy row, and modelworks' in-process ServedModel path."""
    from modelworks.registry.uri import parse_model_uri
    from modelworks.serving.model_cache import ModelCache

    row2d = X.iloc[:1].to_numpy()
    # The estimator as scikit-learn holds it after fitting on NumPy (no feature names, so no
    # per-call name check or warning): what both servers predict with at best.
    plain = copy.deepcopy(estimator)
    del plain.feature_names_in_
    out = {"predict_numpy_one_row_us": median_us(lambda: plain.predict(row2d), repeats)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["predict_one_row_dataframe_us"] = median_us(
            lambda: estimator.predict(X.iloc[:1]), max(repeats // 5, 50))
    cache = ModelCache(ws.ctx, budget_bytes=2**30)
    served = cache.get(parse_model_uri("models:/bc/1"))
    row = {k: float(v) for k, v in X.iloc[0].items()}
    out["served_fast_path"] = getattr(served, "fast", None)
    out["served_inputs_us"] = median_us(lambda: served.inputs([row]), repeats)
    out["served_predict_path_us"] = median_us(lambda: served.predict(served.inputs([row])),
                                              repeats)
    out["repeats"] = repeats
    return out


# --- the transport floor ----------------------------------------------------------------

BARE_APP = """# A bare ASGI app (no framework): reads the body, answers a fixed JSON (serving.py)
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"predictions": [0]}'})
"""


def run_bare(args: argparse.Namespace, tmp: Path, body_file: Path, console: Console,
             servers: list[Server]) -> dict[str, Any]:
    """The same client and uvicorn (httptools, uvloop, no access log) around an app that
    does nothing: what any Python server pays per request on this machine."""
    (tmp / "bare_asgi.py").write_text(BARE_APP)
    port = free_port()
    server = Server("bare uvicorn", [sys.executable, "-m", "uvicorn", "--no-access-log",
                                     "--log-level", "warning", "--port", str(port),
                                     "--app-dir", str(tmp), "bare_asgi:app"],
                    port=port, ready_path="/", cwd=tmp, log_path=tmp / "bare.log",
                    env=_clean_env())
    servers.append(server)
    server.wait_ready(args.startup_timeout)
    seq = sequential(port, "/", body_file, args.requests, args.warmup)
    seq.pop("sample_answer", None)
    server.stop()
    servers.remove(server)
    console.print(f"transport floor (bare ASGI app under uvicorn, same client): p50 "
                  f"{seq['p50_ms']:.3f} ms")
    return seq


# --- modelworks and MLflow servers ------------------------------------------------------


def modelworks_cli() -> list[str]:
    exe = Path(sys.executable).parent / "modelworks"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from modelworks.cli.main import main; "
            "sys.argv[0] = 'modelworks'; main()"]


def logged_predictions(workspace: Path, model: str) -> int | None:
    import modelworks as mw

    ws = mw.Workspace(str(workspace))
    try:
        return len(ws.predictions(model=model))
    finally:
        ws.close()


def run_modelworks(args: argparse.Namespace, tmp: Path, X: Any, estimator: Any,
                   bodies: dict[str, Path], lua: Path, console: Console,
                   servers: list[Server]) -> dict[str, Any]:
    import modelworks as mw

    folder = tmp / "mw-workspace"
    ws = mw.Workspace(str(folder))
    try:
        ws.register_model("bc", model=estimator, input_example=X.head(EXAMPLE_ROWS))
        console.print("floor: in-process predict on one row ...")
        floor_figures = floor(ws, estimator, X, args.floor_repeats)
    finally:
        ws.close()
    console.print(f"  model.predict(numpy row) median {floor_figures['predict_numpy_one_row_us']}"
                  f" us; ServedModel path {floor_figures['served_predict_path_us']} us")

    port = free_port()
    server = Server("modelworks", [*modelworks_cli(), "-w", str(folder), "serve", "--port",
                                   str(port), "--models", "bc/1", "--workers", "1"],
                    port=port, ready_path="/v1/health/ready", cwd=tmp,
                    log_path=tmp / "modelworks-serve.log", env=_clean_env())
    servers.append(server)
    ready = server.wait_ready(args.startup_timeout)
    console.print(f"modelworks serve ready in {ready:.1f} s (pid {server.proc.pid})")
    check = answer_of(port, "/v1/models/bc/predict", bodies["instances"].read_bytes())
    check_inv = answer_of(port, "/invocations", bodies["dataframe_split"].read_bytes())
    expected = estimator.predict(X.iloc[:1]).tolist()
    if check["predictions"] != expected or check_inv["predictions"] != expected:
        raise RuntimeError(f"modelworks answered {check} / {check_inv}, expected {expected}")
    result = {
        "native": measure_endpoint(server, "modelworks native", "/v1/models/bc/predict",
                                   bodies["instances"], args, lua, console),
        "invocations": measure_endpoint(server, "modelworks /invocations", "/invocations",
                                        bodies["dataframe_split"], args, lua, console),
    }
    answered = 2 + sum(r["sequential"]["n"] + r["sequential"]["warmup"]
                       + r["throughput"]["requests"] for r in result.values())
    live = sequential(port, "/v1/health/live", None, args.requests, args.warmup)
    live.pop("sample_answer", None)
    result["health_live"] = live
    console.print(f"modelworks GET /v1/health/live (no prediction): p50 {live['p50_ms']:.3f} ms")
    rss = server.rss_kib()
    result["server"] = {"ready_seconds": round(ready, 2), "rss_mib": round(rss / 1024, 1),
                        "command": server.command_lines()}
    code = server.stop()
    servers.remove(server)
    logged = logged_predictions(folder, "bc")
    console.print(f"modelworks: {logged:,} predictions in the log (clients counted "
                  f"{answered:,} answers; wrk does not count answers in flight at its end)")
    result["prediction_log"] = {"on": True, "logged": logged, "answers_counted": answered,
                                "complete": logged is not None and logged >= answered,
                                "server_exit_code": code}
    result["floor"] = floor_figures
    return result


def run_mlflow(args: argparse.Namespace, tmp: Path, X: Any, estimator: Any,
               bodies: dict[str, Path], lua: Path, console: Console,
               servers: list[Server]) -> dict[str, Any]:
    peer_dir = tmp / "mlflow"
    console.print("mlflow: logging the model with benchmarks/peers/mlflow_serving.py in "
                  ".venv-peers ...")
    info = run_peer("mlflow_serving.py", ["--dir", str(peer_dir), "--example-rows",
                                          str(EXAMPLE_ROWS), "--repeats",
                                          str(max(args.floor_repeats // 5, 50))],
                    venv=args.peers_venv, timeout=args.peer_timeout)
    if info["coef_sha256"] != coef_sha256(estimator):
        raise RuntimeError("the MLflow side trained different coefficients")
    bin_dir = Path(args.peers_venv).resolve() / "bin"
    port = free_port()
    # `mlflow models serve` execs `uvicorn` from PATH: the peers' venv must come first.
    env = _clean_env({"MLFLOW_TRACKING_URI": info["tracking_uri"],
                      "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                      "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    if args.mlflow_no_access_log:
        env["UVICORN_ACCESS_LOG"] = "false"  # uvicorn's CLI reads UVICORN_* options
    server = Server("mlflow", [str(bin_dir / "mlflow"), "models", "serve", "-m",
                               info["model_uri"], "--env-manager", "local", "-p", str(port),
                               "-h", "127.0.0.1", "--workers", "1"],
                    port=port, ready_path="/ping", cwd=peer_dir,
                    log_path=tmp / "mlflow-serve.log", env=env)
    servers.append(server)
    ready = server.wait_ready(args.startup_timeout)
    console.print(f"mlflow models serve ready in {ready:.1f} s (pid {server.proc.pid})")
    check = answer_of(port, "/invocations", bodies["dataframe_split"].read_bytes())
    expected = estimator.predict(X.iloc[:1]).tolist()
    if check["predictions"] != expected:
        raise RuntimeError(f"mlflow answered {check}, expected {expected}")
    result = {"invocations": measure_endpoint(server, "mlflow /invocations", "/invocations",
                                              bodies["dataframe_split"], args, lua, console)}
    ping = sequential(port, "/ping", None, args.requests, args.warmup)
    ping.pop("sample_answer", None)
    result["ping"] = ping
    console.print(f"mlflow GET /ping (no prediction): p50 {ping['p50_ms']:.3f} ms")
    commands = server.command_lines()
    workers = [c for c in commands if "uvicorn" in c]
    result["server"] = {"ready_seconds": round(ready, 2), "command": commands,
                        "uvicorn_processes": len(workers),
                        "rss_mib": round(sum(server.rss_kib(p) for p in server.group_pids())
                                         / 1024, 1),
                        "access_log": "off (--mlflow-no-access-log)" if args.mlflow_no_access_log
                        else "uvicorn's default: on, one line per request to its stdout (here "
                             "a file)"}
    server.stop()
    servers.remove(server)
    result["peer"] = info
    return result


# --- many models ------------------------------------------------------------------------


def _metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})?\s+([\d.eE+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


def run_many(args: argparse.Namespace, tmp: Path, X: Any, estimator: Any, body: bytes,
             progress: Progress, servers: list[Server]) -> dict[str, Any]:
    import modelworks as mw

    n = args.many_models
    names = [f"m{i:04d}" for i in range(n)]
    folder = tmp / "mw-many"
    ws = mw.Workspace(str(folder))
    task = progress.add_task(f"modelworks: registering {n:,} models", total=n)
    every = max(n // 100, 1)
    t0 = time.perf_counter()
    try:
        for i, name in enumerate(names):
            ws.register_model(name, model=estimator, input_example=X.head(EXAMPLE_ROWS))
            if (i + 1) % every == 0:
                progress.update(task, completed=i + 1)
                progress.refresh()
    finally:
        ws.close()
    seed_seconds = time.perf_counter() - t0
    progress.update(task, completed=n)
    progress.refresh()
    progress.console.print(f"registered {n:,} models in {seed_seconds:.1f} s "
                           f"({1000 * seed_seconds / n:.1f} ms each)")

    port = free_port()
    server = Server("modelworks (many models)",
                    [*modelworks_cli(), "-w", str(folder), "serve", "--port", str(port),
                     "--workers", "1"],
                    port=port, ready_path="/v1/health/ready", cwd=tmp,
                    log_path=tmp / "modelworks-many.log",
                    env=_clean_env({"MODELWORKS_SERVE_MEMORY_BUDGET_MB": MANY_BUDGET_MB}))
    servers.append(server)
    ready = server.wait_ready(args.startup_timeout)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    expected = estimator.predict(X.iloc[:1]).tolist()

    def ask(name: str) -> float:
        t = time.perf_counter()
        status, data = post(conn, f"/v1/models/{name}/predict", body)
        seconds = time.perf_counter() - t
        if status != 200 or json.loads(data)["predictions"] != expected:
            raise RuntimeError(f"{name} answered {status}: {data[:300]!r}")
        return seconds

    try:
        first_cold = ask(names[0])
        ask(names[0])  # warm
        rss_before = server.rss_kib()
        task = progress.add_task("modelworks: first request to each model (cold load)",
                                 total=n - 1)
        cold = []
        for i, name in enumerate(names[1:]):
            cold.append(ask(name))
            if (i + 1) % every == 0:
                progress.update(task, completed=i + 1)
                progress.refresh()
        progress.update(task, completed=n - 1)
        progress.refresh()
        rss_after = server.rss_kib()
        warm = [ask(name) for name in names]
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
    finally:
        conn.close()
    loaded = n - 1
    result = {
        "models": n,
        "cold_first_request": {
            "median_ms": round(1000 * median(cold), 3) if cold else None,
            "p95_ms": round(1000 * percentile(cold, 95), 3) if cold else None,
            "max_ms": round(1000 * max(cold), 3) if cold else None,
            "n": len(cold),
            "first_model_ms": round(1000 * first_cold, 3),
        },
        "warm_request": {"median_ms": round(1000 * median(warm), 3),
                         "p95_ms": round(1000 * percentile(warm, 95), 3), "n": len(warm)},
        "rss_mib": {"after_one_model": round(rss_before / 1024, 1),
                    "after_all": round(rss_after / 1024, 1)},
        "memory_per_loaded_model_kib": round((rss_after - rss_before) / loaded, 1)
        if loaded else None,
        "artifact_bytes_per_model": None,
        "server_cache": {k: _metric(metrics, f"modelworks_{k}") for k in (
            "model_cache_models", "model_cache_bytes", "model_loads_total",
            "model_evictions_total")},
        "memory_budget_mb": int(MANY_BUDGET_MB),
        "register_seconds": round(seed_seconds, 2),
        "register_ms_per_model": round(1000 * seed_seconds / n, 2),
        "server_ready_seconds": round(ready, 2),
    }
    cache_bytes = result["server_cache"]["model_cache_bytes"]
    if cache_bytes:
        result["artifact_bytes_per_model"] = round(cache_bytes / n)
    server.stop()
    servers.remove(server)
    return result


# --- the report -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="sequential requests, timed")
    ap.add_argument("--warmup", type=int, default=200, help="sequential warm-up requests")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of load per endpoint")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto",
                    help="auto: wrk if it is on PATH, else Python client processes")
    ap.add_argument("--fallback-processes", type=int, default=4,
                    help="client processes of the Python load generator")
    ap.add_argument("--floor-repeats", type=int, default=5000)
    ap.add_argument("--many-models", type=int, default=1000)
    ap.add_argument("--skip-peer", action="store_true", help="measure modelworks alone")
    ap.add_argument("--skip-many", action="store_true", help="skip the many-models part")
    ap.add_argument("--mlflow-no-access-log", action="store_true",
                    help="turn off uvicorn's per-request access log in MLflow's server (on by "
                         "default there; modelworks serve runs without one)")
    ap.add_argument("--startup-timeout", type=float, default=180.0)
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_PEERS_VENV)
    ap.add_argument("--peer-timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    for name in ("requests", "connections", "wrk_threads", "fallback_processes",
                 "floor_repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.duration <= 0:
        ap.error("--warmup must be >= 0 and --duration > 0")
    if args.many_models < 2 and not args.skip_many:
        ap.error("--many-models must be at least 2 (or pass --skip-many)")
    return args


def _row(ours: dict | None, theirs: dict | None, key: str) -> tuple[Any, Any]:
    return (ours[key] if ours else None), (theirs[key] if theirs else None)


def build_report(args: argparse.Namespace, mw_res: dict[str, Any], peer: dict[str, Any] | None,
                 many: dict[str, Any] | None, bare: dict[str, Any], loads: tuple[Any, Any]
                 ) -> dict[str, Any]:
    native, inv = mw_res["native"], mw_res["invocations"]
    theirs = peer["invocations"] if peer else None
    fl = mw_res["floor"]
    floor_ms = fl["predict_numpy_one_row_us"] / 1000
    rps = {k: v["throughput"]["requests_per_s"] for k, v in
           (("native", native), ("invocations", inv), ("mlflow", theirs)) if v}
    tp_ratio = ratio(rps["native"], rps.get("mlflow"))
    tp_ratio_inv = ratio(rps["invocations"], rps.get("mlflow"))
    seq = {k: v["sequential"] for k, v in
           (("native", native), ("invocations", inv), ("mlflow", theirs)) if v}
    overhead = round(seq["native"]["p50_ms"] - floor_ms, 3)
    generator = native["throughput"]["generator"]
    return {
        "benchmark": "serving",
        "throughput": {
            "unit": f"requests/s, {args.connections} concurrent connections, one row each "
                    "(higher is better); ratio = modelworks / mlflow",
            "modelworks": rps["native"],
            "modelworks_invocations": rps["invocations"],
            "mlflow": rps.get("mlflow"),
            "ratio": tp_ratio,
            "ratio_invocations": tp_ratio_inv,
            "target": f">= {TARGET_THROUGHPUT_RATIO:g}x mlflow",
            "met": None if tp_ratio is None else tp_ratio >= TARGET_THROUGHPUT_RATIO,
            "met_invocations": None if tp_ratio_inv is None
            else tp_ratio_inv >= TARGET_THROUGHPUT_RATIO,
            "generator": generator,
            "details": {"modelworks": native["throughput"],
                        "modelworks_invocations": inv["throughput"],
                        "mlflow": theirs["throughput"] if theirs else None},
        },
        "latency_p50": {
            "unit": "ms, sequential, one keep-alive connection (lower is better); ratio = "
                    "mlflow / modelworks",
            "modelworks": seq["native"]["p50_ms"],
            "modelworks_invocations": seq["invocations"]["p50_ms"],
            "mlflow": seq["mlflow"]["p50_ms"] if theirs else None,
            "ratio": ratio(seq["mlflow"]["p50_ms"], seq["native"]["p50_ms"]) if theirs else None,
            "floor_ms": round(floor_ms, 3),
            "over_floor_ms": overhead,
            "target": f"modelworks native p50 within {TARGET_P50_OVER_FLOOR_MS:g} ms of the "
                      "floor (in-process model.predict on one NumPy row)",
            "met": overhead <= TARGET_P50_OVER_FLOOR_MS,
        },
        "latency_p99": {
            "unit": "ms, sequential (lower is better); ratio = mlflow / modelworks",
            "modelworks": seq["native"]["p99_ms"],
            "modelworks_invocations": seq["invocations"]["p99_ms"],
            "mlflow": seq["mlflow"]["p99_ms"] if theirs else None,
            "ratio": ratio(seq["mlflow"]["p99_ms"], seq["native"]["p99_ms"]) if theirs else None,
        },
        "transport": {
            "unit": "sequential p50 ms, same client and connection handling",
            "bare_uvicorn_asgi": bare["p50_ms"],
            "modelworks_get_health_live": mw_res["health_live"]["p50_ms"],
            "mlflow_get_ping": peer["ping"]["p50_ms"] if peer else None,
            "modelworks_native_over_bare_ms": round(seq["native"]["p50_ms"] - bare["p50_ms"],
                                                    3),
            "note": "bare_uvicorn_asgi: an app that reads the body and answers a fixed JSON, "
                    "under the same uvicorn (httptools, uvloop, no access log) — what the "
                    "client, loopback and the HTTP server cost before any framework or model",
            "details": {"bare_uvicorn_asgi": bare, "modelworks_get_health_live":
                        mw_res["health_live"], "mlflow_get_ping": peer["ping"] if peer else None},
        },
        "sequential": {"modelworks": native["sequential"],
                       "modelworks_invocations": inv["sequential"],
                       "mlflow": theirs["sequential"] if theirs else None},
        "floor": {**fl, "mlflow_pyfunc_predict_one_row_dataframe_us":
                  peer["peer"]["in_process_pyfunc_predict_one_row_dataframe_us"]
                  if peer else None},
        "many_models": many,
        "prediction_log": mw_res["prediction_log"],
        "servers": {"modelworks": mw_res["server"], "mlflow": peer["server"] if peer else None},
        "date": now_iso(),
        "load_average": {"start": loads[0], "end": loads[1]},
        "machine": machine_info(),
        "versions": {
            "modelworks": package_version("modelworks"),
            "mlflow": peer["peer"]["versions"]["mlflow"] if peer else None,
            "scikit-learn": package_version("scikit-learn"),
            "scikit-learn_peer": peer["peer"]["versions"]["scikit-learn"] if peer else None,
            "uvicorn": package_version("uvicorn"),
            "uvicorn_peer": peer["peer"]["versions"]["uvicorn"] if peer else None,
            "fastapi": package_version("fastapi"),
            "uvloop": package_version("uvloop"),
            "httptools": package_version("httptools"),
            "wrk": _wrk_version(),
        },
        "config": {
            "model": "LogisticRegression(max_iter=5000), load_breast_cancer (30 features, "
                     "spaces in column names replaced by '_')",
            "requests": args.requests, "warmup": args.warmup, "duration_s": args.duration,
            "connections": args.connections, "wrk_threads": args.wrk_threads,
            "load_generator": args.load_generator, "floor_repeats": args.floor_repeats,
            "many_models": None if args.skip_many else args.many_models,
            "workers": 1, "prediction_log": "on (modelworks default)",
            "payloads": {"modelworks native": '{"instances": [{column: value, ...}]}',
                         "/invocations (both)": '{"dataframe_split": {"columns": [...], '
                                                '"data": [[...]]}}'},
            "skip_peer": args.skip_peer, "skip_many": args.skip_many,
            "mlflow_access_log": not args.mlflow_no_access_log,
        },
    }


def _wrk_version() -> str | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    proc = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (proc.stdout or proc.stderr).splitlines()
    return first[0].split("Copyright")[0].strip() if first else None


LUA = """-- POST the body in $BODY_FILE with a JSON content type (written by serving.py)
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    if not args.skip_peer:
        try:
            peers_python(args.peers_venv)
        except PeerError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            return 2

    def _terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    servers: list[Server] = []
    load_start = [round(v, 2) for v in os.getloadavg()]
    peer: dict[str, Any] | None = None
    peer_error: str | None = None
    many: dict[str, Any] | None = None
    bare: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mw-serving-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            X, y = training_data()
            estimator = fit(X, y)
            bodies = {}
            for key, data in payloads(X).items():
                bodies[key] = tmp / f"{key}.json"
                bodies[key].write_bytes(data)
            lua = tmp / "post.lua"
            lua.write_text(LUA)
            mw_res = run_modelworks(args, tmp, X, estimator, bodies, lua, console, servers)
            bare = run_bare(args, tmp, bodies["instances"], console, servers)
            if not args.skip_peer:
                try:
                    peer = run_mlflow(args, tmp, X, estimator, bodies, lua, console, servers)
                except (PeerError, RuntimeError) as exc:
                    peer_error = str(exc)
                    console.print(f"[bold red]mlflow peer failed:[/] {exc}")
            if not args.skip_many:
                with Progress(TextColumn("{task.description}"), BarColumn(),
                              MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                              auto_refresh=False) as progress:
                    many = run_many(args, tmp, X, estimator, bodies["instances"].read_bytes(),
                                    progress, servers)
        finally:
            for server in list(servers):
                server.stop(grace=5)
    loads = (load_start, [round(v, 2) for v in os.getloadavg()])
    report = build_report(args, mw_res, peer, many, bare, loads)
    if peer_error:
        report["peer_error"] = peer_error
    print_json(report)
    summary(report, console)
    return 1 if peer_error else 0


def summary(report: dict[str, Any], console: Console) -> None:
    def met(flag: bool | None) -> str:
        return {True: "[green]met[/]", False: "[red]NOT met[/]", None: ""}[flag]

    tp, p50, p99 = report["throughput"], report["latency_p50"], report["latency_p99"]
    console.print(f"throughput: modelworks {tp['modelworks']:,.0f} req/s (native), "
                  f"{tp['modelworks_invocations']:,.0f} (/invocations); mlflow "
                  f"{tp['mlflow'] or '-'}; ratio {tp['ratio']} / {tp['ratio_invocations']} "
                  f"(target {tp['target']}) {met(tp['met'])}")
    console.print(f"p50: modelworks {p50['modelworks']} ms (native), "
                  f"{p50['modelworks_invocations']} ms (/invocations); mlflow {p50['mlflow']} "
                  f"ms; floor {p50['floor_ms']} ms, over floor {p50['over_floor_ms']} ms "
                  f"(target <= {TARGET_P50_OVER_FLOOR_MS} ms) {met(p50['met'])}")
    console.print(f"p99: modelworks {p99['modelworks']} ms, {p99['modelworks_invocations']} "
                  f"ms; mlflow {p99['mlflow']} ms")
    tr = report["transport"]
    console.print(f"transport p50: bare uvicorn app {tr['bare_uvicorn_asgi']} ms, modelworks "
                  f"GET /v1/health/live {tr['modelworks_get_health_live']} ms, mlflow GET "
                  f"/ping {tr['mlflow_get_ping']} ms")
    many = report["many_models"]
    if many:
        console.print(f"{many['models']:,} models: cold first request median "
                      f"{many['cold_first_request']['median_ms']} ms (p95 "
                      f"{many['cold_first_request']['p95_ms']}), warm median "
                      f"{many['warm_request']['median_ms']} ms, "
                      f"{many['memory_per_loaded_model_kib']} KiB RSS per loaded model")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        eprint("interrupted")
        sys.exit(130)
