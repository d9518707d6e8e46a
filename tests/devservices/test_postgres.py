"""devservices.postgres against real PostgreSQL servers: lifecycle, reuse, failures, CLI, root."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devservices.environment import PROJECT_ROOT
from devservices.postgres import (
    EXIT_NOT_RUNNING,
    FALLBACK_ROOT,
    HOST,
    LocalPostgres,
    LocalPostgresError,
    free_port,
)

PASSWORD = "s3cret: with spaces/and@signs"
AS_ROOT = os.geteuid() == 0

root_only = pytest.mark.skipif(not AS_ROOT, reason="as root, the server runs as another account")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalPostgres]:
    """A fast cluster on a free port; destroyed afterwards (as root its data is in /var/tmp)."""
    cluster = LocalPostgres(
        state_dir=tmp_path / "pg",
        port=free_port(),
        password=PASSWORD,
        fast=True,
    )
    yield cluster
    cluster.destroy()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can traverse, unlike pytest's ``/tmp/pytest-of-<user>`` (0700)."""
    path = Path(tempfile.mkdtemp(prefix="pg-open-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((HOST, port)) == 0


def test_serves_a_database_over_tcp_with_password_auth(server: LocalPostgres) -> None:
    server.start()
    assert server.is_running()
    assert server.started_by_us
    server.create_database("app")
    server.create_database("app")  # exist_ok

    with psycopg.connect(server.conninfo("app")) as conn:
        query = "SELECT current_database(), current_user, current_setting('fsync')"
        row = conn.execute(query).fetchone()
    assert row == ("app", "postgres", "off")
    with psycopg.connect(server.url("app")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    wrong = LocalPostgres(server.state_dir, server.port, password="wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong.conninfo("app"))
    with pytest.raises(psycopg.errors.DuplicateDatabase):
        server.create_database("app", exist_ok=False)

    server.drop_database("app")
    server.drop_database("app")  # already gone: no error
    server.stop()
    assert not server.is_running()
    assert not port_is_open(server.port)


def test_start_is_idempotent_and_a_second_handle_reuses_the_server(server: LocalPostgres) -> None:
    server.start()
    server.start()
    assert server.started_by_us

    other = LocalPostgres(state_dir=server.state_dir, port=server.port, password=PASSWORD)
    other.start()
    assert not other.started_by_us
    other.stop()  # not ours to stop
    assert server.is_running()
    with pytest.raises(LocalPostgresError, match=f"already runs on port {server.port}"):
        LocalPostgres(state_dir=server.state_dir, port=free_port()).start()

    server.stop()
    assert not server.is_running()
    assert not port_is_open(server.port)


def test_failed_start_reports_the_server_log(server: LocalPostgres) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((HOST, server.port))
        squatter.listen()
        with pytest.raises(LocalPostgresError) as failure:
            server.start()
    message = str(failure.value)
    assert f"last lines of {server.log_file}" in message
    assert "Address already in use" in message
    assert not server.is_running()
    assert not server.started_by_us


@root_only
def test_as_root_the_server_runs_as_an_unprivileged_account(server: LocalPostgres) -> None:
    server.start()
    postmaster_pid = int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])
    uid_line = next(
        line
        for line in Path(f"/proc/{postmaster_pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    real_uid = int(uid_line.split()[1])
    assert real_uid != 0
    assert pwd.getpwuid(real_uid).pw_name in {"postgres", "nobody"}
    assert server.data_dir.stat().st_uid == real_uid
    assert server.data_dir.stat().st_mode & 0o777 == 0o700


@root_only
def test_as_root_a_private_ancestor_moves_the_cluster_to_var_tmp(open_dir: Path) -> None:
    in_place = LocalPostgres(state_dir=open_dir / "pg", port=free_port())
    assert in_place.server_dir == in_place.state_dir

    private = open_dir / "private"
    private.mkdir(mode=0o700)
    cluster = LocalPostgres(
        state_dir=private / "pg",
        port=free_port(),
        password=PASSWORD,
        fast=True,
    )
    assert cluster.server_dir.parent == FALLBACK_ROOT
    assert cluster.server_dir.name.startswith("pipelines-pg-")
    same_state_dir = LocalPostgres(state_dir=private / "pg", port=cluster.port)
    assert same_state_dir.server_dir == cluster.server_dir
    try:
        with cluster:
            cluster.create_database("app")
            with psycopg.connect(cluster.conninfo("app")) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        assert cluster.log_file.parent == cluster.state_dir
        assert "database system is shut down" in cluster.log_file.read_text()
    finally:
        cluster.destroy()
    assert not cluster.server_dir.exists()


def test_as_a_normal_user_the_cluster_stays_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A normal user runs the server itself, so even a private directory is fine.
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    cluster = LocalPostgres(state_dir=private / "pg", port=free_port())
    assert cluster.server_dir == cluster.state_dir


def test_a_socket_path_too_long_for_the_kernel_moves_the_cluster(open_dir: Path) -> None:
    deep = open_dir.joinpath(*["a-rather-long-directory-name"] * 4)
    cluster = LocalPostgres(state_dir=deep / "pg", port=free_port(), password=PASSWORD, fast=True)
    assert cluster.server_dir.parent == FALLBACK_ROOT
    try:
        with cluster:
            cluster.create_database("app")
            assert cluster.is_running()
    finally:
        cluster.destroy()


def test_cli_start_status_conninfo_stop(tmp_path: Path) -> None:
    state_dir = tmp_path / "cli"
    port = free_port()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "devservices.postgres",
                *args,
                "--state-dir",
                str(state_dir),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
            },
            timeout=120,
            check=False,
        )

    try:
        started = cli("start", "--database", "demo", "--database", "other", "--password", PASSWORD)
        assert started.returncode == 0, started.stderr
        assert started.stdout.count("\n") == 1
        assert f"running on {HOST}:{port}" in started.stdout
        assert cli("start", "--database", "demo").returncode == 0  # idempotent

        status = cli("status")
        assert status.returncode == 0, status.stderr
        conninfo = cli("conninfo", "--database", "demo", "--password", PASSWORD)
        assert conninfo.returncode == 0, conninfo.stderr
        with psycopg.connect(conninfo.stdout.strip()) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("demo",)

        stopped = cli("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert cli("status").returncode == EXIT_NOT_RUNNING
        assert not port_is_open(port)
    finally:
        LocalPostgres(state_dir=state_dir, port=port).destroy()
