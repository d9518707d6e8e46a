"""The demo drop's generator: its manifest is what an independent CSV reader finds in its files.

Every check reads the files with Python's ``csv`` module or pandas and its own type predicates,
never with the generator's counters, so a manifest that drifts from the bytes fails here before
it misleads a test of the importer.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from devservices.energy_certificates import MANIFEST, generate
from devservices.environment import PROJECT_ROOT
from devservices.sizes import parse_size
from include.csv_import.model import RejectReason

SIZE = 3_000_000
ARGUMENTS = {"size": SIZE, "files": 8, "defects": 0.01, "zipped": 0.25, "seed": 3}
INT32 = 2**31
# Independent of the generator: what each type's values must look like once a reader accepts them.
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_INTEGER = re.compile(r"-?\d+")


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("drop")
    generate(out, **ARGUMENTS)
    return out, json.loads((out / MANIFEST).read_text())


def file_bytes(out: Path, entry: dict[str, Any]) -> bytes:
    if entry["member"] is None:
        return (out / entry["path"]).read_bytes()
    with zipfile.ZipFile(out / entry["path"]) as archive:
        return archive.read(entry["member"])


def fits(value: str, type_: str) -> bool:
    if value == "" or type_ == "text":
        return True
    try:
        if type_ in ("integer", "bigint"):
            return bool(_INTEGER.fullmatch(value)) and (type_ == "bigint" or abs(int(value)) < INT32)
        if type_ == "numeric":
            return bool(_NUMBER.fullmatch(value))
        if type_ == "date":
            return len(value) == 10 and bool(date.fromisoformat(value))
        if type_ == "timestamptz":
            return datetime.fromisoformat(value).tzinfo is not None
        if type_ == "boolean":
            return value in ("true", "false")
    except ValueError:
        return False
    raise AssertionError(f"no predicate for {type_}")


def read_records(
    data: bytes, entry: dict[str, Any]
) -> tuple[list[str] | None, list[tuple[int, list[str]]], int]:
    """(header, [(physical line the record starts on, fields)], physical lines) as csv reads them."""
    text = data.decode(entry["encoding"], errors="surrogateescape")
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=entry["delimiter"])
    records, line = [], 0
    for fields in reader:
        records.append((line + 1, fields))
        line = reader.line_num
    header = None
    if entry["header"] and records:
        header = records.pop(0)[1]
    return header, records, line


def judge(fields: list[str], columns: list[str], types: dict[str, str]) -> tuple[str, str | None] | None:
    """Why a record cannot be imported, or None when it can."""
    if any("\udc80" <= char <= "\udcff" for field in fields for char in field):
        return "invalid_encoding", None
    if len(fields) != len(columns):
        return "wrong_field_count", None
    for name, value in zip(columns, fields, strict=True):
        if not fits(value, types[name]):
            return "type_mismatch", name
    return None


def test_the_manifest_agrees_with_what_a_csv_reader_finds_in_every_file(drop) -> None:
    out, manifest = drop
    types = {column["name"]: column["type"] for column in manifest["columns"]}

    for entry in manifest["files"]:
        data = file_bytes(out, entry)
        assert len(data) == entry["bytes"], entry["path"]
        header, records, lines = read_records(data, entry)
        if entry["file_reject"]:
            continue
        assert header == entry["columns"], entry["path"]
        assert len(records) == entry["records"], entry["path"]
        assert lines == entry["physical_lines"], entry["path"]
        found = {}
        for line, fields in records:
            verdict = judge(fields, entry["columns"], types)
            if verdict:
                found[line] = verdict
        # With standard quoting an odd number of quote characters means the file ends inside one.
        if data.count(b'"') % 2:
            found[records[-1][0]] = ("unterminated_quote", None)
        expected = {reject["line"]: (reject["reason"], reject["column"]) for reject in entry["rejects"]}
        assert found == expected, entry["path"]
        assert entry["good_rows"] == len(records) - len(found), entry["path"]


def test_the_files_rejected_whole_are_an_empty_file_and_one_whose_first_line_is_no_header(drop) -> None:
    out, manifest = drop
    rejected = {entry["file_reject"]["reason"]: entry for entry in manifest["files"] if entry["file_reject"]}

    assert set(rejected) == {"empty_file", "header_mismatch"}
    assert file_bytes(out, rejected["empty_file"]) == b""
    legacy = rejected["header_mismatch"]
    _, records, _ = read_records(file_bytes(out, legacy), legacy)
    headers = {tuple(entry["columns"]) for entry in manifest["files"] if entry["header"]}
    first_line = records[0][1]
    assert not set(first_line) & {column["name"] for column in manifest["columns"]}
    assert all(len(first_line) != len(header) for header in headers)
    assert len(records) == legacy["records"] > 0
    assert legacy["good_rows"] == 0


def test_every_kind_of_defect_is_present_and_named_as_the_importer_names_it(drop) -> None:
    _, manifest = drop
    totals = manifest["totals"]

    # Not generated: a damaged zip member, and a line over the reader's 4 Mi characters (the reader's
    # own tests make both).
    not_generated = {RejectReason.UNREADABLE_FILE.value, RejectReason.LINE_TOO_LONG.value}
    expected = {reason.value for reason in RejectReason} - not_generated
    assert set(totals["rejects_by_reason"]) == expected
    assert totals["records"] == totals["good_rows"] + totals["rejected_records"]
    line_rejects = sum(len(entry["rejects"]) for entry in manifest["files"])
    assert 0.005 * totals["records"] < line_rejects < 0.02 * totals["records"]


def test_the_drop_varies_as_real_drops_do_without_that_being_a_defect(drop) -> None:
    out, manifest = drop
    files = manifest["files"]
    base = [column["name"] for column in manifest["columns"][:-1]]
    texts = {
        (entry["path"], entry["member"]): file_bytes(out, entry).decode(entry["encoding"], "surrogateescape")
        for entry in files
    }

    assert {entry["delimiter"] for entry in files} == {",", ";"}
    assert any("\r\n" in text for text in texts.values())
    assert sum(text.startswith("\ufeff") for text in texts.values()) == 1
    [cp1252] = [entry for entry in files if entry["encoding"] == "cp1252"]
    raw = file_bytes(out, cp1252)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert re.search("[éëñüÅ]", raw.decode("cp1252", "surrogateescape"))
    assert any(len(entry["columns"]) == len(base) + 1 for entry in files)
    assert any(len(entry["columns"]) == len(base) - 1 for entry in files if entry["header"])
    archives = Counter(entry["path"] for entry in files if entry["member"])
    assert max(archives.values(), default=0) == 2
    assert any(entry["path"].startswith("older/") for entry in files)
    # Free text with the three things that need quoting, quoted.
    notes = [
        fields[-1]
        for entry in files
        if entry["header"] and not entry["file_reject"]
        for _, fields in read_records(file_bytes(out, entry), entry)[1]
    ]
    assert any("\n" in note for note in notes)
    assert any('"' in note for note in notes)
    assert any("," in note for note in notes)
    # The boolean's only spellings, for an inference to call it boolean.
    flags = {
        fields[entry["columns"].index("mains_gas_flag")]
        for entry in files
        if entry["header"] and not entry["file_reject"]
        for _, fields in read_records(file_bytes(out, entry), entry)[1]
        if len(fields) == len(entry["columns"])
    }
    assert {"true", "false", ""} <= flags <= {"true", "false", "", "maybe"}


def test_the_same_arguments_give_byte_identical_files_and_another_seed_does_not(drop, tmp_path: Path) -> None:
    out, _ = drop
    again, other = tmp_path / "again", tmp_path / "other"

    generate(again, **ARGUMENTS)
    generate(other, **(ARGUMENTS | {"seed": ARGUMENTS["seed"] + 1}))

    paths = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    assert paths == sorted(path.relative_to(again) for path in again.rglob("*") if path.is_file())
    for path in paths:
        assert (again / path).read_bytes() == (out / path).read_bytes(), path
    assert (other / "certificates-000.csv").read_bytes() != (out / "certificates-000.csv").read_bytes()


def test_the_drop_is_the_size_asked_for_within_ten_percent(drop) -> None:
    out, manifest = drop
    csv_bytes = sum(len(file_bytes(out, entry)) for entry in manifest["files"])

    assert csv_bytes == manifest["totals"]["bytes"]
    assert 0.9 * SIZE <= csv_bytes <= 1.1 * SIZE


def test_a_clean_drop_is_read_whole_by_pandas_with_no_reject(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    manifest = generate(tmp_path, size=1_000_000, files=8, defects=0, zipped=0, seed=5)

    assert manifest["totals"]["rejected_records"] == 0
    assert all(entry["member"] is None and entry["header"] for entry in manifest["files"])
    for entry in manifest["files"]:
        frame = pd.read_csv(
            tmp_path / entry["path"],
            sep=entry["delimiter"],
            encoding="utf-8-sig" if entry["bom"] else entry["encoding"],
            dtype=str,
            keep_default_na=False,
        )
        assert list(frame.columns) == entry["columns"], entry["path"]
        assert len(frame) == entry["records"] == entry["good_rows"], entry["path"]


def test_sizes_are_read_in_decimal_and_binary_units() -> None:
    assert parse_size("200MB") == 200_000_000
    assert parse_size("2GB") == 2_000_000_000
    assert parse_size("1.5 MiB") == 1_572_864
    assert parse_size("4096") == 4096
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_the_command_line_writes_a_drop_and_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "devservices.energy_certificates", str(tmp_path / "drop")]
    command += ["--size", "300kB", "--files", "2", "--seed", "9"]

    first = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    second = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False
    )

    assert first.returncode == 0, first.stderr
    totals = json.loads(first.stdout)
    assert totals == json.loads((tmp_path / "drop" / MANIFEST).read_text())["totals"]
    assert "MB/s" in first.stderr
    assert second.returncode == 2
    assert "not empty" in second.stderr
