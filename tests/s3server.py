"""A real S3-compatible server on loopback for the object-storage tests: moto's server in a thread
(``moto[server]``), reached by s3fs through ``AWS_ENDPOINT_URL`` like any S3-compatible store (MinIO,
R2, Ceph). Import the ``s3_server`` fixture into a test module to use it."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]

    def new_bucket(self) -> str:
        """A fresh, empty bucket; returns its name."""
        import s3fs

        name = f"prefmill-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(endpoint_url=self.endpoint, skip_instance_cache=True).mkdir(name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (a free port) with the AWS variables pointing at it; the
    variables also reach subprocesses (Dask workers), and are restored after the session."""
    pytest.importorskip("s3fs", reason="the S3 tests need s3fs (pip install s3fs)")
    server_mod = pytest.importorskip(
        "moto.server", reason="the S3 tests need moto (pip install 'moto[server]')"
    )
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "prefmill-test",
        "AWS_SECRET_ACCESS_KEY": "prefmill-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(env)
    try:
        yield S3Server(endpoint, env)
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
