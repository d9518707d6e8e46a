"""A local PostgreSQL cluster run with the distribution's server binaries (no system service).

Used by ``make run`` (a persistent cluster under ``.local/postgres``) and by the tests (throwaway
clusters with durability off). A cluster is identified by its *state directory*, which holds:

* ``postgres.log``: everything initdb and the server write, appended across starts;
* ``data/``: the data directory, and ``run/``: the directory of the server's unix socket.

``data/`` and ``run/`` normally live in the state directory itself. The server only listens on
127.0.0.1 and on that unix socket; authentication is ``trust`` on the socket and password
(SCRAM) over TCP when a password is given.

initdb and pg_ctl refuse to run as root, so as root the server runs as the ``postgres`` system
user (``nobody`` when there is none), which must be able to reach its data directory. When some
ancestor of the state directory is closed to other users (a clone under ``/root``, pytest's
``/tmp/pytest-of-root``), ``data/`` and ``run/`` go to ``/var/tmp/pipelines-pg-<hash>/``
instead, keyed by the state directory so the same cluster is found again. The same fallback is
used when the socket's path would exceed the kernel's limit.

Command line (the status line goes to stdout, logs to stderr)::

    python -m devservices.postgres start [--database NAME ...] [--password PW] [--port N]
    python -m devservices.postgres status     # exit code 0: running, 3: not running
    python -m devservices.postgres conninfo [--database NAME]
    python -m devservices.postgres stop
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from devservices.environment import PROJECT_ROOT

# Not __name__: that is "__main__" when run with -m.
log = logging.getLogger("devservices.postgres")

HOST = "127.0.0.1"
DEFAULT_PORT = 54329
DEFAULT_STATE_DIR = PROJECT_ROOT / ".local" / "postgres"
PG_ROOT = Path("/usr/lib/postgresql")
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
# Shared with other users: _make_private_dir refuses paths someone else created there.
FALLBACK_ROOT = Path("/var/tmp")  # noqa: S108
# Durability off: a crash may lose or corrupt the cluster, acceptable for tests only.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107
LOG_TAIL_LINES = 40
# pg_ctl's exit code for "no server running", which `status` passes on.
EXIT_NOT_RUNNING = 3


class LocalPostgresError(RuntimeError):
    """A local cluster could not be found, initialised, started or stopped."""


def find_pg_bin() -> Path:
    """The directory of the PostgreSQL server binaries: ``$PG_BIN``, else the newest Debian one."""
    override = os.environ.get("PG_BIN")
    if override:
        candidates = [Path(override)]
    else:
        candidates = sorted(PG_ROOT.glob("*/bin"), key=_version_key, reverse=True)
    for bin_dir in candidates:
        if all(os.access(bin_dir / name, os.X_OK) for name in SERVER_BINARIES):
            return bin_dir
    where = f"PG_BIN={override}" if override else f"{PG_ROOT}/*/bin"
    raise LocalPostgresError(
        f"no PostgreSQL server binaries ({', '.join(SERVER_BINARIES)}) in {where}; "
        "install them with scripts/install_postgres.sh"
    )


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in bin_dir.parent.name.split("."))
    except ValueError:
        return ()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (another process may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def default_port() -> int:
    """The CLI's port: ``$LOCAL_POSTGRES_PORT``, else 54329."""
    return int(os.environ.get("LOCAL_POSTGRES_PORT", DEFAULT_PORT))


