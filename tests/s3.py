"""A real HTTP S3 endpoint on loopback for tests: moto's standalone server.

Production uses a real S3 service (AWS S3, MinIO, Ceph); the code under test
talks to this one exactly as it would to those: boto3 over HTTP, signed
requests, presigned URLs fetched by an HTTP client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY, SECRET_KEY, REGION = "stylestudy-test", "stylestudy-test-secret", "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server(log_path: Path | None = None, timeout: float = 60) -> Iterator[str]:
    """Start ``moto_server`` on a free loopback port; yields its endpoint URL."""
    port = free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not listen on {endpoint} within {timeout:.0f} s") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


@dataclass
class S3Media:
    """One fresh bucket on the loopback endpoint, and how to point processes at it."""

    endpoint: str
    bucket: str
    prefix: str = "media"
    env: dict[str, str] = field(default_factory=dict)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY)

    def keys(self) -> list[str]:
        """Every object key in the bucket (with the prefix)."""
        keys = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return keys

    def get(self, name: str) -> bytes:
        key = f"{self.prefix}/{name}" if self.prefix else name
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


def new_bucket(endpoint: str, *, prefix: str = "media", expire: int = 120) -> S3Media:
    """Create an empty bucket; ``env`` holds the ``MEDIA_S3_*`` settings that select it."""
    media = S3Media(endpoint=endpoint, bucket=f"stylestudy-{uuid.uuid4().hex[:12]}", prefix=prefix)
    media.client().create_bucket(Bucket=media.bucket)
    media.env = {
        "MEDIA_S3_BUCKET": media.bucket, "MEDIA_S3_ENDPOINT_URL": endpoint, "MEDIA_S3_REGION": REGION,
        "MEDIA_S3_ACCESS_KEY_ID": ACCESS_KEY, "MEDIA_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "MEDIA_S3_PREFIX": prefix, "MEDIA_URL_EXPIRE_SECONDS": str(expire),
    }
    return media
