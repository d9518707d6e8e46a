"""Finding a drop's CSV files and reading byte ranges of them, on a local folder or S3 alike.

Everything goes through Airflow's object storage (``airflow.sdk.ObjectStoragePath``): a folder is
``file:///data/drop`` (or a plain absolute path), a bucket ``s3://bucket/prefix`` with an Airflow
connection id. One code path, so what the local tests prove holds on S3.

Which files: the pattern
------------------------
``pattern`` is a glob over paths relative to the source: ``*`` and ``?`` stay within one folder,
``**`` spans any number of folders (``**/*.csv``: every ``.csv`` at any depth, the top included).
A ``.zip`` archive is read as if it were a folder of the same name: its member ``q1/a.csv`` in
``2024/drop.zip`` is ``2024/drop.zip/q1/a.csv``, which ``**/*.csv`` matches and ``*.csv`` does
not. A pattern that matches the archive itself (``**/*.zip``) takes all its ``.csv`` members.
Members are streamed out of the archive where it lies, never unpacked to disk.

What identifies a file's content: the fingerprint
-------------------------------------------------
The ledger skips a file whose path, size and fingerprint it already holds, so a changed content
MUST change the fingerprint.

* S3: the object's ETag, from the listing (no extra request). Every upload gets a new one.
* Local: the SHA-256 of the content, computed in one streaming pass at discovery (about
  1.2 GB/s on one core here: 100 GB costs some 90 s per run). Size and modification time would
  be free, but ``cp -p``, ``rsync -t`` or an unpacked archive can give new content the old
  ones, and a changed file whose rows are skipped is data lost without a trace.
* A zip member: its archive's fingerprint and the member's CRC-32.

A file that changes while it is read is caught when its range has been read: the size, and the
ETag (S3) or modification time (local), are read again and compared with the ones at opening
(and the size and ETag with discovery's); a difference raises :class:`SourceChanged`, and the
chunk's transaction rolls back.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import re
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from include.csv_import.model import SourceFile

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

READ_BLOCK = 8 * 1024 * 1024
# Files read side by side when each must be read whole (hashing, planning): the reading
# (hashlib, NumPy) lets go of the GIL.
PARALLEL_READS = min(4, os.cpu_count() or 1)
_ZIP = ".zip"
# Separates a local file's content digest from the modification time it was read at.
_MTIME = "@mtime:"
_MEMBER = ".csv"


class SourceError(RuntimeError):
    """The source cannot be listed or holds nothing to import; the message says what to check."""


class SourceChanged(RuntimeError):
    """A file changed while (or since) it was read: what was read is not one version of it."""


def storage_path(url: str, conn_id: str | None) -> ObjectStoragePath:
    """The object-storage path of a source URL; a plain absolute path is a local folder."""
    from airflow.sdk import ObjectStoragePath

    if "://" not in url:
        url = "file://" + url
    return ObjectStoragePath(url, conn_id=conn_id)


def discover(source: str, pattern: str, *, conn_id: str | None) -> list[SourceFile]:
    """The CSV files under ``source`` that ``pattern`` matches, zip members included, by name.

    Raises :class:`SourceError` when the source does not exist, cannot be listed, or nothing
    matches: an empty drop is a mistake (a wrong prefix, a delivery that did not arrive) that
    the operator must see, not a run that succeeds with nothing.
    """
    root = storage_path(source, conn_id)
    matches = glob_matcher(pattern)
    where = f"source {source!r}" + (f" (connection {conn_id!r})" if conn_id else "")
    try:
        if not root.exists():
            raise SourceError(
                f"{where} does not exist: check the path or bucket and prefix"
                + (", and that the connection may list it" if conn_id else "")
            )
        # A worker process keeps its filesystem object, and s3fs its listings: list afresh.
        root.fs.invalidate_cache(root.path)
        listing: dict[str, dict[str, Any]] = root.fs.find(root.path, detail=True)
    except OSError as error:  # s3fs raises PermissionError, FileNotFoundError... for S3's answers
        raise SourceError(f"cannot list {where}: {error}; check the connection's credentials") from error

    base = root.path.rstrip("/") + "/"
    files: list[SourceFile] = []
    to_hash: list[tuple[str, str, dict[str, Any]]] = []
    for name, info in sorted(listing.items()):
        if info.get("type") != "file":
            continue
        relative = name[len(base) :] if name.startswith(base) else name
        url = f"{root.protocol}://{name}"
        if relative.lower().endswith(_ZIP):
            try:
                files.extend(_members(root, name, url, relative, info, matches))
            except zipfile.BadZipFile as error:
                # Its members cannot even be listed, so no reject can name them: stop, loudly.
                raise SourceError(
                    f"{url} in {where} is not a readable zip archive ({error}): replace it, "
                    "or leave it out with the pattern"
                ) from error
        elif matches(relative):
            to_hash.append((url, name, info))
    # Hashing a local drop reads all of it: files are hashed side by side.
    with ThreadPoolExecutor(PARALLEL_READS) as pool:
        fingerprints = pool.map(lambda found: _fingerprint(root, found[1], found[2]), to_hash)
        files.extend(
            SourceFile(url, None, int(info["size"]), fingerprint)
            for (url, _, info), fingerprint in zip(to_hash, fingerprints, strict=True)
        )
    if not files:
        raise SourceError(
            f"nothing in {where} matches the pattern {pattern!r} ({len(listing)} objects listed): "
            "check the pattern (`**/` spans folders; a .zip is matched as a folder of its members) "
            "and that the drop has arrived"
        )
    files.sort(key=lambda file: file.name)
    log.info("discovered %d CSV files in %s (%d bytes)", len(files), where, sum(f.size for f in files))
    return files


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a relative path matches ``pattern`` (``*``, ``?``, ``[…]`` in a folder; ``**`` across)."""
    pattern = pattern.strip().strip("/")
    if not pattern:
        raise SourceError("the pattern is empty: give a glob such as **/*.csv")
    parts = pattern.split("/")
    regex = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex.append(".*" if last else "(?:[^/]+/)*")
        else:
            regex.append(_glob_part(part) + ("" if last else "/"))
    compiled = re.compile("".join(regex), re.DOTALL)
    return lambda path: compiled.fullmatch(path) is not None


