"""HDR latency histograms that travel between processes as compact bytes."""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

LOWEST_US = 1
HIGHEST_US = 120_000_000  # two minutes
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    """A histogram of microseconds, 1 µs to 2 min, 3 significant digits."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def encode_histogram(histogram: HdrHistogram) -> bytes:
    """Compressed bytes for `decode_histogram` in another process."""
    encoded: bytes = histogram.encode()
    return encoded


def merge_encoded(encoded: Iterable[bytes], into: HdrHistogram | None = None) -> HdrHistogram:
    """One histogram holding every value of the encoded ones."""
    merged = into if into is not None else new_histogram()
    for blob in encoded:
        if blob:
            merged.add(HdrHistogram.decode(blob))
    return merged


def summary_ms(histogram: HdrHistogram) -> dict[str, float | int]:
    """count, p50, p90, p99, p99.9, max and mean in milliseconds."""
    count = int(histogram.get_total_count())
    result: dict[str, float | int] = {"count": count}
    for percentile in PERCENTILES:
        key = "p" + f"{percentile:g}".replace(".", "_")
        result[key] = histogram.get_value_at_percentile(percentile) / 1000 if count else 0.0
    result["max"] = histogram.get_max_value() / 1000 if count else 0.0
    result["mean"] = round(histogram.get_mean_value() / 1000, 3) if count else 0.0
    return result
