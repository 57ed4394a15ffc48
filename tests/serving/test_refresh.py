"""Resolved names served from memory, refreshed behind the traffic."""

from __future__ import annotations

import time

import pytest

from modelworks.errors import NotFound
from modelworks.serving.refresh import Refreshing


def test_stale_answer_then_background_refresh_then_sync_after_idle() -> None:
    source = {"v": 1}
    calls = []

    def fetch() -> int:
        calls.append(source["v"])
        return source["v"]

    cache: Refreshing[int] = Refreshing(0.05, max_stale=0.5)
    assert cache.get("a", fetch) == 1
    source["v"] = 2
    assert cache.get("a", fetch) == 1  # fresh: no lookup
    time.sleep(0.08)
    assert cache.get("a", fetch) == 1  # stale: answered at once, refreshed behind
    deadline = time.monotonic() + 5
    while cache.get("a", fetch) != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("a", fetch) == 2
    source["v"] = 3
    time.sleep(0.6)  # idle past max_stale: looked up before answering
    assert cache.get("a", fetch) == 3
    cache.close()


def test_a_failed_refresh_forgets_the_entry() -> None:
    state = {"gone": False}

    def fetch() -> int:
        if state["gone"]:
            raise NotFound("alias deleted")
        return 1

    cache: Refreshing[int] = Refreshing(0.02, max_stale=5)
    assert cache.get("k", fetch) == 1
    state["gone"] = True
    time.sleep(0.05)
    cache.get("k", fetch)  # stale answer; the refresh fails behind it
    deadline = time.monotonic() + 5
    while "k" in cache._entries and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(NotFound):
        cache.get("k", fetch)
    cache.close()
