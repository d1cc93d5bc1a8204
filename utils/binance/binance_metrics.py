"""Request counters and latency per endpoint. Recording is a few dict operations on the hot
path; percentiles are computed only when a snapshot is asked for."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ("RequestMetrics", "render_prometheus")

_SAMPLES: Final = 1024


@dataclass(slots=True)
class _EndpointStats:
    requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
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

    def record_cache(self, endpoint: str, *, hit: bool) -> None:
        stats = self._endpoints.get(endpoint)
        if stats is None:
            stats = self._endpoints[endpoint] = _EndpointStats()
        if hit:
            stats.cache_hits += 1
        else:
            stats.cache_misses += 1

    def record_retry(self) -> None:
        self.retries += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"total_requests", "total_errors", "retries", "endpoints": {key: {...}}}``;
        an endpoint row has ``requests`` (sent to Binance), ``cache_hits``, ``cache_misses``,
        ``errors`` (by Binance code or HTTP status, 0 for transport errors) and ``p50_ms`` /
        ``p95_ms`` / ``p99_ms`` over its last 1024 calls."""
        endpoints = {}
        for key, stats in self._endpoints.items():
            ordered = sorted(stats.latencies_ms)
            endpoints[key] = {
                "requests": stats.requests,
                "cache_hits": stats.cache_hits,
                "cache_misses": stats.cache_misses,
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


def render_prometheus(metrics: dict[str, Any]) -> str:
    """The client's ``get_metrics()`` in Prometheus' text exposition format."""
    http = metrics["http"]
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("binance_requests_total", "counter", "Requests sent to Binance, by endpoint.")
    for key, row in http["endpoints"].items():
        lines.append(f'binance_requests_total{{endpoint="{_label(key)}"}} {row["requests"]}')
    family("binance_errors_total", "counter", "Failed requests by endpoint and Binance code.")
    for key, row in http["endpoints"].items():
        for code, count in row["errors"].items():
            lines.append(f'binance_errors_total{{endpoint="{_label(key)}",code="{code}"}} {count}')
    family("binance_request_latency_ms", "summary", "Latency of the last 1024 calls.")
    for key, row in http["endpoints"].items():
        for q, field_name in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
            lines.append(
                f'binance_request_latency_ms{{endpoint="{_label(key)}",quantile="{q}"}} '
                f"{row[field_name]}"
            )
    family("binance_cache_hits_total", "counter", "Answers served from the cache.")
    family("binance_cache_misses_total", "counter", "Cacheable calls that went upstream.")
    for key, row in http["endpoints"].items():
        lines.append(f'binance_cache_hits_total{{endpoint="{_label(key)}"}} {row["cache_hits"]}')
        lines.append(
            f'binance_cache_misses_total{{endpoint="{_label(key)}"}} {row["cache_misses"]}'
        )
    family("binance_retries_total", "counter", "Requests sent again after a failure.")
    lines.append(f"binance_retries_total {http['retries']}")
    family("binance_pool_used", "gauge", "Weight or orders used in the current window.")
    family("binance_pool_limit", "gauge", "The window's limit.")
    for pool in metrics["pools"]:
        label = _label(pool["pool"])
        lines.append(f'binance_pool_used{{pool="{label}"}} {pool["used"]}')
        lines.append(f'binance_pool_limit{{pool="{label}"}} {pool["limit"]}')
    family("binance_breaker_open", "gauge", "1 while a market's circuit breaker is not closed.")
    for market, state in metrics["breakers"].items():
        lines.append(
            f'binance_breaker_open{{market="{market}",state="{state}"}} '
            f"{0 if state == 'closed' else 1}"
        )
    for key, value in metrics.get("ws", {}).items():
        gauge = key in ("connections", "streams")
        name = f"binance_ws_{key}" if gauge else f"binance_ws_{key}_total"
        family(name, "gauge" if gauge else "counter", f"WebSocket streams: {key}.")
        lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
