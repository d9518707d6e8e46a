"""Processed files leave the incoming folder: moved to the archive, or renamed in place to ``.done``.

Never deleted: a processed file is the evidence of what was applied. A file is disposed of only
after the store has marked it done, so a crash in between leaves a done file in incoming, which
the next scan finds as a duplicate of itself and disposes of (nothing is applied twice).

Disposal is a rename, and a rename keeps the file's identity (device, inode, size, mtime): that is how a
retry finds where an earlier attempt put the file, and how a file that a writer replaced under
the same name is left alone rather than archived unread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import datetime
from itertools import count
from pathlib import Path, PurePosixPath

from include.usage_ingest.finished import mtime_of
from include.usage_ingest.model import FinishedFile
from include.usage_ingest.settings import MARKED_SUFFIX, AfterProcessing

log = logging.getLogger(__name__)


def dispose(
    file: FinishedFile, *, incoming: Path, archive: Path, how: AfterProcessing, tag: int
) -> str | None:
    """Move ``file`` (as it was when planned) out of the pattern's reach.

    Returns where it is now: the archive path (``archive/<relative name>``, with ``.<tag>``
    before the suffix when that name is taken, then ``.<tag>.2``...) or ``<name>.done``
    (``<name>.<tag>.done``...). Idempotent: a file already disposed of is found by its identity
    and its place returned. None: its path holds another file now (or none), and the file is
    nowhere we would have put it.
    """
    source = Path(file.path)
    identity = (file.device, file.inode, file.size, file.mtime)
    relative = PurePosixPath(source.relative_to(incoming).as_posix())
    for candidate in _places(relative, incoming=incoming, archive=archive, how=how, tag=tag):
        found = _identity(candidate)
        if found is None:
            break
        if found == identity:
            return str(candidate)
    if _identity(source) != identity:
        log.warning("%s is not the file processed (gone or replaced since): left where it is", source)
        return None
    candidate.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, candidate)
    return str(candidate)


def _places(
    relative: PurePosixPath, *, incoming: Path, archive: Path, how: AfterProcessing, tag: int
) -> Iterator[Path]:
    # The file's names in order of preference; a later one only when the earlier ones are taken.
    if how is AfterProcessing.MARK:
        base = incoming / relative
        yield base.with_name(base.name + MARKED_SUFFIX)
        for n in count(1):
            yield base.with_name(f"{base.name}.{_tag(tag, n)}{MARKED_SUFFIX}")
    else:
        base = archive / relative
        yield base
        for n in count(1):
            yield base.with_name(f"{base.stem}.{_tag(tag, n)}{base.suffix}")


def _tag(tag: int, n: int) -> str:
    return str(tag) if n == 1 else f"{tag}.{n}"


def _identity(path: Path) -> tuple[int, int, int, datetime] | None:
    # With size and mtime: an inode freed by a deleted file may be reused by the next one.
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino, status.st_size, mtime_of(status)
