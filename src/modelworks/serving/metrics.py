"""Prometheus metrics of one serving process (text format at ``GET /metrics``).

Label children are looked up once per (route, model, version, code) and kept, so a request
costs two dictionary lookups and two increments, not prometheus_client's label parsing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = ["ServingMetrics"]

# Latency buckets in seconds: sub-millisecond resolution where a one-row request lives.
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Gauges:
    """Read at scrape time from the cache and the prediction log."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # names are known only at scrape time; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, value in self._read().items():
            family = GaugeMetricFamily(f"modelworks_{name}", name.replace("_", " "))
            family.add_metric([], value)
            yield family


class ServingMetrics:
    def __init__(self, read_gauges: Callable[[], dict[str, float]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "modelworks_requests", "Prediction requests by route, model, version and status.",
            ["route", "model", "version", "code"], registry=self.registry)
        self._errors = Counter(
            "modelworks_request_errors", "Requests answered with an error status.",
            ["route", "model", "code"], registry=self.registry)
        self._latency = Histogram(
            "modelworks_request_latency_seconds", "Time to answer a prediction request.",
            ["model", "version"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_Gauges(read_gauges))  # type: ignore[arg-type]
        self._children: dict[tuple[Any, ...], Any] = {}

    def observe(self, route: str, model: str, version: str, code: int, seconds: float) -> None:
        key = (route, model, version, code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self._requests.labels(route, model, version, str(code)),
                self._latency.labels(model, version),
                self._errors.labels(route, model, str(code)) if code >= 400 else None)
        child[0].inc()
        child[1].observe(seconds)
        if child[2] is not None:
            child[2].inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
