"""The Ray executor: a local Ray instance, or a cluster at ``MODELWORKS_RAY_ADDRESS``.

One Ray connection per process (Ray's own rule): the first ``RayExecutor`` connects or starts
a local instance, later ones reuse it, and Ray shuts it down at interpreter exit. Each
executor caps its calls in flight at ``workers``, so ``workers=1`` and ``workers=2`` on the
same instance behave as one and two workers.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...errors import Conflict, InvalidInput
from .base import Executor, default_workers

if TYPE_CHECKING:
    from ...config import Settings

__all__ = ["RayExecutor", "connect_ray"]

_PROBE_TIMEOUT_S = 3.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOCAL = "local"
_EXISTING = "existing"
_lock = threading.Lock()
_connected: str | None = None  # the address this process's Ray connection is to, or "local"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:  # the optional extra
        raise InvalidInput("executor 'ray' needs Ray: pip install 'modelworks[ray]'",
                           field="executor") from None
    return ray


def _probe(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there.

    Ray itself retries an unreachable address for half a minute or more before a generic
    ``ConnectionError``; a TCP connect with a short timeout says the same in seconds.
    """
    if address == "auto":
        return  # Ray finds a running local cluster through its session files
    parts = urlsplit(address if "://" in address else f"ray-gcs://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise InvalidInput(f"Ray address {address!r} is not ray://HOST:PORT or HOST:PORT",
                           field="ray_address")
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise InvalidInput(f"Ray address {address} is unreachable ({exc.strerror or exc}); "
                           "check MODELWORKS_RAY_ADDRESS and that the cluster is up",
                           field="ray_address") from None


def _use_token(token: str) -> None:
    """Hand the cluster's token to Ray, which reads it only from its own environment."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    with contextlib.suppress(ImportError, AttributeError):  # refresh Ray's cached config
        from ray._raylet import (  # type: ignore[attr-defined]
            AuthenticationTokenLoader,
            Config,
        )

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def connect_ray(address: str | None = None, *, token: str | None = None,
                num_cpus: int | None = None, runtime_env: dict[str, Any] | None = None) -> str:
    """Connect this process to Ray once; returns what it is connected to.

    ``address`` is a ``ray://`` (Ray Client) or ``HOST:PORT`` (GCS) address; ``None`` starts a
    local instance with ``num_cpus`` CPUs (default: the CPUs this process may use), no
    dashboard and no worker logs on the driver's terminal. A later call with another address
    raises :class:`~modelworks.errors.Conflict`: Ray allows one connection per process.
    """
    global _connected
    ray = _import_ray()
    address = None if address in (None, "", _LOCAL) else address
    wanted = address or _LOCAL
    with _lock:
        # Ray started by the caller's own ray.init() is used as it is.
        connected = (_connected or _EXISTING) if ray.is_initialized() else None
        if address is not None and address != connected:
            _probe(address)  # an unreachable address says so, whatever else is connected
        if connected is not None:
            if address is not None and address != connected:
                raise Conflict(f"this process is already connected to Ray at {connected}; "
                               f"cannot also connect to {address}")
            return connected
        if address is not None and token:
            _use_token(token)
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR,
                                   "configure_logging": True}
        if runtime_env:
            options["runtime_env"] = runtime_env
        if address is None:
            # Workers import the caller's code from where the driver does (a notebook's or
            # a test's folder is not on their path otherwise).
            options.update(num_cpus=num_cpus or default_workers(), include_dashboard=False,
                           job_config=ray.job_config.JobConfig(code_search_path=_code_paths()))
        # Ray logs "token authentication is enabled" on every local start: noise here.
        auth_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
        level = auth_log.level
        auth_log.setLevel(logging.ERROR)
        try:
            # "local", not None: None would join a `ray start` cluster found on this machine
            ray.init(address=address or _LOCAL, **options)
        except ConnectionError as exc:  # the port answered (the probe passed), Ray did not
            raise InvalidInput(
                f"cannot connect to Ray at {address} ({exc}): check that it is the cluster's "
                "Ray address and, if the cluster uses token authentication, "
                "MODELWORKS_RAY_TOKEN", field="ray_address") from None
        finally:
            auth_log.setLevel(level)
        _connected = wanted
        return wanted


def _code_paths() -> list[str]:
    """The driver's import folders that are not Python's or the environment's own."""
    installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(path) and not any(path == p or path.startswith(p + os.sep)
                                           for p in installed) and path not in paths:
            paths.append(path)
    return paths


