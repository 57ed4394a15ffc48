"""Metric points: validated on the caller's thread, written in bulk by a background writer.

Logging a point appends a tuple to a buffer; a daemon thread drains it every ``interval``
seconds (or as soon as ``batch_size`` points wait) with one executemany insert per batch,
plus an upsert of the latest value per (run, key) and the runs' point counts. One ORM object
per point would cost ~50x more. ``flush()`` drains synchronously; run end, workspace close
and interpreter exit flush too.
"""

from __future__ import annotations

import atexit
import math
import sys
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, select, update

from ..errors import InvalidInput
from ..records import MetricPoint
from ..store.tables import latest_metrics, metrics, runs

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = ["MetricWriter", "check_key", "check_value", "metric_history", "write_points"]

# (run_id, key, value or None for NaN, step, timestamp)
Point = tuple[str, str, float | None, int, float]

_MAX_KEY = 256
_POINT_COLUMNS = ("run_id", "key", "value", "step", "ts")  # the order of a Point
_ADD_COUNT = (
    update(runs)
    .where(runs.c.id == bindparam("rid"))
    .values(metric_count=runs.c.metric_count + bindparam("n"))
)


def check_key(key: object, *, field: str = "key") -> str:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise InvalidInput(
            f"metric {field} must be a non-empty string of at most {_MAX_KEY} characters, "
            f"got {key!r}", field=field,
        )
    return key


def check_value(key: str, value: object) -> float | None:
    """A float, or None for NaN; non-numbers are refused naming the metric."""
    if isinstance(value, bool) or not isinstance(value, Real):
        # numpy scalars are Real; strings, None and arrays are not.
        raise InvalidInput(
            f"metric {key!r} value must be a number, got {type(value).__name__} {value!r:.40}",
            field="value",
        )
    number = float(value)
    return None if math.isnan(number) else number


def check_step(step: object) -> int:
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    if isinstance(step, Real) and not isinstance(step, bool) and float(step).is_integer():
        return int(float(step))  # numpy integers and integral floats
    raise InvalidInput(f"metric step must be an integer, got {step!r}", field="step")


def write_points(db: Database, conn: Connection, points: Sequence[Point]) -> None:
    """Bulk-insert points and refresh latest values and counts, in the caller's transaction."""
    if not points:
        return
    db.insert_rows(conn, metrics, _POINT_COLUMNS, points)
    latest: dict[tuple[str, str], Point] = {}
    counts: dict[str, int] = defaultdict(int)
    for point in points:
        counts[point[0]] += 1
        slot = (point[0], point[1])
        best = latest.get(slot)
        if best is None or (point[3], point[4]) >= (best[3], best[4]):
            latest[slot] = point
    db.upsert(
        conn,
        latest_metrics,
        [{"run_id": r, "key": k, "value": v, "step": s, "ts": t}
         for r, k, v, s, t in latest.values()],
        keys=("run_id", "key"),
        update=("value", "step", "ts"),
        where_newer="step",
    )
    conn.execute(_ADD_COUNT, [{"rid": r, "n": n} for r, n in counts.items()])


def metric_history(
    conn: Connection, run_id: str, key: str, *, max_points: int | None = None
) -> list[MetricPoint]:
    """Points in step order; with ``max_points``, evenly downsampled keeping first and last."""
    rows = conn.execute(
        select(metrics.c.value, metrics.c.step, metrics.c.ts)
        .where(metrics.c.run_id == run_id, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.ts, metrics.c.id)
    ).all()
    if max_points is not None:
        if max_points < 1:
            raise InvalidInput("max_points must be at least 1", field="max_points")
        if len(rows) > max_points:
            if max_points == 1:
                rows = [rows[-1]]
            else:
                last = len(rows) - 1
                picks = sorted({round(i * last / (max_points - 1)) for i in range(max_points)})
                rows = [rows[i] for i in picks]
    return [
        MetricPoint(key=key, value=math.nan if v is None else v, step=s, timestamp=t)
        for v, s, t in rows
    ]


_WRITERS: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_WRITERS):
        try:
            writer.close()
        except Exception as exc:  # at exit nobody can catch it: say what was not written
            print(f"modelworks: {writer.pending()} metric points not written at exit: {exc}",
                  file=sys.stderr)


class MetricWriter:
    """Buffers points and writes them in batches from a daemon thread."""

    def __init__(self, db: Database, *, batch_size: int = 5000, interval: float = 0.5) -> None:
        self._db = db
        self._batch_size = batch_size
        self._interval = interval
        self._buffer: list[Point] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one batch in flight at a time
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        _WRITERS.add(self)

    def add(self, point: Point) -> None:
        self._raise_pending()
        with self._lock:
            self._buffer.append(point)
            full = len(self._buffer) >= self._batch_size
        self._ensure_thread()
        if full:
            self._wake.set()

    def extend(self, points: Iterable[Point]) -> None:
        self._raise_pending()
        with self._lock:
            self._buffer.extend(points)
            full = len(self._buffer) >= self._batch_size
        self._ensure_thread()
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything buffered so far; re-raise a background write failure."""
        self._drain()
        self._raise_pending()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._drain()
        self._raise_pending()

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._loop, name="mw-metric-writer",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain()
            except BaseException as exc:  # kept for the caller's next flush()
                self._error = exc
                time.sleep(self._interval)

    def _drain(self, then: Callable[[Connection], None] | None = None) -> None:
        with self._write_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch and then is None:
                return
            try:
                with self._db.write() as conn:
                    write_points(self._db, conn, batch)
                    if then is not None:
                        then(conn)
            except BaseException:
                with self._lock:  # nothing is lost: put the batch back for the next try
                    self._buffer[:0] = batch
                raise

    def flush_then(self, then: Callable[[Connection], None]) -> None:
        """Write what is buffered and run ``then`` in the same transaction (one commit)."""
        self._raise_pending()
        self._drain(then)

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)


