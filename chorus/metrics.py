"""Prometheus metrics of the chat domain (supervisor and actor metrics live with them).

The metrics counted on every message's path (frames in and out, deliveries,
messages stored, the append's and the delivery's latency) are `LoopCounter`s
and `LoopHistogram`s: plain numbers the event loop adds to, read when
`/metrics` is scraped. A `prometheus_client` counter takes a lock and makes
four Python calls per `inc` (~4,800 instructions), a histogram ~9,100 per
`observe`; a lone message in a room of 2 paid five of the one and two of the
other (docs/benchmarks.md, "Issue #15, session 11").
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_bound_label: Callable[[float], str] = floatToGoString
"""A bucket's `le` as `prometheus_client` writes it ("0.001", "1.0", "+Inf")."""


class _LoopCount:
    """One series of a `LoopCounter`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (≥ 0, not checked: the hot path's callers count things)."""
        self.value += amount


class LoopCounter(_LoopCount):
    """A Prometheus counter (`<name>_total`) for the event loop's hot path.

    `inc` is one addition to a Python number: no lock, so **only one thread
    may count** (the thread that runs trio: a node runs one event loop);
    `/metrics`, rendered in another thread, only reads the numbers, which
    the GIL keeps whole. With `labelnames`, count through `labels(...)`,
    bound once (the child is kept, as `prometheus_client`'s are).
    """

    __slots__ = ("_children", "documentation", "labelnames", "name")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__()
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _LoopCount] = {}
        _LOOP_METRICS.append(self)

    def labels(self, *values: str) -> _LoopCount:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: labels {self.labelnames}, got {values}")
        return self._children.setdefault(values, _LoopCount())

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames:
            family.add_metric([], self.value)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        return family


class LoopHistogram:
    """A Prometheus histogram for the event loop's hot path (one thread, as `LoopCounter`).

    `observe` adds 1 to one bucket's count and the value to the sum; the
    buckets are made cumulative when scraped. A value equal to a bound falls
    in that bound's bucket (`le`), as in Prometheus. `labels` are constant:
    one series per `LoopHistogram`.
    """

    __slots__ = ("_bounds", "_counts", "_sum", "documentation", "labels", "name")

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = dict(labels or {})
        self._bounds = tuple(sorted(buckets))
        self._counts = [0] * (len(self._bounds) + 1)  # the last is +Inf's own
        self._sum = 0.0
        _LOOP_METRICS.append(self)

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def collect(self) -> Metric:
        counts, total = list(self._counts), self._sum
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip((*self._bounds, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append((_bound_label(bound), cumulative))
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))
        family.add_metric(list(self.labels.values()), buckets, total)
        return family


_LOOP_METRICS: list[LoopCounter | LoopHistogram] = []


class _LoopCollector(Collector):
    """Exports every `LoopCounter` and `LoopHistogram` when scraped."""

    def collect(self) -> Iterator[Metric]:
        for metric in list(_LOOP_METRICS):
            yield metric.collect()


MESSAGES_STORED = LoopCounter("chorus_messages_stored", "Messages stored (retries not counted).")
DELIVERIES = LoopCounter(
    "chorus_deliveries", "Message events queued to subscribers (fan-out deliveries)."
)
APPEND_SECONDS = LoopHistogram(
    # The one operation `chorus_store_seconds` has: a room's append of a batch.
    "chorus_store_seconds",
    "Store call latency.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    labels={"operation": "append_messages"},
)
DELIVERY_SECONDS = LoopHistogram(
    "chorus_delivery_seconds",
    "Time from a room starting to store a batch of posts to their events being queued to"
    " this node's subscribers (the store call plus the local fan-out).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONNECTION_CLOSES = Counter(
    "chorus_connection_closes",
    "WebSocket closes this server started, by close code (4004 slow consumer, 4005 rate"
    " limited, 1001 going away, ...: chorus.protocol.CloseCode).",
    ["code"],
)
RATE_LIMITED = Counter(
    "chorus_rate_limited",
    "WebSocket frames refused by a rate limit (answered rate_limited or closed with 4005;"
    " HTTP refusals are chorus_http_requests with status 429).",
)
BUS_DROPPED = Counter(
    "chorus_bus_dropped",
    "Bus publications dropped: Redis away or failing (a batch failed), or the queue full.",
)
CONNECTIONS = Gauge("chorus_connections", "Open WebSocket connections (authenticated or not).")
FRAMES_IN = LoopCounter("chorus_frames_in", "Client frames received, by type.", ["type"])
FRAMES_OUT = LoopCounter(
    "chorus_frames_out",
    "Frames queued to clients: direct (replies, one connection) or broadcast (per recipient).",
    ["kind"],
)
FRAMES_OUT_DIRECT = FRAMES_OUT.labels("direct")
FRAMES_OUT_BROADCAST = FRAMES_OUT.labels("broadcast")
LOG_WRITE_FAILURES = Counter(
    "chorus_log_write_failures",
    "Log and console lines dropped because writing them failed (disk full, broken pipe...).",
)
CLIENT_CONNECTIONS = Gauge(
    "chorus_client_connections",
    "Client connections admitted and still open, by listener (http, gateway).",
    ["listener"],
)
CONNECTIONS_REFUSED = Counter(
    "chorus_connections_refused",
    "Client connections refused on accept, by listener and reason (per_address, total,"
    " file_limit, out_of_descriptors).",
    ["listener", "reason"],
)
FILE_REJECTIONS = Counter(
    "chorus_file_rejections",
    "Uploaded files refused by a content check, by reason (chorus.files.Rejection values).",
    ["reason"],
)
FILE_UPLOADS = Counter(
    "chorus_file_uploads",
    "Upload requests by outcome: accepted (spooled, pipeline queued) or the refusal's code"
    " (file_too_large, quota_exceeded, too_many_uploads, ...).",
    ["outcome"],
)
FILE_UPLOAD_BYTES = Counter(
    "chorus_file_upload_bytes", "Bytes of accepted uploads written to the spool."
)
FILE_PIPELINE_QUEUE = Gauge(
    "chorus_file_pipeline_queue",
    "Files waiting for or going through the checks on this node (spooled, not yet"
    " ready or rejected).",
)
FILE_OUTCOMES = Counter(
    "chorus_file_outcomes",
    "Files that left the pipeline, by final state (ready, rejected).",
    ["state"],
)
FILE_SCANS = Counter(
    "chorus_file_scans",
    "Virus scans by outcome: clean, infected, or error (scanner down, timed out or failing).",
    ["outcome"],
)
FILE_SCAN_SECONDS = Histogram(
    "chorus_file_scan_seconds",
    "Virus scan duration (whole INSTREAM exchange, failures included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
FILE_HOUSEKEEPING_FILES = Counter(
    "chorus_file_housekeeping_files",
    "Files removed by housekeeping, by kind: unattached (uploads never attached, deleted),"
    " deleted (deleted files' bytes and rows purged after the retention), spool (leftovers"
    " of a crash in the node's spool).",
    ["kind"],
)
FILE_HOUSEKEEPING_BYTES = Counter(
    "chorus_file_housekeeping_bytes", "Bytes housekeeping freed in the file storage and the spool."
)
FILE_PIPELINE_RETRIES = Counter(
    "chorus_file_pipeline_retries",
    "Pipeline steps retried because a service was unavailable: scan, storage or store.",
    ["service"],
)

REGISTRY.register(_LoopCollector())
