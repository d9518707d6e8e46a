"""The finished-file rule: a matching name, last written at least settle_seconds ago."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.usage_ingest.finished import describe, file_changed, find_finished, mtime_of

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def write(path: Path, content: bytes = b"1 2\n", *, age_s: float = 3600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    stamp = (NOW - timedelta(seconds=age_s)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def names(incoming: Path, pattern: str = "*.usage", settle_seconds: float = 30) -> list[str]:
    return [f.name for f in find_finished(incoming, pattern, settle_seconds=settle_seconds, now=NOW)]


def test_a_file_is_finished_once_its_last_write_is_settle_seconds_old(tmp_path: Path) -> None:
    write(tmp_path / "old.usage", age_s=30)
    write(tmp_path / "fresh.usage", age_s=29)

    assert names(tmp_path) == ["old.usage"]
    assert names(tmp_path, settle_seconds=0) == ["old.usage", "fresh.usage"]


def test_files_come_oldest_first_then_by_name(tmp_path: Path) -> None:
    write(tmp_path / "b.usage", age_s=100)
    write(tmp_path / "a.usage", age_s=100)
    write(tmp_path / "c.usage", age_s=200)

    assert names(tmp_path) == ["c.usage", "a.usage", "b.usage"]


def test_writer_temporaries_marks_dotfiles_and_directories_never_match(tmp_path: Path) -> None:
    write(tmp_path / ".x.usage.part")
    write(tmp_path / ".hidden.usage")
    write(tmp_path / "x.usage.part")
    write(tmp_path / "x.usage.tmp")
    write(tmp_path / "x.usage.done")
    write(tmp_path / ".partial" / "y.usage")
    (tmp_path / "folder.usage").mkdir()
    write(tmp_path / "good.usage")

    assert names(tmp_path, "**/*") == ["good.usage"]


def test_subfolders_with_double_star_and_names_relative_to_incoming(tmp_path: Path) -> None:
    write(tmp_path / "2026" / "12" / "a.usage")
    write(tmp_path / "b.usage", age_s=7200)

    assert names(tmp_path, "**/*.usage") == ["b.usage", "2026/12/a.usage"]
    assert names(tmp_path) == ["b.usage"]


def test_a_symlink_leading_out_of_incoming_is_ignored(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    outside = write(tmp_path / "secret.usage")
    write(incoming / "inside.usage")
    (incoming / "escape.usage").symlink_to(outside)
    (incoming / "alias.usage").symlink_to(incoming / "inside.usage")

    assert sorted(names(incoming)) == ["alias.usage", "inside.usage"]


def test_a_finished_file_carries_size_mtime_and_identity(tmp_path: Path) -> None:
    path = write(tmp_path / "a.usage", b"1 2\n3 4\n")
    [found] = find_finished(tmp_path, "*.usage", settle_seconds=30, now=NOW)
    status = path.stat()

    assert (found.path, found.size, found.device, found.inode) == (
        str(path),
        8,
        status.st_dev,
        status.st_ino,
    )
    assert found.mtime == NOW - timedelta(hours=1)
    assert found.mtime.tzinfo is not None


def test_an_unchanged_file_has_no_change(tmp_path: Path) -> None:
    assert file_changed(describe(write(tmp_path / "a.usage"))) is None


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda p: p.unlink(), "is gone"),
        (lambda p: p.write_bytes(b"1 2\n5 6\n"), "bytes, 4 when found finished"),
        (lambda p: os.utime(p, (NOW.timestamp(), NOW.timestamp())), "when found finished"),
    ],
    ids=["deleted", "appended", "touched"],
)
def test_a_changed_file_says_what_changed(tmp_path: Path, change, said: str) -> None:
    path = write(tmp_path / "a.usage")
    planned = describe(path)
    change(path)

    assert said in file_changed(planned)


def test_a_file_replaced_under_the_same_name_is_another_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.usage")
    planned = describe(path)
    replacement = write(tmp_path / ".a.usage.part")
    replacement.rename(path)

    assert "another file" in file_changed(replace(planned, mtime=mtime_of(path.stat())))
