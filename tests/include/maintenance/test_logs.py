"""Deleting old log files from a log folder: what goes, what stays, and that a rerun is a no-op."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.maintenance.logs import EXAMPLES, purge_old_logs

CUTOFF = datetime(2026, 10, 24, 3, 0, tzinfo=UTC)
OLD = (CUTOFF - timedelta(days=1)).timestamp()
NEW = (CUTOFF + timedelta(hours=1)).timestamp()


def touch(path: Path, mtime: float, content: str = "line\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    os.utime(path, (mtime, mtime))
    return path


def age_directories(root: Path, mtime: float = OLD) -> None:
    """Set every directory's mtime; deepest first, as touching a child bumps its parent."""
    for directory in sorted((p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True):
        os.utime(directory, (mtime, mtime))


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    run = root / "dag_id=etl" / "run_id=scheduled__2026-09-01"
    touch(run / "task_id=extract" / "attempt=1.log", OLD, "x" * 100)
    touch(run / "task_id=extract" / "attempt=2.log", OLD, "x" * 50)
    touch(run / "task_id=load" / "attempt=1.log", NEW)
    touch(root / "dag_processor" / "2026-09-01" / "dags-folder" / "etl.py.log", OLD, "x" * 7)
    touch(root / "scheduler" / "2026-10-30" / "etl.py.log", NEW)
    age_directories(root)
    return root


def test_files_older_than_the_cutoff_go_and_newer_ones_stay(logs: Path) -> None:
    purge = purge_old_logs(logs, CUTOFF, dry_run=False)

    assert tree(logs) == {
        "dag_id=etl",
        "dag_id=etl/run_id=scheduled__2026-09-01",
        "dag_id=etl/run_id=scheduled__2026-09-01/task_id=load",
        "dag_id=etl/run_id=scheduled__2026-09-01/task_id=load/attempt=1.log",
        "scheduler",
        "scheduler/2026-10-30",
        "scheduler/2026-10-30/etl.py.log",
    }
    assert (purge.files, purge.bytes) == (3, 157)
    # task_id=extract, dag_processor/2026-09-01/dags-folder, its parent, and dag_processor
    assert purge.directories == 4


def test_a_file_modified_exactly_at_the_cutoff_is_kept(tmp_path: Path) -> None:
    at_cutoff = touch(tmp_path / "attempt=1.log", CUTOFF.timestamp())

    purge = purge_old_logs(tmp_path, CUTOFF, dry_run=False)

    assert at_cutoff.exists()
    assert purge.files == 0


def test_the_log_folder_itself_is_never_removed(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    touch(root / "old.log", OLD)
    os.utime(root, (OLD, OLD))

    purge_old_logs(root, CUTOFF, dry_run=False)

    assert root.is_dir()
    assert tree(root) == set()


def test_a_fresh_empty_directory_is_left_for_the_task_about_to_log_into_it(logs: Path) -> None:
    fresh = logs / "dag_id=etl" / "run_id=manual__2026-11-22" / "task_id=extract"
    fresh.mkdir(parents=True)
    old_and_empty = logs / "dag_id=etl" / "run_id=manual__2026-01-01"
    old_and_empty.mkdir()
    os.utime(old_and_empty, (OLD, OLD))

    purge_old_logs(logs, CUTOFF, dry_run=False)

    assert fresh.is_dir()
    assert not old_and_empty.exists()


def test_symlinks_are_neither_followed_nor_deleted(tmp_path: Path) -> None:
    root, outside = tmp_path / "logs", tmp_path / "elsewhere"
    precious = touch(outside / "data" / "old.log", OLD)
    touch(root / "old.log", OLD)
    (root / "mounted").symlink_to(outside, target_is_directory=True)
    (root / "link.log").symlink_to(precious)
    os.utime(root / "link.log", (OLD, OLD), follow_symlinks=False)
    age_directories(outside)

    purge = purge_old_logs(root, CUTOFF, dry_run=False)

    assert precious.exists()
    assert (root / "mounted").is_symlink()
    assert (root / "link.log").is_symlink()
    assert purge.files == 1


def test_a_dry_run_deletes_nothing_and_reports_what_a_real_run_deletes(logs: Path) -> None:
    before = tree(logs)

    dry = purge_old_logs(logs, CUTOFF, dry_run=True)

    assert tree(logs) == before
    real = purge_old_logs(logs, CUTOFF, dry_run=False)
    assert dry.summary() | {"dry_run": False} == real.summary()
    assert dry.examples == real.examples


def test_a_rerun_with_the_same_cutoff_deletes_nothing_more(logs: Path) -> None:
    purge_old_logs(logs, CUTOFF, dry_run=False)
    after_first = tree(logs)

    rerun = purge_old_logs(logs, CUTOFF, dry_run=False)

    assert tree(logs) == after_first
    assert (rerun.files, rerun.bytes, rerun.directories) == (0, 0, 0)


def test_a_missing_log_folder_is_nothing_to_delete(tmp_path: Path) -> None:
    purge = purge_old_logs(tmp_path / "absent", CUTOFF, dry_run=False)

    assert (purge.files, purge.directories, purge.failures) == (0, 0, [])


def test_the_summary_stays_small_however_many_files_go(tmp_path: Path) -> None:
    for number in range(50):
        touch(tmp_path / f"dag_id=d{number}" / "attempt=1.log", OLD)
    age_directories(tmp_path)

    purge = purge_old_logs(tmp_path, CUTOFF, dry_run=False)

    assert purge.files == 50
    assert len(purge.examples) == EXAMPLES
    assert set(purge.summary()) == {"root", "cutoff", "dry_run", "files", "bytes", "directories", "failures"}


def test_a_file_that_cannot_be_deleted_is_reported_and_the_rest_still_go(
    logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stubborn = logs / "dag_id=etl" / "run_id=scheduled__2026-09-01" / "task_id=extract" / "attempt=1.log"
    unlink = Path.unlink

    def refuse(self: Path, missing_ok: bool = False) -> None:
        if self == stubborn:
            raise PermissionError(13, "Permission denied")
        unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)

    purge = purge_old_logs(logs, CUTOFF, dry_run=False)

    assert stubborn.exists()
    assert purge.failures == [f"{stubborn}: Permission denied"]
    assert purge.files == 2
    assert stubborn.parent.is_dir(), "a directory still holding a file must stay"
