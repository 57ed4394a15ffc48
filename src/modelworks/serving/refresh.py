"""Names resolved through the database, served from memory and refreshed behind the traffic.

An alias, a model's latest version or a deployment is looked up once, then answered from
memory. Once an entry is older than ``ttl`` the next request still gets it, and triggers a
refresh on a background thread; an entry older than ``max_stale`` (idle for a while) is
looked up again before answering. So the database stays off the request path, and a moved
alias is served within about ``ttl`` under traffic and at once after idleness. A refresh
that fails (the alias was deleted) drops the entry, and the next request sees the error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["Refreshing"]

log = logging.getLogger("modelworks.serving")
V = TypeVar("V")


class Refreshing(Generic[V]):
    def __init__(self, ttl: float, *, max_stale: float | None = None) -> None:
        self.ttl = ttl
        self.max_stale = max(5 * ttl, 10.0) if max_stale is None else max_stale
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def get(self, key: Hashable, fetch: Callable[[], V]) -> V:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None:
            age = now - hit[0]
            if age < self.ttl:
                return hit[1]
            if age < self.max_stale:
                self._refresh_later(key, fetch)
                return hit[1]
        value = fetch()
        self._entries[key] = (time.monotonic(), value)
        return value

    def _refresh_later(self, key: Hashable, fetch: Callable[[], V]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="mw-serving-refresh")
        self._pool.submit(self._refresh, key, fetch)

    def _refresh(self, key: Hashable, fetch: Callable[[], V]) -> None:
        try:
            self._entries[key] = (time.monotonic(), fetch())
        except Exception:  # deleted or unreachable: forget it, the next request will say
            self._entries.pop(key, None)
            log.debug("refresh of %r failed", key, exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