def _glob_part(part: str) -> str:
    out, i = [], 0
    while i < len(part):
        char = part[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (close := part.find("]", i + 2)) != -1:
            body = part[i + 1 : close]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _members(
    root: ObjectStoragePath,
    name: str,
    url: str,
    relative: str,
    info: dict[str, Any],
    matches: Callable[[str], bool],
) -> list[SourceFile]:
    whole_archive = matches(relative)
    fingerprint: str | None = None
    found = []
    with root.fs.open(name, "rb", block_size=READ_BLOCK) as handle, zipfile.ZipFile(handle) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            wanted = member.filename.lower().endswith(_MEMBER) if whole_archive else False
            if wanted or matches(f"{relative}/{member.filename}"):
                fingerprint = fingerprint or _fingerprint(root, name, info)
                found.append(
                    SourceFile(url, member.filename, member.file_size, f"{fingerprint}:{member.CRC:08x}")
                )
    return found


def _fingerprint(root: ObjectStoragePath, name: str, info: dict[str, Any]) -> str:
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return "etag:" + str(etag).strip('"')
    digest = hashlib.sha256()
    with root.fs.open(name, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    # The content's digest, and the modification time it was read at: a file edited later in
    # place, even to the same size, no longer matches when a chunk of it is opened. (A file only
    # touched since its import is read again, and replaces its own rows with the same ones.)
    return f"sha256:{digest.hexdigest()}{_MTIME}{info['mtime']!r}"


@dataclass(frozen=True)
class _Version:
    """What is compared before and after a read to tell that a file did not change meanwhile."""

    size: int
    etag: str | None
    mtime: float | None


def _version(root: ObjectStoragePath, path: str) -> _Version:
    # s3fs answers info() from its listing cache: a change made after the listing would go unseen.
    root.fs.invalidate_cache(path)
    info = root.fs.info(path)
    etag = info.get("ETag") or info.get("etag")
    return _Version(int(info["size"]), str(etag).strip('"') if etag else None, info.get("mtime"))


def open_chunk(file: SourceFile, start: int, end: int | None, *, conn_id: str | None) -> BinaryIO:
    """A buffered stream of bytes ``start`` to ``end`` (exclusive; None: the end) of ``file``.

    S3 is read with ranged GETs from ``start``; a zip member is decompressed from the archive
    as a stream, so it has no ranges: ``start`` must be 0. Memory: one read block (8 MiB) plus
    the stream's buffer, whatever the file's size. Reading to the end of the range checks that
    the file did not change (:class:`SourceChanged`): read it to the end before trusting it.
    """
    path = storage_path(file.url, conn_id)
    fs, location = path.fs, path.path
    before = _version(path, location)
    _expect_discovered(file, before)
    expected = (end if end is not None else file.size) - start
    # On S3 a block is one ranged GET: a small range (a sample) must not fetch 8 MiB.
    block = READ_BLOCK if file.member is not None else max(min(READ_BLOCK, expected), 64 * 1024)
    with contextlib.ExitStack() as opened:
        handle = opened.enter_context(fs.open(location, "rb", block_size=block))
        if file.member is not None:
            if start != 0 or end not in (None, file.size):
                raise ValueError(f"{file.name}: a zip member is read whole, not from byte {start}")
            archive = opened.enter_context(zipfile.ZipFile(handle))
            member = archive.getinfo(file.member)
            if (member.file_size, f"{member.CRC:08x}") != (file.size, file.fingerprint.rsplit(":", 1)[1]):
                raise SourceChanged(
                    f"{file.name} is not the member discovered (size or CRC differ): the archive was "
                    "replaced; rerun the import so that the new version is discovered and imported"
                )
            stream: BinaryIO = opened.enter_context(archive.open(member))  # type: ignore[assignment]
        else:
            handle.seek(start)
            stream = handle
        closing = opened.pop_all()
    check = functools.partial(_check_unchanged, file, path, location, before)
    return io.BufferedReader(_RangeReader(stream, expected, closing, check), buffer_size=1024 * 1024)  # type: ignore[return-value]


def _expect_discovered(file: SourceFile, now: _Version) -> None:
    if file.member is None and now.size != file.size:
        raise SourceChanged(
            f"{file.name} is {now.size} bytes, not the {file.size} discovered: it changed since "
            "discovery; rerun the import so that the new version is discovered and imported"
        )
    discovered = file.fingerprint if file.member is None else file.fingerprint.rsplit(":", 1)[0]
    # A member is checked by its own size and CRC once the archive is open, whatever the archive's mtime.
    edited = (
        _MTIME in discovered and now.mtime is not None and discovered.rsplit(_MTIME, 1)[1] != repr(now.mtime)
    )
    if file.member is None and edited:
        raise SourceChanged(
            f"{file.name} was modified since discovery: rerun the import so that the new version is "
            "discovered and imported"
        )
    if now.etag is not None and discovered != f"etag:{now.etag}":
        raise SourceChanged(
            f"{file.name} has a new ETag since discovery: it was replaced; rerun the import so "
            "that the new version is discovered and imported"
        )


def _check_unchanged(file: SourceFile, path: ObjectStoragePath, location: str, before: _Version) -> None:
    after = _version(path, location)
    if after != before:
        raise SourceChanged(
            f"{file.name} changed while it was read ({before} → {after}): nothing of it is kept; "
            "rerun the import once the file is complete"
        )


class _RangeReader(io.RawIOBase):
    """Exactly ``length`` bytes of ``stream``; checks the file once they have all been read."""

    def __init__(
        self, stream: BinaryIO, length: int, closing: contextlib.ExitStack, check: Callable[[], None]
    ) -> None:
        self._stream = stream
        self._remaining = length
        self._closing = closing
        self._check: Callable[[], None] | None = check

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._remaining <= 0:
            self._finish()
            return 0
        view = memoryview(buffer).cast("B")[: self._remaining]
        count = self._stream.readinto(view)  # type: ignore[attr-defined]
        if not count:
            # The file is shorter than when it was planned: it changed.
            self._finish()
            raise SourceChanged(f"the file ended {self._remaining} bytes early: it changed while it was read")
        self._remaining -= count
        return count

    def _finish(self) -> None:
        if self._check is not None:
            check, self._check = self._check, None
            check()

    def close(self) -> None:
        if not self.closed:
            self._closing.close()
        super().close()
