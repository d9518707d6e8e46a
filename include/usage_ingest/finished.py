"""Which files in the incoming folder their writers have finished, and whether one changed since.

The rule: a file is finished when its name matches the pattern and it was last written at least
``settle_seconds`` ago. The safe writer renames a complete file into place, but a rename keeps the
mtime of the last write, and a slow writer appending in place is indistinguishable from a finished
file except by its mtime moving: so every file, renamed or not, must have settled. The price is
latency (``settle_seconds`` after the last write) and one assumption an operator must keep true:
no writer pauses longer than ``settle_seconds`` in the middle of a file. A file that changes after
planning anyway is refused (:class:`FileChanged`), never half-applied silently.

Names never matched: dotfiles (the safe writer's ``.<name>.part``), ``*.part``, ``*.tmp`` and our
own ``*.done`` marks; so are directories and symlinks leading out of the folder.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from include.common.failures import PermanentFailure
from include.usage_ingest.model import FinishedFile
from include.usage_ingest.settings import MARKED_SUFFIX, TEMPORARY_SUFFIXES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def find_finished(
    incoming: Path, pattern: str, *, settle_seconds: float, now: datetime
) -> list[FinishedFile]:
    """The finished files under ``incoming`` matching ``pattern``, oldest first (then by name)."""
    root = incoming.resolve()
    settled_before = now - timedelta(seconds=settle_seconds)
    found = []
    for path in root.glob(pattern):
        name = path.relative_to(root).as_posix()
        if not _eligible_name(name):
            continue
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                continue
            status = path.stat()
        except FileNotFoundError:  # moved away between listing and stat: not ours to take now
            continue
        if not stat.S_ISREG(status.st_mode):
            continue
        if mtime_of(status) <= settled_before:
            found.append(describe(path, name, status))
    return sorted(found, key=lambda file: (file.mtime, file.name))


def describe(path: Path, name: str | None = None, status: os.stat_result | None = None) -> FinishedFile:
    """``path`` as the scan describes it; ``name`` (relative to incoming) defaults to its file name."""
    status = status or path.stat()
    return FinishedFile(
        path=str(path),
        name=name or path.name,
        size=status.st_size,
        mtime=mtime_of(status),
        device=status.st_dev,
        inode=status.st_ino,
    )


class FileChanged(PermanentFailure):
    """A file changed after the scan found it finished: its writer had not finished with it."""


def file_changed(file: FinishedFile, status: os.stat_result | None = None) -> str | None:
    """What changed in ``file`` since the scan saw it (gone, replaced, size, mtime), if anything.

    ``status``: the file's stat as the caller has it open (``os.fstat``); by default its path's.
    """
    if status is None:
        try:
            status = os.stat(file.path)
        except FileNotFoundError:
            return f"{file.path} is gone"
    if (status.st_dev, status.st_ino) != (file.device, file.inode):
        return f"{file.path} is another file now (it was replaced)"
    if status.st_size != file.size:
        return f"{file.path} is {status.st_size} bytes, {file.size} when found finished"
    if (mtime := mtime_of(status)) != file.mtime:
        return f"{file.path} was written at {mtime.isoformat()}, {file.mtime.isoformat()} when found finished"
    return None


def mtime_of(status: os.stat_result) -> datetime:
    """A file's mtime in UTC to the microsecond, as PostgreSQL's timestamptz keeps it: computed
    from the nanoseconds, so that the scan and the store compare equal exactly."""
    return _EPOCH + timedelta(microseconds=status.st_mtime_ns // 1000)


def _eligible_name(name: str) -> bool:
    if any(part.startswith(".") for part in name.split("/")):
        return False
    return not name.endswith((*TEMPORARY_SUFFIXES, MARKED_SUFFIX))
