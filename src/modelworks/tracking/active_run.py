"""The handle a user logs through inside ``with ws.start_run(...) as run:``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from ..context import Context
from ..errors import Conflict
from ..records import ArtifactEntry, DatasetVersion, RunRecord
from . import runs as _runs
from .metrics import MetricWriter, Point, check_key, check_step, check_value, write_points

__all__ = ["ActiveRun"]


class ActiveRun:
    """A RUNNING run: params, tags, metrics, artifacts and datasets go through here.

    Leaving the ``with`` block flushes the run's metric points and ends it: FINISHED, or
    FAILED with the error recorded if an exception escaped (the exception still propagates).
    """

    def __init__(self, ctx: Context, writer: MetricWriter, run_id: str, experiment: str) -> None:
        self._ctx = ctx
        self._writer = writer
        self.id = run_id
        self.experiment = experiment
        self._ended = False
        self._keys: set[str] = set()

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, experiment={self.experiment!r})"

    # -- params and tags ------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        self._live()
        _runs.log_params(self._ctx, self.id, {key: value})

    def log_params(self, values: Mapping[str, Any]) -> None:
        self._live()
        _runs.log_params(self._ctx, self.id, values)

    def set_tag(self, key: str, value: Any) -> None:
        self._live()
        _runs.set_tags(self._ctx, self.id, {key: value})

    def set_tags(self, values: Mapping[str, Any]) -> None:
        self._live()
        _runs.set_tags(self._ctx, self.id, values)

    # -- metrics --------------------------------------------------------------------------

    def _point(self, key: str, value: Any, step: int, ts: float) -> Point:
        if key not in self._keys:
            check_key(key)
            self._keys.add(key)
        return (self.id, key, check_value(key, value), step, ts)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Queue one point; it is written within ``interval`` seconds or at ``flush()``."""
        self._live()
        self._writer.add(self._point(key, value, check_step(step), time.time()))

    def log_metrics(self, values: Mapping[str, float], step: int = 0) -> None:
        self._live()
        st, ts = check_step(step), time.time()
        self._writer.extend([self._point(k, v, st, ts) for k, v in values.items()])

    def log_batch(
        self,
        *,
        metrics: Iterable[tuple[str, float, int] | tuple[str, float, int, float]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Params, tags and many points at once, written before it returns.

        ``metrics`` holds ``(key, value, step)`` or ``(key, value, step, timestamp)`` tuples.
        """
        self._live()
        now = time.time()
        points = [
            self._point(m[0], m[1], check_step(m[2]), float(m[3]) if len(m) > 3 else now)
            for m in metrics
        ]
        with self._ctx.db.write() as conn:  # all of it, or none of it
            if params:
                _runs.log_params(self._ctx, self.id, params, conn=conn)
            if tags:
                _runs.set_tags(self._ctx, self.id, tags, conn=conn)
            if points:
                if not params and not tags:  # those calls already checked the run
                    _runs.require_running(conn, self.id)
                write_points(self._ctx.db, conn, points)

    def flush(self) -> None:
        self._writer.flush()

    # -- artifacts and datasets -----------------------------------------------------------

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        """Store a file or a folder (content-addressed) under this run."""
        self._live()
        return _runs.log_artifact(self._ctx, self.id, local_path, artifact_path)

    def use_dataset(self, version: DatasetVersion, role: str = "train") -> None:
        """Record that this run read ``version`` (a lineage edge run -> dataset version)."""
        self._live()
        _runs.use_dataset(self._ctx, self.id, version, role)

    # -- lifecycle ------------------------------------------------------------------------

    def end(self, status: str = "FINISHED", error: BaseException | str | None = None) -> None:
        if self._ended:
            return
        # The run's last points and its end commit together: one transaction, not two.
        self._writer.flush_then(
            lambda conn: _runs.end_run(self._ctx, self.id, status=status,  # type: ignore[arg-type]
                                       error=error, conn=conn)
        )
        self._ended = True

    def record(self) -> RunRecord:
        with self._ctx.db.read() as conn:
            return _runs.get_run(conn, self.id)

    def _live(self) -> None:
        if self._ended:
            raise Conflict(f"run {self.id} has ended: a finished run cannot be changed")

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("FINISHED")
        else:
            self.end("FAILED", error=exc)
