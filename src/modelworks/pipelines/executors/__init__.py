"""Executors: one interface, three places to run — in-process, a process pool, Ray.

>>> with get_executor("processes", workers=2) as ex:
...     ex.submit(pow, 2, 10).result()
1024
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput
from .base import Executor, default_workers

if TYPE_CHECKING:
    from ...config import Settings

__all__ = ["EXECUTORS", "Executor", "default_workers", "get_executor"]

#: Executor name -> "module:class", imported on use (Ray is an optional extra).
EXECUTORS: dict[str, str] = {
    "local": "modelworks.pipelines.executors.local:LocalExecutor",
    "processes": "modelworks.pipelines.executors.processes:ProcessExecutor",
    "ray": "modelworks.pipelines.executors.ray:RayExecutor",
}


class _Borrowed(Executor):
    """A caller's executor used inside a ``with`` block it must not shut down."""

    def __init__(self, inner: Executor) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # per-instance: the inner one's

    @property
    def workers(self) -> int:
        return self.inner.workers

    @property
    def remote(self) -> bool:
        return self.inner.remote

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self.inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True) -> None:
        """The owner shuts the executor down, not the borrower."""


def get_executor(executor: str | Executor = "local", *, workers: int | None = None,
                 settings: Settings | None = None) -> Executor:
    """The executor named ``executor`` (``local``, ``processes``, ``ray``), ready to use.

    An :class:`Executor` instance is returned wrapped so that leaving a ``with`` block does
    not shut it down — its owner does that — and ``workers`` must then be left unset.

    Raises:
        InvalidInput: an unknown name (the message lists the valid ones), a bad ``workers``,
            Ray not installed, or an unreachable Ray address.
    """
    if isinstance(executor, Executor):
        if workers is not None:
            raise InvalidInput("workers is set by the executor instance itself; leave it unset",
                               field="workers")
        return executor if isinstance(executor, _Borrowed) else _Borrowed(executor)
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise InvalidInput(f"unknown executor {executor!r}; expected one of "
                           f"{', '.join(EXECUTORS)} or an Executor instance", field="executor")
    module, _, cls = EXECUTORS[executor].partition(":")
    factory: type[Executor] = getattr(import_module(module), cls)
    return factory(workers=workers, settings=settings)
