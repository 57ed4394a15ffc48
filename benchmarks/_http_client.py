"""A low-overhead HTTP load client for the serving benchmark (standard library only).

Run as its own process, with any interpreter, so the client shares nothing with the server
or with the benchmark driver (no modelworks, NumPy or scikit-learn imported here):

  seq   N requests one at a time over one keep-alive connection, after a warm-up (a GET
        when no body is given: the transport floor); prints the latency summary (p50, p99,
        mean) as one JSON object.
  load  the fallback load generator when `wrk` is missing: P processes x T threads, each
        thread with its own keep-alive connection, for D seconds; prints requests/s.

Every answer must be 200: a client that counts errors as requests would flatter the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile  # standard library only

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def _post(conn: http.client.HTTPConnection, path: str, body: bytes | None) -> tuple[int, bytes]:
    """POST the body; GET when there is none (the transport floor: no prediction)."""
    if body is None:
        conn.request("GET", path)
    else:
        conn.request("POST", path, body=body, headers=HEADERS)
    resp = conn.getresponse()
    return resp.status, resp.read()


def _decoded(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:  # e.g. MLflow's /ping answers a bare newline
        return body[:200].decode(errors="replace")


def sequential(host: str, port: int, path: str, body: bytes | None, n: int, warmup: int
               ) -> dict[str, object]:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        first = b""
        for _ in range(warmup):
            status, first = _post(conn, path, body)
            if status != 200:
                raise SystemExit(f"{path} answered {status}: {first[:300]!r}")
        seconds = []
        errors = 0
        clock = time.perf_counter
        for _ in range(n):
            t0 = clock()
            status, data = _post(conn, path, body)
            seconds.append(clock() - t0)
            if status != 200:
                errors += 1
                first = data
    finally:
        conn.close()
    if errors:
        raise SystemExit(f"{path}: {errors} of {n} answers were not 200: {first[:300]!r}")
    ms = [s * 1000 for s in seconds]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "n": n,
        "warmup": warmup,
        "requests_per_s": round(n / sum(seconds), 1),
        "client_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "sample_answer": _decoded(first),
    }


def _worker(host: str, port: int, path: str, body: bytes, threads: int, deadline: float,
            out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    counts = [0] * threads
    errors = [0] * threads

    def run(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            while time.monotonic() < deadline:
                status, _ = _post(conn, path, body)
                if status == 200:
                    counts[i] += 1
                else:
                    errors[i] += 1
        finally:
            conn.close()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put((sum(counts), sum(errors), usage.ru_utime + usage.ru_stime))


def load(host: str, port: int, path: str, body: bytes, processes: int, threads: int,
         duration: float) -> dict[str, object]:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = time.monotonic()
    deadline = start + duration
    procs = [ctx.Process(target=_worker, args=(host, port, path, body, threads, deadline, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    done = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    cpu = sum(r[2] for r in results)
    if errors:
        raise SystemExit(f"POST {path}: {errors} answers were not 200 under load")
    return {"requests": done, "seconds": round(elapsed, 3),
            "requests_per_s": round(done / elapsed, 1),
            "generator": f"python http.client, {processes} processes x {threads} threads",
            "generator_cpu_s": round(cpu, 3),
            "generator_cpu_percent_of_one_core": round(100 * cpu / elapsed, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("seq", "load"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--body-file", type=Path, help="POST this body (seq: GET without one)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--duration", type=float, default=15.0)
    args = ap.parse_args()
    body = args.body_file.read_bytes() if args.body_file else None
    if args.mode == "seq":
        result = sequential(args.host, args.port, args.path, body, args.requests, args.warmup)
    else:
        if body is None:
            ap.error("load needs --body-file")
        result = load(args.host, args.port, args.path, body, args.processes, args.threads,
                      args.duration)
    result["pid"] = os.getpid()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
