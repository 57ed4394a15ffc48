"""The executor interface: where pipeline steps, AutoML trials and ``train_many`` chunks run.

An executor takes a picklable top-level function and its (picklable) arguments and returns a
:class:`concurrent.futures.Future`. The caller — always the driver process — collects the
results and does every database write itself, so executors never need a workspace connection.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import InvalidInput

if TYPE_CHECKING:
    from ...config import Settings

__all__ = ["Executor", "default_workers"]


def default_workers() -> int:
    """The CPUs this process may use (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Executor(ABC):
    """Runs functions, possibly elsewhere, and hands back futures.

    Contract (checked by one test over every backend):

    * ``submit(fn, *args, **kwargs)`` returns a :class:`~concurrent.futures.Future` whose
      result is ``fn(*args, **kwargs)``; ``fn`` must be a top-level (importable) function and
      the arguments and result picklable, except on ``local``, which runs in-process.
    * An exception raised by ``fn`` is set on the future with its original type and message.
    * At most ``workers`` calls run at the same time.
    * ``shutdown()`` waits for running calls and releases the executor's resources; an
      executor is a context manager that shuts down on exit.
    """

    name: ClassVar[str]

    def __init__(self, *, workers: int | None = None, settings: Settings | None = None) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise InvalidInput(f"workers must be a positive integer, got {workers!r}",
                               field="workers")
        self._workers = workers
        self._settings = settings

    @property
    def workers(self) -> int:
        """How many calls may run at the same time."""
        return self._workers or default_workers()

    @property
    def remote(self) -> bool:
        """True when calls may run on other machines (they cannot see this one's files)."""
        return False

    @abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)``; the future holds its result or exception."""

    def map(self, fn: Callable[..., Any], *iterables: Any) -> list[Future[Any]]:
        """``submit`` once per item (zipped like the built-in ``map``), in order."""
        return [self.submit(fn, *args) for args in zip(*iterables, strict=False)]

    def shutdown(self, wait: bool = True) -> None:  # noqa: B027 - a no-op default is the point
        """Release the executor's resources (a no-op where there are none)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} workers={self.workers}>"
