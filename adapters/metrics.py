"""Prometheus metrics of one Stagekeeper process (prometheus-client, one registry per Runtime).

Counted where things happen: HTTP commands and their latency (api/observability.py), vCenter calls
and faults by method (a wrapper around the driver), process-manager steps, directory lookups, events
written by type (lease expiries, failures...). Measured when scraped: read-model lag per
projection, the process manager's queue (events it has not handled yet), open progress streams.
Label values are bounded: route templates, driver method names, event types, outcome classes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "stagekeeper_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "stagekeeper_http_request_seconds", "HTTP request latency by method and route", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.commands = Counter(
            "stagekeeper_commands",
            "Commands (POST/PUT/PATCH/DELETE) by route and outcome",
            ["command", "outcome"],
            registry=r,
        )
        self.command_seconds = Histogram(
            "stagekeeper_command_seconds", "Command latency by route", ["command"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.vcenter_calls = Counter(
            "stagekeeper_vcenter_calls", "vCenter driver calls by method", ["method"], registry=r
        )
        self.vcenter_faults = Counter(
            "stagekeeper_vcenter_faults",
            "vCenter driver calls that raised, by method and error",
            ["method", "error"],
            registry=r,
        )
        self.vcenter_seconds = Histogram(
            "stagekeeper_vcenter_call_seconds", "vCenter driver call duration by method", ["method"],
            buckets=TASK_BUCKETS, registry=r,
        )  # fmt: skip
        self.process_steps = Histogram(
            "stagekeeper_process_step_seconds", "Process manager: time to handle one event, by event type", ["event"],
            buckets=TASK_BUCKETS, registry=r,
        )  # fmt: skip
        self.process_failures = Counter(
            "stagekeeper_process_step_failures",
            "Process manager steps that raised, by event type",
            ["event"],
            registry=r,
        )
        self.events = Counter(
            "stagekeeper_events_written", "Events written by this process, by type", ["type"], registry=r
        )
        self.directory_lookups = Counter(
            "stagekeeper_directory_lookups",
            "Directory (LDAP) calls by operation and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.streams = Gauge("stagekeeper_progress_streams_open", "Progress streams open now", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def watch(self, collector: Collector) -> None:
        self.registry.register(collector)

    def count_events(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self.events.labels(topic.removeprefix("stagekeeper:")).inc()


class Lag(Collector):
    """Read-model lag and the process manager's queue, measured at scrape time."""

    def __init__(
        self, head: Callable[[], int], projections: Callable[[], dict[str, int]], process: Callable[[], int]
    ) -> None:
        self._head = head
        self._projections = projections
        self._process = process

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            head = self._head()
            positions = self._projections()
            process = self._process()
        except Exception:
            return
        lag = GaugeMetricFamily(
            "stagekeeper_read_model_lag_events",
            "Events written but not yet applied, per read model",
            labels=["projection"],
        )
        for name, position in sorted(positions.items()):
            lag.add_metric([name], max(head - position, 0))
        yield lag
        yield GaugeMetricFamily("stagekeeper_event_store_head", "Position of the last event in the store", value=head)
        yield GaugeMetricFamily(
            "stagekeeper_process_manager_queue_events",
            "Events after the process manager's position (some need no action)",
            value=max(head - process, 0),
        )


class InstrumentedDriver:
    """A vCenter driver whose every method call is counted and timed (faults by exception type)."""

    def __init__(self, driver: Any, metrics: Metrics) -> None:
        self._driver = driver
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._driver, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute
        metrics = self._metrics

        def counted(*args: Any, **kwargs: Any) -> Any:
            metrics.vcenter_calls.labels(name).inc()
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            except Exception as error:
                metrics.vcenter_faults.labels(name, type(error).__name__).inc()
                raise
            finally:
                metrics.vcenter_seconds.labels(name).observe(time.perf_counter() - started)

        return counted


class InstrumentedDirectory:
    """The directory port, with its lookups counted by operation and outcome."""

    def __init__(self, directory: Any, metrics: Metrics) -> None:
        self._directory = directory
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._directory, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute
        metrics = self._metrics

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                result = attribute(*args, **kwargs)
            except Exception as error:
                metrics.directory_lookups.labels(name, type(error).__name__).inc()
                raise
            metrics.directory_lookups.labels(name, "ok" if result is not None else "not-found").inc()
            return result

        return counted
