"""Delete log files older than a cutoff from a log folder, then the directories they leave empty.

Written for Airflow's local ``[logging] base_log_folder`` (task logs, and the dag processor's
and scheduler's when they are kept there) but works on any folder, so tests use a temporary
one. The rules, each for a reason:

- age is a file's modification time: a log is written until its task ends, so its mtime is
  when it was last useful;
- only regular files are deleted, and only directories that are empty once the old files
  are gone *and* were themselves last modified before the cutoff: a task creates its
  directory a moment before its log file, and a fresh empty directory may be one of those;
- symbolic links are neither followed nor deleted: what they point at is not this folder's;
- the folder itself is never removed, even when empty.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXAMPLES = 5


@dataclass(slots=True)
class LogPurge:
    """What a purge deleted (or, in a dry run, would delete) under ``root``."""

    root: Path
    cutoff: datetime
    dry_run: bool
    files: int = 0
    bytes: int = 0
    directories: int = 0
    examples: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A few numbers for XCom and the task log; never the list of files."""
        return {
            "root": str(self.root),
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "files": self.files,
            "bytes": self.bytes,
            "directories": self.directories,
            "failures": len(self.failures),
        }


def purge_old_logs(root: Path, cutoff: datetime, *, dry_run: bool) -> LogPurge:
    """Delete files under ``root`` last modified before ``cutoff`` and prune emptied directories.

    A rerun with the same cutoff finds nothing left to delete. Files or directories that
    vanish or fill up while the walk runs (a concurrent task, another cleaner) are skipped;
    anything else that cannot be deleted is recorded in ``failures`` and the walk goes on, so
    one stubborn file does not keep every other old log on disk.
    """
    purge = LogPurge(root=root, cutoff=cutoff, dry_run=dry_run)
    if not root.is_dir():
        log.info("log folder %s does not exist: nothing to delete", root)
        return purge
    _purge_directory(root, cutoff.timestamp(), purge, is_root=True)
    verb = "would delete" if dry_run else "deleted"
    log.info(
        "%s %d log files (%d bytes) last modified before %s and %d emptied directories under %s",
        verb,
        purge.files,
        purge.bytes,
        cutoff.isoformat(),
        purge.directories,
        root,
    )
    for example in purge.examples:
        log.info("  e.g. %s", example)
    for failure in purge.failures[:EXAMPLES]:
        log.warning("could not delete %s", failure)
    return purge


def _purge_directory(directory: Path, cutoff: float, purge: LogPurge, *, is_root: bool = False) -> bool:
    """Purge ``directory``'s contents; True when the directory itself should go."""
    # Read before anything inside changes: deleting an entry bumps the directory's mtime.
    directory_mtime = directory.lstat().st_mtime
    kept = 0
    with os.scandir(directory) as scan:
        entries = list(scan)
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            kept += 1
        elif entry.is_dir(follow_symlinks=False):
            if not (_purge_directory(path, cutoff, purge) and _remove_directory(path, purge)):
                kept += 1
        elif entry.is_file(follow_symlinks=False):
            if not _remove_file_if_old(path, entry.stat(follow_symlinks=False), cutoff, purge):
                kept += 1
        else:
            kept += 1  # sockets, pipes: not log files
    return not is_root and kept == 0 and directory_mtime < cutoff


def _remove_file_if_old(path: Path, stat: os.stat_result, cutoff: float, purge: LogPurge) -> bool:
    if stat.st_mtime >= cutoff:
        return False
    if not purge.dry_run:
        try:
            path.unlink()
        except FileNotFoundError:
            return True  # someone else deleted it: gone all the same, but not by us
        except OSError as error:
            purge.failures.append(f"{path}: {error.strerror}")
            return False
    purge.files += 1
    purge.bytes += stat.st_size
    if len(purge.examples) < EXAMPLES:
        purge.examples.append(str(path.relative_to(purge.root)))
    return True


def _remove_directory(path: Path, purge: LogPurge) -> bool:
    if not purge.dry_run:
        try:
            path.rmdir()
        except FileNotFoundError:
            return True
        except OSError as error:
            # A task wrote into it since the walk looked: it is in use again, keep it.
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                purge.failures.append(f"{path}/: {error.strerror}")
            return False
    purge.directories += 1
    return True
