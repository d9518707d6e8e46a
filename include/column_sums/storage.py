"""Where a file to sum is read from: a folder on the workers' disk, or S3, as one forward stream.

A location is ``s3://bucket/key`` (read through the Amazon provider's ``S3Hook`` and a
connection) or a path relative to the configured local root. :func:`open_source` opens either
and gives a binary stream for :func:`include.column_sums.sums.sum_columns`, which reads it once
and never seeks, so neither kind is ever held whole in memory.

Local paths: whoever submits a location must not read anything outside the root, so a path is
resolved (``..`` and every symbolic link followed) and refused with ``outside_root`` unless the
result lies inside the resolved root; comparing path components, not strings, so a sibling
``root-other`` is not "inside" ``root``. A link that stays inside is followed. The file is then
opened with ``O_NOFOLLOW``, so a last component swapped for a link between the check and the
open is refused too; a folder higher up swapped in that instant is not caught, which takes
write access to the root, and with it the power to put any content there anyway. Messages
name the location as given, never the root: they go back to the caller.

S3: :mod:`include.common.s3_stream` resumes a cut download from the last byte and raises
``ObjectChanged`` for an object replaced during the read; here that becomes the problem
``source_changed``. A local file written to in place during the read is caught the same way,
by its size and modification time compared after the read with those at opening. What stays
an exception, not a problem: S3 failing past the retries (``S3ReadFailed``), which the task's
own retry should meet, not the person who asked.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from include.column_sums.problems import (
    InvalidLocation,
    NotFound,
    NotReadable,
    OutsideRoot,
    SourceChanged,
    StorageNotConfigured,
)
from include.common.s3_stream import ObjectChanged, ObjectMissing, ResumePolicy, S3ObjectStream

log = logging.getLogger(__name__)

S3_SCHEME = "s3://"
READ_BUFFER = 1 << 20  # the compute reads 1 MiB blocks: one buffer's worth per read
DEFAULT_POLICY = ResumePolicy()


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"


@dataclass(frozen=True)
class LocalLocation:
    path: str  # relative to the root, as given


@dataclass(frozen=True)
class SourceInfo:
    """What was opened: for the result and the logs (never the root's own path)."""

    location: str  # as given
    size: int
    version: str  # the ETag (S3), or the modification time in ns (local) at opening


@dataclass
class OpenSource:
    stream: BinaryIO
    info: SourceInfo
    _s3: S3ObjectStream | None = None

    @property
    def resumes(self) -> int:
        """How often a cut S3 download was picked up where it stopped (0 for a local file)."""
        return self._s3.resumes if self._s3 is not None else 0


def parse_location(location: str) -> S3Location | LocalLocation:
    """The kind of a location, checked for form only (cheap: fit for validating a request)."""
    if not location or not location.strip() or "\x00" in location:
        raise InvalidLocation("the location is empty: give s3://bucket/key or a path under the local root")
    if location.startswith(S3_SCHEME):
        bucket, _, key = location.removeprefix(S3_SCHEME).partition("/")
        if not bucket or not key or key.endswith("/"):
            raise InvalidLocation(f"{location!r} names no object: give s3://bucket/path/to/file.csv")
        return S3Location(bucket, key)
    if "://" in location:
        raise InvalidLocation(
            f"{location!r}: only s3://bucket/key or a path relative to the local root can be read"
        )
    return LocalLocation(location)


@contextmanager
def open_source(
    location: str,
    *,
    local_root: Path | None,
    aws_conn_id: str | None,
    policy: ResumePolicy = DEFAULT_POLICY,
) -> Iterator[OpenSource]:
    """Open ``location`` for one forward read; problems with it raise a :class:`CsvProblem`.

    ``local_root`` and ``aws_conn_id`` are the deployment's settings; either may be ``None``
    when that kind of storage is not offered, and a location of that kind is then refused
    with ``storage_not_configured``.
    """
    parsed = parse_location(location)
    if isinstance(parsed, S3Location):
        with _open_s3(parsed, aws_conn_id, policy) as source:
            yield source
    else:
        with _open_local(parsed, local_root) as source:
            yield source


def resolve_local(location: str, local_root: Path) -> Path:
    """The file ``location`` names under ``local_root``; :class:`OutsideRoot` if it leads out."""
    root = local_root.resolve()
    if not root.is_dir():
        raise StorageNotConfigured(
            "the local folder files are read from does not exist on this worker: the operator must "
            "create it or correct the setting"
        )
    try:
        # An absolute path replaces the root in the join: it is checked like any other.
        resolved = (root / location).resolve()
    except (RuntimeError, OSError) as error:  # a loop of symbolic links, a name too long
        raise InvalidLocation(f"{location!r} cannot be resolved ({error}): give a plain file path") from error
    if not resolved.is_relative_to(root):
        log.warning("refused %r: it resolves outside the local root %s", location, root)
        raise OutsideRoot(
            f"{location!r} leads outside the folder files are read from (through '..', an absolute "
            "path or a symbolic link): give a path relative to that folder that stays inside it"
        )
    return resolved


@contextmanager
def _open_local(location: LocalLocation, local_root: Path | None) -> Iterator[OpenSource]:
    if local_root is None:
        raise StorageNotConfigured(
            f"{location.path!r}: reading from local disk is not enabled on this deployment; "
            "use an s3:// location, or ask the operator to configure a local root"
        )
    path = resolve_local(location.path, local_root)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError as error:
        raise NotFound(
            f"{location.path!r} does not exist: check the name and that the upload finished"
        ) from error
    except PermissionError as error:
        raise NotReadable(
            f"{location.path!r} cannot be read by the workers: its owner must make it readable"
        ) from error
    except OSError as error:
        if error.errno == errno.ELOOP:  # the last component became a link after the check
            raise OutsideRoot(
                f"{location.path!r} is a symbolic link that changed while it was opened"
            ) from error
        raise
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise NotFound(f"{location.path!r} is a folder or a device, not a file: name a CSV file")
    with os.fdopen(fd, "rb", buffering=READ_BUFFER) as stream:
        info = SourceInfo(location.path, opened.st_size, str(opened.st_mtime_ns))
        yield OpenSource(stream, info)
        now = os.fstat(fd)
        if (now.st_size, now.st_mtime_ns) != (opened.st_size, opened.st_mtime_ns):
            raise SourceChanged(
                f"{location.path!r} was written to while it was read (size {opened.st_size} → "
                f"{now.st_size} bytes): submit it again once it is no longer being written"
            )


@contextmanager
def _open_s3(location: S3Location, aws_conn_id: str | None, policy: ResumePolicy) -> Iterator[OpenSource]:
    if aws_conn_id is None:
        raise StorageNotConfigured(
            f"{location.url}: reading from S3 is not enabled on this deployment; ask the operator "
            "to configure an AWS connection"
        )
    try:
        raw = S3ObjectStream(_s3_client(aws_conn_id), location.bucket, location.key, policy=policy)
    except ObjectMissing as error:
        raise NotFound(f"{location.url} does not exist: check the bucket and key") from error
    with io.BufferedReader(raw, READ_BUFFER) as stream:
        try:
            yield OpenSource(stream, SourceInfo(location.url, raw.size, raw.etag), raw)
        except ObjectChanged as error:
            raise SourceChanged(
                f"{location.url} was replaced or deleted while it was read; nothing of the two "
                "versions was mixed: submit it again once the upload is complete"
            ) from error
    if raw.resumes:
        log.info("%s: read whole after %d resumed downloads", location.url, raw.resumes)


def _s3_client(aws_conn_id: str) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id).get_conn()
