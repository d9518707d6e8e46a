"""The throwaway Redis of the Celery test: starts, answers, keeps nothing, stops, fails clearly."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import redis

from devservices.postgres import free_port
from devservices.redis_server import LocalRedis, LocalRedisError


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_serves_on_localhost_without_persistence_and_stops(tmp_path: Path) -> None:
    port = free_port()

    with LocalRedis(port, tmp_path / "redis") as server:
        assert server.url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(server.url)
        client.set("broker", "ok")
        assert client.get("broker") == b"ok"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        pid = server.pid
        client.close()

    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert port_is_closed(port)
    assert "Ready to accept connections" in (tmp_path / "redis" / "redis.log").read_text()
    assert not list((tmp_path / "redis").glob("*.rdb"))


def test_a_taken_port_fails_with_the_server_log(tmp_path: Path) -> None:
    with LocalRedis(free_port(), tmp_path / "first") as first:
        second = LocalRedis(first.port, tmp_path / "second")
        with pytest.raises(LocalRedisError, match="exited") as failure:
            second.start()
        assert "Address already in use" in str(failure.value)
        assert redis.Redis.from_url(first.url).ping()


def test_a_missing_binary_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(LocalRedisError, match=r"scripts/install_test_tools\.sh"):
        LocalRedis(free_port(), tmp_path / "redis").start()
