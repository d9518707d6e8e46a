"""Which files in the incoming folder their writers have finished, and whether one changed since.

The rule: a file is finished when its name matches the pattern and it was last written at least
``settle_seconds`` ago. The safe writer renames a complete file into place, but a rename keeps the
mtime of the last write, and a slow writer appending in place is indistinguishable from a finished
file except by its mtime moving: so every file, renamed or not, must have settled. The price is
latency (``settle_seconds`` after the last write) and one assumption an operator must keep true:
no writer pauses longer than ``settle_seconds`` in the middle of a file. A file that changes after
planning anyway is refused by the range task (``file_changed``), never half-applied silently.

Names never matched: dotfiles (the safe writer's ``.<name>.part``), ``*.part``, ``*.tmp`` and our
own ``*.done`` marks; so are directories and symlinks leading out of the folder.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from include.usage_ingest.model import FinishedFile
from include.usage_ingest.settings import MARKED_SUFFIX, TEMPORARY_SUFFIXES

if TYPE_CHECKING:
    from include.usage_ingest.store import RangeState

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
        mtime = mtime_of(status)
        if mtime <= settled_before:
            found.append(
                FinishedFile(
                    path=str(path),
                    name=name,
                    size=status.st_size,
                    mtime=mtime,
                    device=status.st_dev,
                    inode=status.st_ino,
                )
            )
    return sorted(found, key=lambda file: (file.mtime, file.name))


def file_changed(state: RangeState) -> str | None:
    """What changed in the file of ``state`` since it was planned (gone, size, mtime, inode), if anything."""
    try:
        status = os.stat(state.path)
    except FileNotFoundError:
        return f"{state.path} is gone"
    if (status.st_dev, status.st_ino) != (state.device, state.inode):
        return f"{state.path} is another file now (it was replaced)"
    if status.st_size != state.size:
        return f"{state.path} is {status.st_size} bytes, {state.size} when planned"
    if (mtime := mtime_of(status)) != state.mtime:
        return f"{state.path} was written at {mtime.isoformat()}, after planning ({state.mtime.isoformat()})"
    return None


def mtime_of(status: os.stat_result) -> datetime:
    """A file's mtime in UTC to the microsecond, as PostgreSQL's timestamptz keeps it: computed
    from the nanoseconds, so that the scan and the store compare equal exactly."""
    return _EPOCH + timedelta(microseconds=status.st_mtime_ns // 1000)


def _eligible_name(name: str) -> bool:
    if any(part.startswith(".") for part in name.split("/")):
        return False
    return not name.endswith((*TEMPORARY_SUFFIXES, MARKED_SUFFIX))
