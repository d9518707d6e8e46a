"""The local S3 endpoint: reached through the Amazon provider's hook, as AWS would be; stops cleanly."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from devservices.s3_server import LocalS3, create_bucket, s3_hook, upload_folder
from tests.conftest import S3_CONN_ID


def test_a_folder_uploaded_through_the_hook_is_listed_and_read_back(
    s3_server: LocalS3, tmp_path: Path
) -> None:
    (tmp_path / "q1" / "nested").mkdir(parents=True)
    (tmp_path / "q1" / "a.csv").write_text("id\n1\n")
    (tmp_path / "q1" / "nested" / "b.csv").write_text("id\n2\n")

    create_bucket(S3_CONN_ID, "devservice-upload")
    keys = upload_folder(S3_CONN_ID, tmp_path, "devservice-upload", "drop")

    assert keys == ["drop/q1/a.csv", "drop/q1/nested/b.csv"]
    hook = s3_hook(S3_CONN_ID)
    assert sorted(hook.list_keys("devservice-upload", prefix="drop/")) == keys
    assert hook.read_key("drop/q1/nested/b.csv", "devservice-upload") == "id\n2\n"


def test_the_connection_is_an_aws_connection_with_the_endpoint() -> None:
    server = LocalS3(port=12345)

    (name, value), *others = server.environment("my_s3").items()

    assert not others
    assert name == "AIRFLOW_CONN_MY_S3"
    connection = json.loads(value)
    assert connection["conn_type"] == "aws"
    assert connection["extra"]["endpoint_url"] == "http://127.0.0.1:12345"


def test_stopping_closes_the_port_and_reset_forgets_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalS3() as server:
        for name, value in server.environment("reset_check").items():
            monkeypatch.setenv(name, value)
        create_bucket("reset_check", "to-forget")
        assert s3_hook("reset_check").check_for_bucket("to-forget")
        server.reset()
        assert not s3_hook("reset_check").check_for_bucket("to-forget")
        port = server.port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
