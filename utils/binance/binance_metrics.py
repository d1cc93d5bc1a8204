"""Request counters and latency per endpoint. Recording is a few dict operations on the hot
path; percentiles are computed only when a snapshot is asked for."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ("RequestMetrics",)

_SAMPLES: Final = 1024


@dataclass(slots=True)
class _EndpointStats:
    requests: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))


class RequestMetrics:
    """What the client sent and how it went; ``snapshot()`` is a plain dict."""

    def __init__(self) -> None:
        self.total_requests = 0
        self.total_errors = 0
        self.retries = 0
        self._endpoints: dict[str, _EndpointStats] = {}

    def record(self, endpoint: str, latency_ms: float, error_code: int | None = None) -> None:
        stats = self._endpoints.get(endpoint)
        if stats is None:
            stats = self._endpoints[endpoint] = _EndpointStats()
        stats.requests += 1
        stats.latencies_ms.append(latency_ms)
        self.total_requests += 1
        if error_code is not None:
            stats.errors[error_code] += 1
            self.total_errors += 1

    def record_retry(self) -> None:
        self.retries += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"total_requests", "total_errors", "retries", "endpoints": {key: {...}}}``;
        an endpoint row has ``requests``, ``errors`` (by Binance code or HTTP status, 0 for
        transport errors) and ``p50_ms`` / ``p95_ms`` / ``p99_ms`` over its last 1024 calls."""
        endpoints = {}
        for key, stats in self._endpoints.items():
            ordered = sorted(stats.latencies_ms)
            endpoints[key] = {
                "requests": stats.requests,
                "errors": dict(stats.errors),
                "p50_ms": _percentile(ordered, 0.50),
                "p95_ms": _percentile(ordered, 0.95),
                "p99_ms": _percentile(ordered, 0.99),
            }
        return {
            "total_requests": self.total_requests,
            "total_errors": self.total_errors,
            "retries": self.retries,
            "endpoints": endpoints,
        }


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)
