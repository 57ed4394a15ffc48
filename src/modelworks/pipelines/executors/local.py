"""The in-process executor: runs each call at submit, in the caller's thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .base import Executor

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Runs ``fn`` immediately and returns a completed future (one worker, no pickling).

    The default: no start-up cost, and a debugger or a breakpoint in a step just works.
    """

    name = "local"

    @property
    def workers(self) -> int:
        return 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # delivered on the future, as a pool does
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future
