"""The usage writer's files hold what its manifest says, checked line by line by the reference rules."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devservices.usage_writer import Manifest, main, write_files
from include.usage_ingest.model import BadLineReason
from tests.include.usage_ingest.reference import ingest, split_lines


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    incoming = tmp_path_factory.mktemp("drop") / "incoming"
    return write_files(incoming, files=3, size_bytes=300_000, consumers=40, bad_share=0.05, seed=7)


def test_every_file_holds_exactly_what_the_manifest_says(drop: Manifest) -> None:
    grand: dict[int, int] = {}
    for entry in drop.files:
        data = (drop.incoming / entry.name).read_bytes()
        totals, bad, lines = ingest(data)
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry.size, entry.sha256)
        assert (lines, lines - len(bad)) == (entry.lines, entry.applied_lines)
        assert bad == drop.bad_lines(entry.name)
        assert {reason.value: sum(r == reason for _, r in bad) for reason in BadLineReason} == entry.bad_lines
        assert dict(totals) == drop.file_totals(entry.name)
        assert sum(totals.values()) == entry.amount
        for consumer, amount in totals.items():
            grand[consumer] = grand.get(consumer, 0) + amount
    assert grand == drop.totals()
    assert (len(grand), sum(grand.values())) == (drop.consumers, drop.amount)
    assert Manifest.load(drop.path) == drop


def test_the_files_have_every_bad_reason_and_the_odd_good_spellings(drop: Manifest) -> None:
    entry = drop.files[0]
    assert all(count > 0 for count in entry.bad_lines.values()), entry.bad_lines
    lines = split_lines((drop.incoming / entry.name).read_bytes())
    assert any(line.endswith(b"\r") and b" " in line for line in lines)  # CRLF
    assert any(line.startswith(b"000") for line in lines)  # leading zeros
    totals = drop.totals()
    assert 0 in totals
    assert 2**63 - 1 in totals
    assert max(totals.values()) >= 10**12


def test_every_other_file_lacks_its_final_newline(drop: Manifest) -> None:
    endings = [(drop.incoming / entry.name).read_bytes()[-1:] for entry in drop.files]
    assert [ending == b"\n" for ending in endings] == [True, False, True]


def test_the_same_seed_writes_the_same_bytes_in_either_mode_and_leaves_no_part_file(
    tmp_path: Path, drop: Manifest
) -> None:
    slow = write_files(
        tmp_path / "incoming",
        files=3,
        size_bytes=300_000,
        consumers=40,
        bad_share=0.05,
        seed=7,
        mode="in_place",
        in_place_chunk=50_000,
    )
    assert [(e.name, e.sha256) for e in slow.files] == [(e.name, e.sha256) for e in drop.files]
    assert sorted(p.name for p in drop.incoming.iterdir()) == [e.name for e in drop.files]


def test_a_given_mtime_is_set_on_every_file_and_sizes_are_close_to_asked(tmp_path: Path) -> None:
    arrival = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    manifest = write_files(tmp_path / "in", files=2, size_bytes=50_000, consumers=5, seed=1, mtime=arrival)
    for entry in manifest.files:
        path = tmp_path / "in" / entry.name
        assert path.stat().st_mtime == arrival.timestamp()
        assert 50_000 <= entry.size < 50_100


def test_an_empty_file_has_no_lines(tmp_path: Path) -> None:
    manifest = write_files(tmp_path / "in", files=1, size_bytes=0, consumers=1, seed=1)
    assert (manifest.files[0].size, manifest.files[0].lines, manifest.amount) == (0, 0, 0)


def test_the_command_line_writes_a_drop_and_prints_its_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "in"), "--files", "2", "--size", "20KB", "--consumers", "10"]) == 0
    printed = json.loads(capsys.readouterr().out)
    manifest = Manifest.load(Path(printed["manifest"]))
    assert len(manifest.files) == 2
    assert printed["amount"] == manifest.amount
