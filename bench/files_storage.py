"""Time and peak memory of `Storage.put` for big files, local directory and S3 (issue #13).

Usage: .venv/bin/python bench/files_storage.py [--mb N ...] [--dir DIR] [--json]
                                                [--endpoint-url URL --bucket B]

For each size (default 100 and 200 MB) a sparse file is created in DIR (a
temporary folder by default) and stored once by each backend: LocalStorage
under DIR, then S3Storage against `--endpoint-url`/`--bucket` (credentials
from the environment), or, without them, a private moto server on loopback
(tests/s3server.py; moto keeps objects in its own memory, not ours).
"Peak" is the Python heap's high-water mark during the put (tracemalloc):
what a whole-file read would blow up. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import boto3
import trio

from chorus.files import LocalStorage, S3Storage, Storage
from tests.s3server import S3_ACCESS_KEY_ID, S3_REGION, S3_SECRET_ACCESS_KEY, running_moto


@contextmanager
def moto_bucket(directory: Path) -> Iterator[tuple[str, str]]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY_ID)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", S3_SECRET_ACCESS_KEY)
    with running_moto(directory) as server:
        boto3.client("s3", endpoint_url=server.endpoint_url, region_name=S3_REGION).create_bucket(
            Bucket="chorus-bench"
        )
        yield server.endpoint_url, "chorus-bench"


def measure(storage: Storage, source: Path) -> tuple[float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    trio.run(lambda: storage.put("files/bench/original", source, content_type="application/zip"))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--bucket")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with ExitStack() as stack:
        directory = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.endpoint_url:
            endpoint, bucket = args.endpoint_url, args.bucket
        else:
            endpoint, bucket = stack.enter_context(moto_bucket(directory / "moto"))
        backends: dict[str, Storage] = {
            "local": LocalStorage(directory / "store"),
            "s3": S3Storage(bucket, region=S3_REGION, endpoint_url=endpoint),
        }
        for size in args.mb:
            source = directory / f"source-{size}"
            with source.open("wb") as file:
                file.truncate(size << 20)
            for name, storage in backends.items():
                seconds, peak = measure(storage, source)
                rows.append(
                    {
                        "backend": name,
                        "mb": size,
                        "seconds": round(seconds, 2),
                        "mb_per_s": round(size / seconds, 1),
                        "peak_mib": round(peak / 2**20, 1),
                    }
                )
            source.unlink()
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'backend':8} {'MB':>6} {'seconds':>8} {'MB/s':>7} {'peak MiB':>9}")
    for row in rows:
        print(
            f"{row['backend']:8} {row['mb']:>6} {row['seconds']:>8} "
            f"{row['mb_per_s']:>7} {row['peak_mib']:>9}"
        )


if __name__ == "__main__":
    main()
