"""HDR histograms merged across processes."""

from __future__ import annotations

from chorus.bots._histogram import encode_histogram, merge_encoded, new_histogram, summary_ms


def test_merging_encoded_histograms_keeps_every_value() -> None:
    first, second = new_histogram(), new_histogram()
    for micros in range(1, 1001):
        first.record_value(micros)
    second.record_value(50_000)
    merged = merge_encoded([encode_histogram(first), encode_histogram(second), b""])
    summary = summary_ms(merged)
    assert summary["count"] == 1001
    assert 0.49 <= summary["p50"] <= 0.51
    assert 49.9 <= summary["max"] <= 50.1


def test_empty_histogram_summary_is_zero() -> None:
    summary = summary_ms(new_histogram())
    assert summary["count"] == 0
    assert summary["p99"] == 0.0