def server_account() -> pwd.struct_passwd | None:
    """The account the server runs as if we are root: `postgres`, else `nobody`; else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise LocalPostgresError("as root, the server needs a 'postgres' or 'nobody' user")


@dataclass
class LocalPostgres:
    """One cluster, kept in ``state_dir``, served on 127.0.0.1:``port``.

    ``user`` is the superuser role, created by initdb; ``password`` (if any) is its password for
    TCP connections, which are trusted without one. Both are set when the cluster is created and
    not changed afterwards. ``fast`` turns durability off (tests only). ``start()`` adopts a
    server already running in ``state_dir``; ``stop()`` stops only a server this object started,
    unless forced; ``destroy()`` also deletes the cluster.
    """

    state_dir: Path
    port: int
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    fast: bool = False
    server_dir: Path = field(init=False)
    _account: pwd.struct_passwd | None = field(init=False, repr=False)
    _pg_bin: Path | None = field(default=None, init=False, repr=False)
    _started_by_us: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        # Created now so that the traversal check below sees the modes it will really have.
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._account = server_account()
        self.server_dir = self._choose_server_dir()

    # --- layout -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.server_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.server_dir / "run"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "postgres.log"

    @property
    def started_by_us(self) -> bool:
        """Whether ``stop()`` without ``force`` will stop the server."""
        return self._started_by_us

    def _choose_server_dir(self) -> Path:
        socket_path = self.state_dir / "run" / f".s.PGSQL.{self.port}"
        if len(str(socket_path)) > MAX_SOCKET_PATH:
            reason = f"the socket path {socket_path} is too long for the kernel"
        elif self._account is not None and not _traversable_by_others(self.state_dir):
            reason = f"user {self._account.pw_name} cannot reach {self.state_dir}"
        else:
            return self.state_dir
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        fallback = FALLBACK_ROOT / f"pipelines-pg-{digest}"
        log.info("%s: keeping the cluster's data and socket in %s", reason, fallback)
        return fallback

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster on first use and start it, or adopt the server already running."""
        if self.is_running():
            running_port = self._running_port()
            if running_port != self.port:
                raise LocalPostgresError(
                    f"the cluster in {self.data_dir} already runs on port {running_port}, "
                    f"not {self.port}; stop it first"
                )
            if not self._started_by_us:
                log.info("reusing the PostgreSQL server already running on %s:%d", HOST, self.port)
            return
        self._prepare_directories()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        options = [
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={HOST}",
        ]
        if self.fast:
            for name, value in FAST_SETTINGS.items():
                options += ["-c", f"{name}={value}"]
        # pg_ctl hands -o to a shell, hence the quoting. Without -l the server writes to pg_ctl's
        # stdout: our log file, opened by us, so the server's account needs no access to it.
        command = [self._bin("pg_ctl"), "start", "-w", "-s", "-D", str(self.data_dir)]
        with self.log_file.open("ab") as server_log:
            offset = server_log.tell()
            result = self._run([*command, "-o", shlex.join(options)], stdout=server_log)
        if result.returncode != 0:
            if self.is_running():
                # pg_ctl gave up waiting (-w) on a server that is still coming up: stop it, as a
                # failed start must not leave a server behind.
                self._pg_ctl_stop(mode="immediate")
            raise LocalPostgresError(
                f"PostgreSQL did not start on {HOST}:{self.port}: {result.stderr.strip()}\n"
                + self._log_tail(offset)
            )
        self._started_by_us = True
        log.info("started PostgreSQL on %s:%d (data in %s)", HOST, self.port, self.data_dir)

    def stop(self, *, force: bool = False) -> None:
        """Stop the server if this object started it, or whoever did when ``force``."""
        if not (self._started_by_us or force):
            log.info("not stopping the server on port %d: another process started it", self.port)
            return
        if self.is_running():
            self._pg_ctl_stop(mode="fast")
            log.info("stopped PostgreSQL on %s:%d", HOST, self.port)
        self._started_by_us = False

    def crash(self) -> None:
        """Stop the server as a power cut would (``pg_ctl stop -m immediate``): no shutdown
        checkpoint, sessions dropped mid-transaction; the next :meth:`start` recovers from WAL."""
        if self.is_running():
            self._pg_ctl_stop(mode="immediate")
            log.info("crashed PostgreSQL on %s:%d (immediate stop)", HOST, self.port)

    def destroy(self) -> None:
        """Stop the server (whoever started it) and delete the cluster's data and socket dirs.

        Throwaway clusters should end with this rather than ``stop()``: as root, their data may
        live in ``/var/tmp``, outside the state directory, where nothing else would remove it.
        The log file stays in the state directory.
        """
        self.stop(force=True)
        if self.server_dir == self.state_dir:
            for directory in (self.data_dir, self.socket_dir):
                shutil.rmtree(directory, ignore_errors=True)
        else:
            shutil.rmtree(self.server_dir, ignore_errors=True)

    def is_running(self) -> bool:
        """Whether a server runs on this cluster's data directory (whoever started it)."""
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = self._run([self._bin("pg_ctl"), "status", "-D", str(self.data_dir)])
        return result.returncode == 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- databases and addresses ------------------------------------------------------------

    def create_database(self, name: str, exist_ok: bool = True) -> None:
        """Create ``name``, owned by ``user``; an existing one is fine when ``exist_ok``."""
        with self._admin_connection() as conn:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                if not exist_ok:
                    raise
                return
        log.info("created database %s", name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, disconnecting its sessions."""
        with self._admin_connection() as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))

    def grant_schema(self, database: str, schema: str, role: str, password: str) -> None:
        """What a DBA does for a pipeline's role, and no more: a login role that owns ``schema``.

        The role is no superuser, may not create databases, roles or schemas, and has no
        privilege on ``public`` (PostgreSQL 15's default): the pipeline must run on exactly this.
        """
        with self._admin_connection(database) as conn:
            # Role names are cluster-wide: two sessions provisioning it at once must take turns.
            conn.execute("SELECT pg_advisory_lock(hashtext('devservices.grant_schema'))")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            statement = "ALTER ROLE {} LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}"
            conn.execute(sql.SQL(statement).format(sql.Identifier(role), sql.Literal(password)))
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )
            conn.execute("SELECT pg_advisory_unlock(hashtext('devservices.grant_schema'))")

    def conninfo(
        self, dbname: str = "postgres", *, user: str | None = None, password: str | None = None
    ) -> str:
        """A libpq/psycopg connection string for ``dbname`` over TCP (as ``user``, default the superuser)."""
        params: dict[str, str | int] = {
            "host": HOST,
            "port": self.port,
            "user": user or self.user,
            "dbname": dbname,
        }
        password = password if user else self.password
        if password is not None:
            params["password"] = password
        return make_conninfo(**params)

    def url(self, dbname: str = "postgres") -> str:
        """The same address as ``conninfo()``, as a ``postgresql://`` URL."""
        credentials = quote(self.user, safe="")
        if self.password is not None:
            credentials += ":" + quote(self.password, safe="")
        return f"postgresql://{credentials}@{HOST}:{self.port}/{quote(dbname, safe='')}"

    def airflow_metadata_url(self, dbname: str) -> str:
        """``url(dbname)`` with the driver Airflow's metadata connection uses (psycopg2)."""
        return self.url(dbname).replace("postgresql://", "postgresql+psycopg2://", 1)

    # --- internals --------------------------------------------------------------------------

    def _admin_connection(self, dbname: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        # The unix socket trusts local users (its directory is private), so managing databases
        # needs no password: the CLI can do it without being told the one set at creation.
        # autocommit: CREATE/DROP DATABASE cannot run inside a transaction block.
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=self.user,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
        )

    def _bin(self, name: str) -> str:
        if self._pg_bin is None:
            self._pg_bin = find_pg_bin()
        return str(self._pg_bin / name)

    def _run(
        self, args: Sequence[str], *, stdout: IO[bytes] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server's account; stderr captured, stdout to ``stdout``."""
        prefix = [] if self._account is None else ["runuser", "-u", self._account.pw_name, "--"]
        return subprocess.run(
            [*prefix, *args],
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            text=True,
            # The tools look at their working directory, which the server's account must reach.
            cwd=self.server_dir,
            check=False,
        )

    def _prepare_directories(self) -> None:
        if self.server_dir != self.state_dir:
            _make_private_dir(self.server_dir, self._owner())
        for directory in (self.data_dir, self.socket_dir):
            _make_private_dir(directory, self._owner())

    def _owner(self) -> tuple[int, int]:
        if self._account is None:
            return os.geteuid(), os.getegid()
        return self._account.pw_uid, self._account.pw_gid

    def _initdb(self) -> None:
        log.info("creating a PostgreSQL cluster in %s", self.data_dir)
        command = [
            self._bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            "--encoding=UTF8",
            # The C locale exists everywhere (fresh containers often generate no other).
            "--no-locale",
            "--auth-local=trust",
        ]
        if self.fast:
            command.append("--no-sync")
        password_file: Path | None = None
        try:
            if self.password is None:
                command.append("--auth-host=trust")
            else:
                password_file = self._write_password_file()
                command += ["--auth-host=scram-sha-256", f"--pwfile={password_file}"]
            with self.log_file.open("ab") as server_log:
                offset = server_log.tell()
                result = self._run(command, stdout=server_log)
        finally:
            if password_file is not None:
                password_file.unlink()
        if result.returncode != 0:
            failure = f"initdb failed for {self.data_dir}: {result.stderr.strip()}"
            raise LocalPostgresError(f"{failure}\n{self._log_tail(offset)}")

    def _write_password_file(self) -> Path:
        # mkstemp creates the file 0600; it goes to the server's account, which must read it.
        descriptor, name = tempfile.mkstemp(dir=self.server_dir, prefix=".pwfile-")
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"{self.password}\n")
        os.chown(name, *self._owner())
        return Path(name)

    def _pg_ctl_stop(self, *, mode: str) -> None:
        command = [self._bin("pg_ctl"), "stop", "-w", "-s", "-m", mode, "-D", str(self.data_dir)]
        result = self._run(command)
        if result.returncode != 0:
            failure = f"pg_ctl stop failed for {self.data_dir}: {result.stderr.strip()}"
            raise LocalPostgresError(failure)

    def _running_port(self) -> int | None:
        # postmaster.pid: pid, data directory, start time, port, ... (one value per line).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def _log_tail(self, offset: int) -> str:
        with self.log_file.open("rb") as server_log:
            server_log.seek(offset)
            lines = server_log.read().decode(errors="replace").splitlines()
        return f"last lines of {self.log_file}:\n" + "\n".join(lines[-LOG_TAIL_LINES:])


def _traversable_by_others(path: Path) -> bool:
    """Whether every directory from ``/`` down to ``path`` lets other users through."""
    return all(directory.stat().st_mode & stat.S_IXOTH for directory in (path, *path.parents))


def _make_private_dir(path: Path, owner: tuple[int, int]) -> None:
    """Create ``path`` (or accept it) as a 0700 directory owned by ``owner``.

    In a shared place like /var/tmp, someone else could have created the path first, as a
    symlink or a directory of theirs; such a path is refused rather than used.
    """
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in {owner[0], os.geteuid()}:
        raise LocalPostgresError(f"{path} is not a directory of ours; remove it and retry")
    if (info.st_uid, info.st_gid) != owner:
        os.chown(path, *owner)
    # PostgreSQL refuses a data directory that group or others can access.
    path.chmod(0o700)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.postgres",
        description="Run a local PostgreSQL cluster with the distribution's server binaries.",
    )
    parser.add_argument(
        "command",
        choices=["start", "stop", "status", "conninfo"],
        help="start: create the cluster on first use, start it, create the --database(s); "
        "stop: stop it, whoever started it; status: exit code 0 if running, 3 if not; "
        "conninfo: print the connection string of each --database (default: postgres)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="default: %(default)s",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=default_port(),
        help="default: $LOCAL_POSTGRES_PORT or %(default)s",
    )
    parser.add_argument("--user", default="postgres", help="superuser role (default: %(default)s)")
    parser.add_argument("--password", help="the role's password, set when the cluster is created")
    parser.add_argument(
        "--database",
        action="append",
        default=[],
        metavar="NAME",
        help="start: create it if missing; conninfo: print its connection string (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")

    server = LocalPostgres(
        state_dir=args.state_dir,
        port=args.port,
        user=args.user,
        password=args.password,
    )
    try:
        if args.command == "start":
            server.start()
            for name in args.database:
                server.create_database(name)
            _output(_status_line(server, running=True, databases=args.database))
        elif args.command == "stop":
            # A CLI `stop` comes from another process than the `start`: stop whoever started it.
            server.stop(force=True)
            _output(_status_line(server, running=False))
        elif args.command == "status":
            running = server.is_running()
            _output(_status_line(server, running=running))
            return 0 if running else EXIT_NOT_RUNNING
        else:
            for name in args.database or ["postgres"]:
                _output(server.conninfo(name))
    except (LocalPostgresError, psycopg.Error) as error:
        log.error("%s", error)
        return 1
    return 0


def _status_line(server: LocalPostgres, *, running: bool, databases: Sequence[str] = ()) -> str:
    if not running:
        return f"PostgreSQL is not running (data in {server.data_dir})"
    created = f", databases: {', '.join(databases)}" if databases else ""
    where = f"data in {server.data_dir}, log {server.log_file}"
    return f"PostgreSQL running on {HOST}:{server.port}{created} ({where})"


def _output(line: str) -> None:
    print(line)


if __name__ == "__main__":
    sys.exit(main())
