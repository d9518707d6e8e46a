"""Processed files leave incoming by a rename: to the archive, or to <name>.done; idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.usage_ingest.archive import dispose
from include.usage_ingest.finished import describe
from include.usage_ingest.model import FinishedFile
from include.usage_ingest.settings import AfterProcessing


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    incoming, archive = tmp_path / "incoming", tmp_path / "archive"
    incoming.mkdir()
    return incoming, archive


def drop(incoming: Path, name: str, content: bytes = b"1 2\n") -> tuple[Path, FinishedFile]:
    """Write the file as the safe writer does (a temporary name, renamed into place)."""
    path = incoming / name
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(content)
    partial.rename(path)
    return path, describe(path, name)


def archive(folders: tuple[Path, Path], file: FinishedFile, tag: int = 7) -> str | None:
    incoming, archive_folder = folders
    return dispose(file, incoming=incoming, archive=archive_folder, how=AfterProcessing.ARCHIVE, tag=tag)


def test_a_file_moves_to_the_archive_keeping_its_relative_name(folders) -> None:
    incoming, archive_folder = folders
    path, file = drop(incoming, "2026/12/a.usage", b"content")

    where = archive(folders, file)

    assert where == str(archive_folder / "2026/12/a.usage")
    assert Path(where).read_bytes() == b"content"
    assert not path.exists()


def test_disposing_again_returns_where_the_file_already_is(folders) -> None:
    incoming, _ = folders
    _, file = drop(incoming, "a.usage")
    first = archive(folders, file)

    assert archive(folders, file) == first


def test_a_name_taken_in_the_archive_gets_the_tag_before_the_suffix(folders) -> None:
    incoming, archive_folder = folders
    _, older = drop(incoming, "a.usage", b"older")
    archive(folders, older, tag=1)
    _, newer = drop(incoming, "a.usage", b"newer")

    assert archive(folders, newer, tag=2) == str(archive_folder / "a.2.usage")
    _, third = drop(incoming, "a.usage", b"third")
    assert archive(folders, third, tag=2) == str(archive_folder / "a.2.2.usage")
    # A retry of the second finds it where it went, not a new place.
    assert archive(folders, newer, tag=2) == str(archive_folder / "a.2.usage")
    assert (archive_folder / "a.usage").read_bytes() == b"older"


def test_mark_renames_in_place_to_done(folders) -> None:
    incoming, archive_folder = folders
    _, file = drop(incoming, "sub/a.usage")
    mark = dict(incoming=incoming, archive=archive_folder, how=AfterProcessing.MARK, tag=3)

    assert dispose(file, **mark) == str(incoming / "sub/a.usage.done")
    assert dispose(file, **mark) == str(incoming / "sub/a.usage.done")
    _, again = drop(incoming, "sub/a.usage")
    assert dispose(again, **mark) == str(incoming / "sub/a.usage.3.done")
    assert not archive_folder.exists()


def test_a_file_replaced_by_a_writer_is_left_where_it_is(folders) -> None:
    incoming, archive_folder = folders
    path, processed = drop(incoming, "a.usage", b"processed")
    drop(incoming, "a.usage", b"new, unread")

    assert archive(folders, processed) is None
    assert path.read_bytes() == b"new, unread"
    assert not archive_folder.exists()
