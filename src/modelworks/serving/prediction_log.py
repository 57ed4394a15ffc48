"""The durable prediction log: a local journal written before each response, compacted into
Parquet files in the artifact store.

Durability, in the order a prediction travels:

1. ``append_rows`` (or ``append``) writes every row of one request with one ``write()`` to
   the current journal segment, ``<journal_dir>/<stem>.open``, before the server answers.
   Once ``write()`` returns the bytes are in the OS page cache: a killed server process
   (``kill -9``, OOM) loses nothing it acknowledged.
2. A background thread fsyncs the segment every ``fsync_seconds``, so a machine crash or
   power loss loses at most that window (``fsync_seconds=0`` fsyncs inside every append:
   nothing is lost, at the cost of one disk flush per request).
3. Segments roll over by size (``segment_bytes``) and every ``compact_seconds``; a closed
   segment is renamed ``<stem>.jsonl``. A second thread compacts closed segments into one
   Parquet file per model and UTC day, stores them in the artifact store (content addressed)
   and indexes them in ``mw_prediction_files`` in one transaction; then deletes the segment.
   The index key (``segment`` = ``<stem>/<model>/<day>``) makes a re-run after a crash
   between commit and delete a no-op.
4. A process that starts on a journal folder recovers what a dead one left: a writer holds
   an exclusive ``flock`` on its open segment for its lifetime, so an ``.open`` segment
   nobody holds belongs to a dead process; its complete lines are compacted and its torn
   last line (a ``write()`` cut short, never acknowledged) is dropped.

Several processes (server workers) may share one journal folder: each writes its own
segments, and any of them compacts any closed segment (a per-file lock keeps two from doing
the same one at once). Create one ``PredictionLog`` per process, after forking.

No audit event is written per compaction: predictions are observations, not changes of the
registry's state, and one event every ``compact_seconds`` per worker would drown the audit
log. The index rows carry each file's sha256, so the log is tamper-evident through the
artifact store's verified reads.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from ..errors import InvalidInput, ModelworksError
from ..store.tables import prediction_files, utcnow
from ._logfiles import encode_rows, loads, parse_lines, table_from_rows, to_parquet, utc_day
from .log_filter import LogFilter, log_filter
from .prediction_reader import get_prediction, read_predictions

if TYPE_CHECKING:
    from ..config import Settings, WorkspaceLocation
    from ..context import Context
    from .records import PredictionRecord

__all__ = [
    "LogFilter",
    "PredictionLog",
    "default_journal_dir",
    "get_prediction",
    "log_filter",
    "read_predictions",
]

logger = logging.getLogger("modelworks.serving.prediction_log")

MiB = 1 << 20
OPEN, CLOSED = ".open", ".jsonl"
_LOCK_FILE = "journal.lock"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default_journal_dir(location: WorkspaceLocation, settings: Settings, *,
                        required: bool = True) -> Path | None:
    """``settings.prediction_log_dir``, else ``prediction-journal`` beside the SQLite file.

    A PostgreSQL workspace has no folder of its own: the journal must then be configured
    (``MODELWORKS_PREDICTION_LOG_DIR``, a local disk of the serving machine); without it
    this raises InvalidInput, or returns None when ``required`` is False (readers then see
    compacted predictions only).
    """
    if settings.prediction_log_dir:
        return Path(settings.prediction_log_dir).expanduser().resolve()
    if location.folder is not None:
        return location.folder / "prediction-journal"
    if location.db_url.startswith("sqlite"):
        return Path(location.db_url.split("///", 1)[-1]).resolve().parent / "prediction-journal"
    if not required:
        return None
    raise InvalidInput(
        "a database workspace has no folder for the prediction journal: set "
        "MODELWORKS_PREDICTION_LOG_DIR to a local folder of the serving machine",
        field="prediction_log_dir",
    )


@dataclass
class _Segment:
    path: Path
    fd: int
    stem: str
    size: int = 0


class PredictionLog:
    """Append predictions to a local journal; compact it into Parquet in the background.

    Args:
        ctx: the stores compacted files go to.
        journal_dir: a local folder (created if missing), shared by the server's workers.
        fsync_seconds: fsync the open segment this often; 0 fsyncs inside every append.
        compact_seconds: roll the open segment over and compact closed ones this often.
        segment_bytes: roll the open segment over once it is this large.
        background: run the fsync and compaction threads (False: call ``flush`` and
            ``compact`` yourself, as tests and batch jobs do).
        compact_in_process: compact in a separate child process instead of a thread of
            this one. Decoding and re-encoding a segment holds the interpreter lock for
            long stretches; a server uses this so compaction never stalls requests. The
            thread here then only rolls segments over; ``close`` still compacts the rest.
        writer: False for a compactor that appends nothing (opens no segment).
    """

    def __init__(self, ctx: Context, journal_dir: str | os.PathLike[str], *,
                 fsync_seconds: float = 1.0, compact_seconds: float = 30.0,
                 segment_bytes: int = 64 * MiB, background: bool = True,
                 compact_in_process: bool = False, writer: bool = True) -> None:
        if fsync_seconds < 0:
            raise InvalidInput("fsync_seconds must be >= 0", field="fsync_seconds")
        if compact_seconds <= 0:
            raise InvalidInput("compact_seconds must be > 0", field="compact_seconds")
        if segment_bytes <= 0:
            raise InvalidInput("segment_bytes must be > 0", field="segment_bytes")
        self.ctx = ctx
        self.journal_dir = Path(journal_dir)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.fsync_seconds = fsync_seconds
        self.compact_seconds = compact_seconds
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()  # the hot path: one write, a roll-over now and then
        self._compact_lock = threading.Lock()
        self._stop = threading.Event()
        self._dirty = False
        self._appended = 0
        # Uncompacted segments: stem -> [records, time of the oldest record] (for lag).
        self._pending: dict[str, list[float]] = {}
        self._seg: _Segment | None = None
        self._claim_orphans()
        for path in self.journal_dir.glob(f"*{CLOSED}"):
            self._register_existing(path)
        self._seg = self._open_segment() if writer else None
        self._threads: list[threading.Thread] = []
        self._child: Any = None
        self._child_stop: Any = None
        if background and compact_in_process:
            self._start_compactor()
        if background:
            if fsync_seconds > 0:
                self._threads.append(threading.Thread(
                    target=self._fsync_loop, name="mw-prediction-log-fsync", daemon=True))
            self._threads.append(threading.Thread(
                target=self._compact_loop, name="mw-prediction-log-compact", daemon=True))
            for thread in self._threads:
                thread.start()

    # -- the hot path -------------------------------------------------------------------

    def append_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Journal one request's rows (plain dicts with PredictionRecord's fields).

        No validation: the server builds these dicts itself, and this runs before every
        response. Values JSON lacks (numpy scalars, dates) are converted, anything else
        logged as its text. Thread-safe; one ``write()`` per call.
        """
        if not rows:
            return
        data = encode_rows(rows)  # outside the lock: serialising is the costly part
        now = time.time()
        with self._lock:
            seg = self._seg
            if seg is None:
                raise RuntimeError("the prediction log is closed")
            self._write(seg, data)
            stats = self._pending.get(seg.stem)
            if stats is None:
                self._pending[seg.stem] = [len(rows), now]
            else:
                stats[0] += len(rows)
            self._appended += len(rows)
            if self.fsync_seconds == 0:
                os.fsync(seg.fd)
            else:
                self._dirty = True
            if seg.size >= self.segment_bytes:
                self._roll_locked()

    def append(self, records: Sequence[PredictionRecord]) -> None:
        """Journal one request's records (see ``append_rows``, which skips ``model_dump``)."""
        self.append_rows([r.model_dump() for r in records])

    @staticmethod
    def _write(seg: _Segment, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(seg.fd, view):]
        except OSError:
            # A partial line (disk full) would swallow the next request's first line: cut it.
            with suppress(OSError):
                os.ftruncate(seg.fd, seg.size)
            raise
        seg.size += len(data)

    # -- lifecycle ----------------------------------------------------------------------

    def flush(self) -> None:
        """fsync what has been appended (machine-crash safe once this returns)."""
        with self._lock:
            if self._seg is None or not self._dirty:
                return
            self._dirty = False
            fd = os.dup(self._seg.fd)  # fsync outside the lock: appends go on meanwhile
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Stop the threads, close the open segment and compact everything left.

        If the stores are unreachable the segments stay in the journal (logged) and the
        next process to open it compacts them.
        """
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._stop_compactor()
        with self._lock:
            seg, self._seg = self._seg, None
            if seg is not None:
                self._close_segment(seg)
        try:
            self.compact()
        except ModelworksError as exc:
            logger.warning("prediction log: compaction at close failed (%s); the journal in "
                           "%s is compacted on the next start", exc, self.journal_dir)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- metrics ------------------------------------------------------------------------

    @property
    def appended_total(self) -> int:
        """Records appended by this instance."""
        return self._appended

    @property
    def lag_records(self) -> int:
        """Records in the journal not yet compacted (this process's and recovered ones)."""
        with self._lock:
            return int(sum(stats[0] for stats in self._pending.values()))

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest record not yet compacted (0 when there is none)."""
        with self._lock:
            oldest = min((stats[1] for stats in self._pending.values() if stats[0]),
                         default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    # -- segments -----------------------------------------------------------------------

    @contextmanager
    def _dir_lock(self) -> Iterator[None]:
        """Serialises segment creation with orphan claims across processes and threads."""
        fd = os.open(self.journal_dir / _LOCK_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC,
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _open_segment(self) -> _Segment:
        stem = f"{time.time_ns() // 1000:016d}-{os.getpid()}-{os.urandom(4).hex()}"
        path = self.journal_dir / f"{stem}{OPEN}"
        with self._dir_lock():  # created and locked before a claimer can see it unlocked
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                         | os.O_CLOEXEC, 0o640)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_dir(self.journal_dir)  # the new name survives a machine crash
        return _Segment(path=path, fd=fd, stem=stem)

    def _close_segment(self, seg: _Segment) -> None:
        try:
            if seg.size:
                os.fsync(seg.fd)
                os.rename(seg.path, seg.path.with_suffix(CLOSED))
            else:
                os.unlink(seg.path)
        finally:
            os.close(seg.fd)  # releases its lock

    def _roll_locked(self) -> None:
        seg = self._seg
        assert seg is not None
        self._seg = self._open_segment()
        self._close_segment(seg)

    def _claim_orphans(self) -> None:
        """Close ``.open`` segments whose writer died (nobody holds their lock)."""
        claimed = []
        with self._dir_lock():
            for path in sorted(self.journal_dir.glob(f"*{OPEN}")):
                if self._seg is not None and path == self._seg.path:
                    continue
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.rename(path, path.with_suffix(CLOSED))
                except (BlockingIOError, FileNotFoundError):
                    continue  # a live writer's segment, or claimed by another process
                finally:
                    os.close(fd)
                claimed.append(path.with_suffix(CLOSED))
                logger.info("prediction log: recovered segment %s of a stopped process",
                            path.name)
        for path in claimed:  # after the directory lock: appends take the two the other way
            self._register_existing(path)

    def _register_existing(self, path: Path) -> None:
        """Count a segment found on disk into the lag figures."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        first = data.split(b"\n", 1)[0]
        try:
            oldest = float(loads(first)["ts"])
        except (ValueError, KeyError, TypeError):
            oldest = time.time()
        with self._lock:
            self._pending.setdefault(path.name[: -len(CLOSED)], [data.count(b"\n"), oldest])

    # -- background threads -------------------------------------------------------------

    def _fsync_loop(self) -> None:
        while not self._stop.wait(self.fsync_seconds):
            try:
                self.flush()
            except OSError:
                logger.exception("prediction log: fsync failed")

    def _compact_loop(self) -> None:
        first = True
        while first or not self._stop.wait(self.compact_seconds):
            try:
                if self._child is not None:  # the child compacts: only close segments here
                    if not first:
                        with self._lock:
                            if self._seg is not None and self._seg.size:
                                self._roll_locked()
                    self._prune_pending()
                else:
                    self.compact(rollover=not first)
            except Exception:  # the thread must outlive a store outage; retried next round
                logger.exception("prediction log: compaction failed; retrying later")
            first = False

    def _start_compactor(self) -> None:
        import multiprocessing

        spawn = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._child_stop = spawn.Event()
        self._child = spawn.Process(
            target=_compactor_main, name="mw-prediction-log-compactor", daemon=True,
            args=(self.ctx.db.url, self.ctx.artifacts.url,
                  self.ctx.artifacts.storage_options,
                  str(self.journal_dir), self.compact_seconds, self._child_stop))
        self._child.start()

    def _stop_compactor(self) -> None:
        if self._child is None:
            return
        self._child_stop.set()
        self._child.join(timeout=max(30.0, self.compact_seconds))
        if self._child.is_alive():
            self._child.terminate()
            self._child.join(timeout=5)
        self._child.close()
        self._child = None
        self._child_stop = None  # frees (unlinks) the event's semaphores now

    # -- compaction ---------------------------------------------------------------------

    def compact(self, *, rollover: bool = False) -> int:
        """Compact closed segments now (``rollover``: close the open one first); rows stored.

        Recovers segments of dead processes first. Rows of a segment indexed before (a crash
        after the commit) are not stored again and not counted.
        """
        with self._compact_lock:
            if rollover:
                with self._lock:
                    if self._seg is not None and self._seg.size:
                        self._roll_locked()
            self._claim_orphans()
            total = 0
            for path in sorted(self.journal_dir.glob(f"*{CLOSED}")):
                total += self._compact_segment(path)
            self._prune_pending()
            return total

    def _compact_segment(self, path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0  # another process compacted it
        stem = path.name[: -len(CLOSED)]
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # being compacted elsewhere
            if os.fstat(fd).st_nlink == 0:
                return 0  # compacted and removed while we waited
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read()
            rows, _ = parse_lines(data, source=path.name)
            stored = self._store(stem, rows) if rows else 0
            os.unlink(path)
        finally:
            os.close(fd)
        with self._lock:
            self._pending.pop(stem, None)
        return stored

    def _store(self, stem: str, rows: list[dict[str, Any]]) -> int:
        """One Parquet file per (model, UTC day), indexed in one transaction."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault((str(row["model"]), utc_day(float(row["ts"]))), []).append(row)
        keys = [f"{stem}/{model}/{day}" for model, day in groups]
        pf = prediction_files
        with self.ctx.db.read() as conn:
            if conn.execute(select(pf.c.id).where(pf.c.segment.in_(keys)).limit(1)).first():
                return 0  # compacted before a crash kept the segment from being deleted
        entries = []
        now = utcnow()
        for (model, day), group in sorted(groups.items()):
            table = table_from_rows(group)
            ref = self.ctx.artifacts.put_bytes(to_parquet(table))
            micros = table.column("ts").cast("int64").to_pylist()
            entries.append({
                "model": model, "day": day, "artifact_sha256": ref.sha256, "rows": len(group),
                "min_ts": _EPOCH + timedelta(microseconds=min(micros)),
                "max_ts": _EPOCH + timedelta(microseconds=max(micros)),
                "segment": f"{stem}/{model}/{day}", "created_at": now,
            })
        try:
            with self.ctx.db.write() as conn:
                conn.execute(insert(pf), entries)
        except SAIntegrityError:
            return 0  # another process indexed the same segment a moment ago
        return len(rows)

    def _prune_pending(self) -> None:
        """Forget segments another process compacted."""
        with self._lock:
            current = self._seg.stem if self._seg is not None else None
            for stem in list(self._pending):
                if stem != current and not (self.journal_dir / f"{stem}{CLOSED}").exists() \
                        and not (self.journal_dir / f"{stem}{OPEN}").exists():
                    del self._pending[stem]


def _compactor_main(db_url: str, artifacts: str, storage_options: dict[str, Any],
                    journal_dir: str, seconds: float, stop: Any) -> None:
    """The child process behind ``compact_in_process``: compact closed segments until told
    to stop (then once more)."""
    from ..context import Context
    from ..store.artifacts import ArtifactStore
    from ..store.database import Database

    ctx = Context(db=Database(db_url), artifacts=ArtifactStore(
        artifacts, storage_options=storage_options or None), actor="prediction-log")
    log = PredictionLog(ctx, journal_dir, background=False, writer=False)
    while True:
        stopping = stop.wait(seconds)
        try:
            log.compact()
        except Exception:
            logger.exception("prediction log compactor: compaction failed; retrying later")
        if stopping:
            break
    ctx.db.dispose()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
