"""Upload throughput and server memory (issue #13 Performance): the client side of `upload`.

Against a running node: one user uploads a big text file (streamed from a
generator, never whole in memory here), then (optionally) a bigger one, then
`images` copies of a ~1 MB PNG at once. For each phase: MB/s
(bytes sent / seconds until the last 202) and the server's peak VmRSS,
sampled every 20 ms from /proc while the phase runs (VmHWM only ever
grows, so it cannot tell phases apart; it is reported at the end).
"""

from __future__ import annotations

import functools
import io
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import trio
from PIL import Image

CHUNK = 1024 * 1024
LINE = b"the quick brown fox jumps over the lazy dog, again and again and again\n"


def status_kib(pid: int, field: str) -> int | None:
    """`field` (VmRSS, VmHWM) of /proc/<pid>/status in KiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(
        (int(line.split()[1]) for line in text.splitlines() if line.startswith(field)), None
    )


class RssPeak:
    """The highest VmRSS of `pid` seen since `reset` (sampled by `run`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0

    def reset(self) -> None:
        self.peak_kib = status_kib(self.pid, "VmRSS:") or 0

    async def run(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, status_kib(self.pid, "VmRSS:") or 0)
            await trio.sleep(0.02)


def png_of_about(size: int) -> bytes:
    """A noisy PNG of about `size` bytes (noise does not compress)."""
    side = int((size / 3) ** 0.5)
    noise = random.Random(7).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(out, "PNG")
    return out.getvalue()


async def text_body(size: int) -> AsyncIterator[bytes]:
    block = LINE * (CHUNK // len(LINE))
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        sent += len(piece)
        yield piece


async def upload(
    http: httpx.AsyncClient, token: str, body: bytes | AsyncIterator[bytes], **kw: str
) -> None:
    response = await http.post(
        "/api/v1/files",
        params={"name": kw["name"]},
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": kw["content_type"]},
    )
    if response.status_code != 202:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text[:200]}")


async def phase(rss: RssPeak, name: str, size: int, work: Any) -> dict[str, Any]:
    rss.reset()
    started = time.perf_counter()
    await work()
    seconds = time.perf_counter() - started
    return {
        "phase": name,
        "bytes": size,
        "seconds": round(seconds, 3),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "server_peak_rss_mib": round(rss.peak_kib / 1024, 1),
    }


async def measure(
    base_url: str, pid: int, *, big: int, images: int, image_size: int, bigger: int | None
) -> dict[str, Any]:
    """Run the phases against the node at `base_url` (server process `pid`)."""
    rss = RssPeak(pid)
    png = png_of_about(image_size)
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
        account = {"username": "uploader", "password": "correct horse battery staple"}
        registered = await http.post("/api/v1/auth/register", json=account)
        registered.raise_for_status()
        token = registered.json()["access_token"]
        idle_kib = status_kib(pid, "VmRSS:")
        phases = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rss.run)

            async def one_big(size: int = big) -> None:
                await upload(
                    http, token, text_body(size), name="big.txt", content_type="text/plain"
                )

            async def many_images() -> None:
                async with trio.open_nursery() as uploads:
                    for n in range(images):
                        uploads.start_soon(
                            functools.partial(
                                upload, http, token, png, name=f"i{n}.png", content_type="image/png"
                            )
                        )

            # The two files first: RSS the image checks took is not given back at once.
            phases.append(await phase(rss, "big", big, one_big))
            if bigger is not None:
                phases.append(await phase(rss, "bigger", bigger, lambda: one_big(bigger)))
            phases.append(await phase(rss, "images", images * len(png), many_images))
            nursery.cancel_scope.cancel()
    return {
        "server_idle_rss_mib": round((idle_kib or 0) / 1024, 1),
        "server_vmhwm_mib": round((status_kib(pid, "VmHWM:") or 0) / 1024, 1),
        "image_bytes": len(png),
        "phases": phases,
    }
