"""The process-pool executor: one machine, every core, no shared interpreter state."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from .base import Executor

if TYPE_CHECKING:
    from ...config import Settings

__all__ = ["ProcessExecutor"]


class ProcessExecutor(Executor):
    """A :class:`~concurrent.futures.ProcessPoolExecutor` with ``workers`` processes.

    Processes are *spawned*, never forked: the driver holds database connections, SQLite
    handles and threads (the metric writer) that a forked child would inherit half-copied.
    The pool starts on the first ``submit``, so creating the executor costs nothing.
    """

    name = "processes"

    def __init__(self, *, workers: int | None = None, settings: Settings | None = None) -> None:
        super().__init__(workers=workers, settings=settings)
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._get_pool().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None
