"""Live actors and their mailbox depths, reported to Prometheus by kind at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._ref import ActorRef


class LiveActors:
    """Every running actor, grouped by kind; the runtime adds and removes them."""

    def __init__(self) -> None:
        self._by_kind: dict[str, set[ActorRef[Any]]] = {}

    def add(self, ref: ActorRef[Any]) -> None:
        self._by_kind.setdefault(ref.kind, set()).add(ref)

    def discard(self, ref: ActorRef[Any]) -> None:
        refs = self._by_kind.get(ref.kind)
        if refs is not None:
            refs.discard(ref)

    def by_kind(self) -> dict[str, list[ActorRef[Any]]]:
        """A snapshot: kind -> live refs (kinds seen once stay listed, possibly empty).

        Safe to call from another thread (`/metrics` renders in one) while
        the event loop adds and removes actors.
        """
        # `list()` of a dict's items or of a set copies it without releasing the
        # GIL, so the loop cannot change it mid-copy; iterating it directly could
        # raise "changed size during iteration".
        return {kind: list(refs) for kind, refs in list(self._by_kind.items())}


LIVE = LiveActors()


class _ActorCollector(Collector):
    """Computes the gauges when scraped, so the hot path pays nothing for them."""

    def collect(self) -> Iterator[Metric]:
        count = GaugeMetricFamily("chorus_actors", "Live actors.", labels=["kind"])
        queued = GaugeMetricFamily(
            "chorus_actor_mailbox_messages", "Messages waiting in mailboxes.", labels=["kind"]
        )
        deepest = GaugeMetricFamily(
            "chorus_actor_mailbox_max_depth", "Fullest mailbox of the kind.", labels=["kind"]
        )
        for kind, refs in LIVE.by_kind().items():
            depths = [ref.depth for ref in refs]
            count.add_metric([kind], len(refs))
            queued.add_metric([kind], sum(depths))
            deepest.add_metric([kind], max(depths, default=0))
        yield from (count, queued, deepest)


REGISTRY.register(_ActorCollector())
