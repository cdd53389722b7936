"""A real S3-compatible server for the object-store tests: moto in server mode on 127.0.0.1.

Clients reach it the ordinary way (botocore / s3fs / pyarrow / DuckDB through the store),
configured only by the usual environment variables, which each test sets with monkeypatch.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

#: Distinctive fake credentials: tests assert they never appear in any output.
KEY_ID = "AKIADATANETTESTKEY01"
SECRET = "dAtAnEtTeStSeCrEt/0123456789+abcdefghijk"
_buckets = itertools.count()


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server running for the whole session, in its
    own process: delta-rs holds the GIL while it waits for S3, so a server thread in this
    process could not answer it."""
    pytest.importorskip("moto.server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def s3_environment(endpoint: str) -> dict[str, str]:
    """The environment a process needs to reach the test server."""
    return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}


def _forget_clients() -> None:
    """Drop cached s3fs instances: they keep the endpoint of the environment they were made in."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3(moto_endpoint, monkeypatch) -> S3Server:
    """A fresh, empty bucket on the server; the S3 environment set for this test."""
    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    _forget_clients()
    bucket = f"datanet-test-{next(_buckets)}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return S3Server(moto_endpoint, bucket)
