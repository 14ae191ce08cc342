"""The event loop's counters and histograms export what `prometheus_client`'s would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric

from chorus.metrics import _LOOP_METRICS, LoopCounter, LoopHistogram

BOUNDS = (0.001, 0.01, 0.1, 1.0)
VALUES = (0.0, 0.0005, 0.001, 0.002, 0.01, 0.5, 1.0, 3.0, 0.001)
"""Values on the bounds, between them, under the first and over the last."""


def _samples(metric: Metric) -> list[tuple[str, list[tuple[str, str]], float]]:
    """(name, labels, value) of each sample, without `prometheus_client`'s `_created`."""
    return sorted(
        (sample.name, sorted(sample.labels.items()), sample.value)
        for sample in metric.samples
        if not sample.name.endswith("_created")
    )


def _collected(registry: CollectorRegistry, name: str) -> Metric:
    return next(metric for metric in registry.collect() if metric.name == name)


def test_a_loop_counter_exports_what_a_counter_does() -> None:
    registry = CollectorRegistry()
    reference = Counter("test_loop_plain", "Doc.", registry=registry)
    ours = LoopCounter("test_loop_plain", "Doc.")
    _LOOP_METRICS.remove(ours)  # not exported by the node's registry
    for amount in (1, 3, 0.5):
        reference.inc(amount)
        ours.inc(amount)
    assert _samples(ours.collect()) == _samples(_collected(registry, "test_loop_plain"))


def test_a_loop_counter_with_labels_exports_each_child() -> None:
    registry = CollectorRegistry()
    reference = Counter("test_loop_labelled", "Doc.", ["kind"], registry=registry)
    ours = LoopCounter("test_loop_labelled", "Doc.", ["kind"])
    _LOOP_METRICS.remove(ours)
    for kind, amount in (("a", 1), ("b", 2), ("a", 4)):
        reference.labels(kind).inc(amount)
        ours.labels(kind).inc(amount)
    reference.labels("c")
    ours.labels("c")  # bound, never counted: exported as 0, as prometheus_client does
    assert _samples(ours.collect()) == _samples(_collected(registry, "test_loop_labelled"))


def test_a_loop_histogram_exports_what_a_histogram_does() -> None:
    registry = CollectorRegistry()
    reference = Histogram("test_loop_seconds", "Doc.", ["op"], buckets=BOUNDS, registry=registry)
    ours = LoopHistogram("test_loop_seconds", "Doc.", BOUNDS, labels={"op": "append"})
    _LOOP_METRICS.remove(ours)
    for value in VALUES:
        reference.labels("append").observe(value)
        ours.observe(value)
    assert _samples(ours.collect()) == _samples(_collected(registry, "test_loop_seconds"))
