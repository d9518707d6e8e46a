"""A real S3-compatible endpoint on 127.0.0.1, for tests and local runs: moto's server mode.

Code under test talks to it over HTTP exactly as to AWS (through the Amazon provider's
``S3Hook`` and Airflow's object storage, s3fs underneath), so listing, ETags, ranged GETs and
multipart uploads are the real client's. moto keeps everything in memory in this process and
forgets it when stopped. The connection it needs is an ordinary Airflow ``aws`` connection
with an ``endpoint_url`` extra and dummy keys: :meth:`LocalS3.connection` gives it, and
:meth:`LocalS3.environment` the ``AIRFLOW_CONN_<ID>`` variable that makes Airflow find it.

Run alone (``python -m devservices.s3_server --folder demo/ --bucket drop``) it serves until
Ctrl-C and prints the connection to use.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from devservices.postgres import free_port

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger("devservices.s3")

HOST = "127.0.0.1"
REGION = "us-east-1"
# moto accepts any key pair; these only have to look like one to botocore.
DUMMY_KEY_PAIR = ("local-s3-access-key", "local-s3-not-a-secret")


class LocalS3:
    """moto's S3 server in a thread of this process, on a free port of 127.0.0.1."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def connection(self) -> dict[str, Any]:
        """The Airflow connection (JSON form) that points the Amazon provider here."""
        return {
            "conn_type": "aws",
            "login": DUMMY_KEY_PAIR[0],
            "password": DUMMY_KEY_PAIR[1],
            "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def boto3_client(self) -> Any:
        """A plain boto3 S3 client of this server: for callers that must not import Airflow."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_KEY_PAIR[0],
            aws_secret_access_key=DUMMY_KEY_PAIR[1],
        )

    def environment(self, conn_id: str) -> dict[str, str]:
        """The environment variable that defines the connection ``conn_id`` for Airflow."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection())}

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        # One log line per request drowns everything else in a test's output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        self._server.start()
        log.info("S3 (moto) listening on %s", self.endpoint_url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Forget every bucket and object (moto's own reset endpoint)."""
        import requests

        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def s3_hook(conn_id: str) -> S3Hook:
    """The Amazon provider's hook for ``conn_id`` (defined, e.g., by :meth:`LocalS3.environment`)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id)


def create_bucket(conn_id: str, bucket: str) -> None:
    hook = s3_hook(conn_id)
    if not hook.check_for_bucket(bucket):
        hook.create_bucket(bucket_name=bucket, region_name=REGION)


def upload_folder(conn_id: str, folder: Path, bucket: str, prefix: str = "") -> list[str]:
    """Upload every file under ``folder`` to ``bucket`` under ``prefix``; return the keys, sorted."""
    hook = s3_hook(conn_id)
    keys = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = "/".join(part for part in (prefix.strip("/"), path.relative_to(folder).as_posix()) if part)
            hook.load_file(str(path), key=key, bucket_name=bucket, replace=True)
            keys.append(key)
    return keys


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--conn-id", default="local_s3")
    parser.add_argument("--bucket", help="create this bucket")
    parser.add_argument("--folder", type=Path, help="upload this folder into the bucket")
    parser.add_argument("--prefix", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    with LocalS3(args.port) as server:
        os.environ.update(server.environment(args.conn_id))
        if args.bucket:
            create_bucket(args.conn_id, args.bucket)
            if args.folder:
                keys = upload_folder(args.conn_id, args.folder, args.bucket, args.prefix)
                print(f"uploaded {len(keys)} files to s3://{args.bucket}/{args.prefix}")
        for name, value in server.environment(args.conn_id).items():
            print(f"export {name}='{value}'")
        print("serving until Ctrl-C")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
