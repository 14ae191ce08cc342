"""Files in metrics and logs (issue #13 item 8): counters move, logs hold no contents nor URLs."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from chorus.actors.housekeeping import Housekeeper, HousekeepingLimits
from chorus.logs import configure_logging
from chorus.persistence import now_ms
from tests.clamdserver import EICAR, ClamdServer, running_clamd
from tests.files.samples import image_bytes
from tests.http.conftest import Server, open_server
from tests.http.test_file_delivery import fetch, moto, url_of  # noqa: F401 (moto: fixture)
from tests.http.test_files import FILES, final, upload
from tests.polling import until
from tests.s3server import S3_REGION, MotoServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def clamd() -> AsyncIterator[ClamdServer]:
    async with running_clamd() as server:
        yield server


async def scrape(server: Server) -> Samples:
    """Every sample of `/metrics`, by name and labels."""
    response = await server.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_upload_scan_rejection_queue_and_housekeeping_metrics_move(
    tmp_path: Path, clamd: ClamdServer
) -> None:
    settings = {"scanner": "clamd", "clamd_address": clamd.tcp_address, "files_max_bytes": 4096}
    async with open_server(tmp_path, **settings) as server:
        ada = await server.register("ada")
        before = await scrape(server)
        text = b"quarterly figures\n"
        good = (await upload(server, ada, text)).json()["id"]
        bad = (await upload(server, ada, EICAR, name="eicar.txt")).json()["id"]
        fake = await upload(server, ada, b"MZ\x90\x00" + bytes(200), name="a.png")
        png = image_bytes((30, 30), "PNG")
        lying = await upload(server, ada, png, name="b.jpg", content_type="image/jpeg")
        assert (await upload(server, ada, bytes(5000))).status_code == 413
        for file_id in (good, bad, fake.json()["id"], lying.json()["id"]):
            await final(server, ada, file_id)

        # The queue: a file waits while clamd is down, and leaves once it is back.
        await clamd.stop()
        waiting = (await upload(server, ada, b"later\n")).json()["id"]

        async def queued() -> bool:
            return value(await scrape(server), "chorus_file_pipeline_queue") >= 1

        await until(queued)
        await clamd.start()
        await final(server, ada, waiting, timeout=60)

        async def drained() -> bool:
            return value(await scrape(server), "chorus_file_pipeline_queue") == 0

        # The pipeline takes the file off its queue just after storing its final state,
        # so the gauge may still count it when the state is seen (under load: it was).
        await until(drained)

        assert (await server.delete(f"{FILES}/{good}", ada)).status_code == 204
        limits = HousekeepingLimits(interval=60, unattached_ttl=3600, retention=0)
        keeper = Housekeeper(server.services.store, server.services.files, limits)
        assert (await keeper.sweep(now_ms())).purged == 1
        after = await scrape(server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("chorus_file_uploads_total", outcome="accepted") == 5
    assert moved("chorus_file_uploads_total", outcome="file_too_large") == 1
    assert moved("chorus_file_upload_bytes_total") >= len(text) + len(EICAR) + len(png)
    assert moved("chorus_file_scans_total", outcome="clean") >= 2
    assert moved("chorus_file_scans_total", outcome="infected") == 1
    assert moved("chorus_file_scans_total", outcome="error") >= 1  # clamd down
    assert moved("chorus_file_scan_seconds_count") >= 3
    assert moved("chorus_file_rejections_total", reason="infected") == 1
    assert moved("chorus_file_rejections_total", reason="type_mismatch") == 1
    assert moved("chorus_file_rejections_total", reason="type_not_allowed") == 1
    assert moved("chorus_file_outcomes_total", state="ready") == 2
    assert moved("chorus_file_outcomes_total", state="rejected") == 3
    assert moved("chorus_file_pipeline_retries_total", service="scan") >= 1
    assert moved("chorus_file_housekeeping_files_total", kind="deleted") == 1
    assert moved("chorus_file_housekeeping_bytes_total") == len(text)


@contextmanager
def rendered_logs() -> Iterator[io.StringIO]:
    """Every structlog line, rendered as the node writes it (JSON, debug and up)."""
    lines = io.StringIO()
    configure_logging("json", "debug", lines)
    try:
        yield lines
    finally:
        structlog.reset_defaults()


SECRET = b"the launch code is 0000 and the vault is behind the painting\n"
NAME = "vault-plans.txt"


async def flow(server: Server) -> list[str]:
    """Upload, scan, URL, download of a file and an image; the URLs that were issued."""
    ada = await server.register("ada")
    text = await upload(server, ada, SECRET, name=NAME)
    png = await upload(
        server, ada, image_bytes((400, 300), "PNG"), name="map.png", content_type="image/png"
    )
    urls = []
    for response in (text, png):
        file_id = response.json()["id"]
        assert (await final(server, ada, file_id))["state"] == "ready"
        for variant in ("original", "320") if response is png else ("original",):
            url = await url_of(server, ada, file_id, variant)
            got = await fetch(url)
            assert got.status_code == 200
            urls.append(url)
    assert (await fetch(urls[0])).content == SECRET
    return urls


def assert_clean(logs: str, urls: list[str]) -> None:
    assert "files.checked" in logs  # the capture works: the pipeline's lines are there
    assert SECRET.decode().strip() not in logs
    assert "launch code" not in logs
    assert NAME not in logs
    for needle in ("sig=", "Signature", "X-Amz-", "Key-Pair-Id", "Expires=", "?exp="):
        assert needle not in logs, needle
    for url in urls:
        assert url not in logs
        assert url.partition("?")[2] not in logs


async def test_logs_hold_no_file_contents_names_or_signed_urls(tmp_path: Path) -> None:
    with rendered_logs() as lines:
        async with open_server(tmp_path, log_level="debug") as server:
            urls = await flow(server)
    assert all("sig=" in url for url in urls)  # local signed URLs
    assert_clean(lines.getvalue(), urls)


async def test_logs_hold_no_presigned_urls_with_s3(
    tmp_path: Path,
    moto: MotoServer,  # noqa: F811 (the fixture)
) -> None:
    settings = {
        "storage": "s3",
        "s3_bucket": "files",
        "s3_region": S3_REGION,
        "s3_endpoint_url": moto.endpoint_url,
    }
    with rendered_logs() as lines:
        async with open_server(tmp_path / "node", **settings) as server:
            urls = await flow(server)
    assert all("X-Amz-Signature=" in url for url in urls)
    assert_clean(lines.getvalue(), urls)