class RayExecutor(Executor):
    """Runs calls as Ray tasks (one CPU each), at most ``workers`` in flight.

    The address comes from ``address=``, else ``settings.ray_address``
    (``MODELWORKS_RAY_ADDRESS``), else a local instance is started. ``workers`` defaults to
    the CPUs of the cluster (of this machine for a local instance).
    """

    name = "ray"

    def __init__(self, *, workers: int | None = None, settings: Settings | None = None,
                 address: str | None = None, runtime_env: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(workers=workers, settings=settings)
        from ...config import Settings

        settings = settings or Settings()
        address = address or settings.ray_address
        token = settings.ray_token.get_secret_value() if settings.ray_token else None
        # A local instance gets at least this machine's CPUs, so a later executor asking for
        # more workers in the same process is not silently capped by the first one.
        cpus = max(workers or 0, default_workers())
        self.address = connect_ray(address, token=token, num_cpus=cpus,
                                   runtime_env=runtime_env)
        if self._workers is None:
            ray = _import_ray()
            self._workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote: dict[Callable[..., Any], Any] = {}
        self._state = threading.Condition()
        self._queue: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...],
                                 dict[str, Any]]] = deque()
        self._in_flight = 0

    @property
    def remote(self) -> bool:
        """A cluster; a local instance (ours, or the caller's one-node one) shares this
        machine."""
        if self.address == _EXISTING:
            ray = _import_ray()
            return bool(ray.util.client.ray.is_connected()) or len(ray.nodes()) > 1
        return self.address != _LOCAL

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._state:
            if self._in_flight >= self.workers:
                self._queue.append((future, fn, args, kwargs))
                return future
            self._in_flight += 1
        if not self._launch(future, fn, args, kwargs):
            self._next()
        return future

    def _launch(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> bool:
        """Start one call; False when it ended at once (cancelled, or not submittable)."""
        if not future.set_running_or_notify_cancel():  # cancelled while queued
            return False
        try:
            if inspect.isfunction(fn):
                remote = self._remote.get(fn)
                if remote is None:
                    remote = self._remote[fn] = _import_ray().remote(num_cpus=1)(fn)
                ref = remote.remote(*args, **kwargs)
            else:  # a builtin, a partial, a callable object: Ray remotes functions only
                ref = self._apply().remote(fn, args, kwargs)
        except BaseException as exc:  # e.g. an argument Ray cannot pickle
            future.set_exception(exc)
            return False
        ref.future().add_done_callback(lambda done: self._finish(future, done))
        return True

    def _apply(self) -> Any:
        remote = self._remote.get(_apply)
        if remote is None:
            remote = self._remote[_apply] = _import_ray().remote(num_cpus=1)(_apply)
        return remote

    def _finish(self, future: Future[Any], done: Future[Any]) -> None:
        try:
            future.set_result(done.result())
        except BaseException as exc:  # delivered on the future
            future.set_exception(_original(exc))
        self._next()

    def _next(self) -> None:
        """A slot is free: start queued calls until one is running (a loop, not recursion:
        thousands of queued calls may each end at once)."""
        while True:
            with self._state:
                if not self._queue:
                    self._in_flight -= 1
                    self._state.notify_all()
                    return
                item = self._queue.popleft()
            if self._launch(*item):
                return

    def shutdown(self, wait: bool = True) -> None:
        """Wait for calls in flight (or cancel the queued ones); Ray itself stays up."""
        with self._state:
            if not wait:
                while self._queue:
                    self._queue.popleft()[0].cancel()
                return
            while self._in_flight:
                self._state.wait()


def _apply(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


def _original(exc: BaseException) -> BaseException:
    """The exception the task raised, not Ray's wrapper; the remote traceback as a note."""
    cause = getattr(exc, "cause", None)
    ray = _import_ray()
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, BaseException):
        with contextlib.suppress(Exception):
            cause.add_note("raised in a Ray task: " + _ANSI.sub("", str(exc)).rstrip())
        return cause
    return exc
