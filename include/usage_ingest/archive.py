"""Processed files leave the incoming folder: moved to the archive, or renamed in place to ``.done``.

Never deleted: a processed file is the evidence of what was applied. A file is disposed of only
after the store has marked it done, so a crash in between leaves a done file in incoming, which
the next scan finds as a duplicate of itself and disposes of (nothing is applied twice).

Disposal is a rename, and a rename keeps the file's identity (device, inode): that is how a
retry finds where an earlier attempt put the file, and how a file that a writer replaced under
the same name is left alone rather than archived unread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from itertools import count
from pathlib import Path, PurePosixPath

from include.usage_ingest.settings import MARKED_SUFFIX, AfterProcessing

log = logging.getLogger(__name__)


def dispose(
    path: str | Path,
    *,
    incoming: Path,
    archive: Path,
    how: AfterProcessing,
    tag: int,
    identity: tuple[int, int],
) -> str | None:
    """Move the file ``identity`` (device, inode) found at ``path`` out of the pattern's reach.

    Returns where it is now: the archive path (``archive/<relative name>``, with ``.<tag>``
    before the suffix when that name is taken) or ``<name>.done`` (``<name>.<tag>.done``, then
    ``.<tag>.2``... when taken). Idempotent: a file already disposed of is found by its identity
    and its place returned. None: ``path`` no longer holds the file, and it is nowhere we put it.
    """
    source = Path(path)
    relative = PurePosixPath(source.relative_to(incoming).as_posix())
    for candidate in _places(relative, incoming=incoming, archive=archive, how=how, tag=tag):
        try:
            found = candidate.lstat()
        except FileNotFoundError:
            break
        if (found.st_dev, found.st_ino) == identity:
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


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino
