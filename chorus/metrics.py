"""Prometheus metrics of the chat domain (supervisor and actor metrics live with them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_STORED = Counter("chorus_messages_stored", "Messages stored (retries not counted).")
DELIVERIES = Counter(
    "chorus_deliveries", "Message events queued to subscribers (fan-out deliveries)."
)
STORE_SECONDS = Histogram(
    "chorus_store_seconds",
    "Store call latency.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DELIVERY_SECONDS = Histogram(
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
FRAMES_IN = Counter("chorus_frames_in", "Client frames received, by type.", ["type"])
FRAMES_OUT = Counter(
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
