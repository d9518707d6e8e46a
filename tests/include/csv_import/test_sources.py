"""Discovery and ranged reads, on a local folder and on a real S3 endpoint, through object storage."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from devservices.s3_server import LocalS3, create_bucket, s3_hook, upload_folder
from include.csv_import.inference import infer
from include.csv_import.model import Chunk, Column, ColumnType, Dialect, FileSchema, Row, SourceFile
from include.csv_import.planning import plan_file
from include.csv_import.reader import read_chunk
from include.csv_import.sources import SourceChanged, SourceError, discover, glob_matcher, open_chunk
from tests.conftest import S3_CONN_ID

CSV = b"id,name\n1,a\n2,b\n3,c\n"


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    (tmp_path / "2024" / "q1").mkdir(parents=True)
    (tmp_path / "top.csv").write_bytes(CSV)
    (tmp_path / "2024" / "q1" / "nested.csv").write_bytes(CSV)
    (tmp_path / "2024" / "notes.txt").write_text("not data")
    write_zip(tmp_path / "2024" / "archive.zip", {"inner/m1.csv": CSV, "m2.csv": CSV * 2, "readme.md": b"x"})
    return tmp_path


def names(files: list[SourceFile], root: Path) -> list[str]:
    return [file.name.removeprefix(f"file://{root}/") for file in files]


def test_double_star_spans_folders_and_zip_archives_read_as_folders(drop: Path) -> None:
    files = discover(str(drop), "**/*.csv", conn_id=None)

    assert names(files, drop) == [
        "2024/archive.zip!inner/m1.csv",
        "2024/archive.zip!m2.csv",
        "2024/q1/nested.csv",
        "top.csv",
    ]
    member = files[1]
    assert (member.url, member.member, member.size) == (
        f"file://{drop}/2024/archive.zip",
        "m2.csv",
        len(CSV) * 2,
    )


def test_a_single_star_stays_in_its_folder(drop: Path) -> None:
    assert names(discover(f"file://{drop}", "*.csv", conn_id=None), drop) == ["top.csv"]
    assert names(discover(str(drop), "2024/archive.zip/*.csv", conn_id=None), drop) == [
        "2024/archive.zip!m2.csv"
    ]


def test_a_pattern_naming_the_archive_takes_its_csv_members(drop: Path) -> None:
    assert names(discover(str(drop), "**/*.zip", conn_id=None), drop) == [
        "2024/archive.zip!inner/m1.csv",
        "2024/archive.zip!m2.csv",
    ]


def test_glob_patterns() -> None:
    matches = glob_matcher("data/**/q[1-2]_?.csv")

    assert matches("data/q1_a.csv")
    assert matches("data/2024/x/q2_b.csv")
    assert not matches("data/q3_a.csv")
    assert not matches("other/q1_a.csv")
    assert not glob_matcher("*.csv")("sub/a.csv")


def test_a_missing_source_says_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source '.*/nowhere' does not exist: check the path"):
        discover(str(tmp_path / "nowhere"), "*.csv", conn_id=None)


def test_an_empty_drop_is_an_error_naming_source_and_pattern(drop: Path) -> None:
    with pytest.raises(SourceError, match=r"nothing in source '.*' matches the pattern '\*\*/\*\.tsv'"):
        discover(str(drop), "**/*.tsv", conn_id=None)


def test_an_archive_that_is_not_a_zip_stops_discovery_naming_it(drop: Path) -> None:
    (drop / "2024" / "broken.zip").write_bytes(b"PK not really")

    with pytest.raises(SourceError, match=r"broken\.zip in source .* is not a readable zip archive"):
        discover(str(drop), "**/*.csv", conn_id=None)


def test_new_content_of_the_same_size_and_time_changes_the_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"id\n1\n")
    before = discover(str(tmp_path), "*.csv", conn_id=None)[0]
    stat = path.stat()

    path.write_bytes(b"id\n2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = discover(str(tmp_path), "*.csv", conn_id=None)[0]

    assert before.size == after.size
    assert before.fingerprint != after.fingerprint
    assert before.fingerprint.startswith("sha256:")


def test_a_zip_members_fingerprint_is_its_archives_and_its_crc(drop: Path) -> None:
    first, second = discover(str(drop), "**/*.zip", conn_id=None)

    archive = first.fingerprint.rsplit(":", 1)[0]
    assert second.fingerprint.startswith(archive + ":")
    assert first.fingerprint != second.fingerprint


def test_a_range_is_read_exactly(drop: Path) -> None:
    (file,) = discover(str(drop), "top.csv", conn_id=None)

    with open_chunk(file, 8, 16, conn_id=None) as stream:
        assert stream.read() == b"1,a\n2,b\n"
    with open_chunk(file, 16, None, conn_id=None) as stream:
        assert stream.read() == b"3,c\n"


def test_a_zip_member_is_streamed_whole_and_never_from_the_middle(drop: Path) -> None:
    member = discover(str(drop), "**/m2.csv", conn_id=None)[0]

    with open_chunk(member, 0, None, conn_id=None) as stream:
        assert stream.read() == CSV * 2
    with pytest.raises(ValueError, match="a zip member is read whole"):
        open_chunk(member, 5, None, conn_id=None)


def test_a_file_that_changed_since_discovery_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    (file,) = discover(str(tmp_path), "*.csv", conn_id=None)

    (tmp_path / "a.csv").write_bytes(CSV + b"4,d\n")

    with pytest.raises(SourceChanged, match="rerun the import"):
        open_chunk(file, 0, None, conn_id=None)


def test_a_zip_member_whose_content_changed_since_discovery_is_refused(drop: Path) -> None:
    member = discover(str(drop), "**/m2.csv", conn_id=None)[0]

    write_zip(drop / "2024" / "archive.zip", {"m2.csv": (CSV * 2).replace(b"a", b"z")})

    with pytest.raises(SourceChanged, match="not the member discovered"):
        open_chunk(member, 0, None, conn_id=None)


def test_a_file_that_changes_while_it_is_read_fails_at_the_end_of_its_range(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(CSV)
    (file,) = discover(str(tmp_path), "*.csv", conn_id=None)

    with open_chunk(file, 0, None, conn_id=None) as stream:
        stream.read(4)
        path.write_bytes(CSV.replace(b"a", b"z"))
        os.utime(path, ns=(1, 1))
        with pytest.raises(SourceChanged, match="changed while it was read"):
            stream.read()


# --- the same through a real S3 endpoint -------------------------------------------------------


@pytest.fixture
def s3_drop(s3_server: LocalS3, drop: Path, request: pytest.FixtureRequest) -> str:
    bucket = "drop-" + request.node.name.replace("_", "-")[:40].strip("-").lower()
    create_bucket(S3_CONN_ID, bucket)
    upload_folder(S3_CONN_ID, drop, bucket, "deliveries")
    return f"s3://{bucket}/deliveries"


def test_s3_discovery_lists_files_and_zip_members_with_etags(s3_drop: str) -> None:
    files = discover(s3_drop, "**/*.csv", conn_id=S3_CONN_ID)

    assert [file.name.removeprefix(s3_drop + "/") for file in files] == [
        "2024/archive.zip!inner/m1.csv",
        "2024/archive.zip!m2.csv",
        "2024/q1/nested.csv",
        "top.csv",
    ]
    assert all(file.fingerprint.startswith("etag:") for file in files)
    assert files[3].url == s3_drop + "/top.csv"


def test_s3_ranges_and_zip_members_are_read_through_the_connection(s3_drop: str) -> None:
    files = discover(s3_drop, "**/*.csv", conn_id=S3_CONN_ID)

    with open_chunk(files[3], 12, 16, conn_id=S3_CONN_ID) as stream:
        assert stream.read() == b"2,b\n"
    with open_chunk(files[0], 0, None, conn_id=S3_CONN_ID) as stream:
        assert stream.read() == CSV


def test_a_big_s3_file_planned_into_chunks_reads_like_the_whole(s3_server: LocalS3, tmp_path: Path) -> None:
    lines = [f"{number},name {number}" for number in range(1, 2001)]
    (tmp_path / "big.csv").write_text("id,name\n" + "\n".join(lines) + "\n")
    create_bucket(S3_CONN_ID, "drop-big")
    upload_folder(S3_CONN_ID, tmp_path, "drop-big")
    (file,) = discover("s3://drop-big", "*.csv", conn_id=S3_CONN_ID)
    schema = FileSchema(
        file, Dialect(), (Column("id", "id", ColumnType.INTEGER), Column("name", "name", ColumnType.TEXT))
    )

    plan = plan_file(file, Dialect(), chunk_bytes=4096, conn_id=S3_CONN_ID)
    rows = []
    for chunk in plan.chunks:
        with open_chunk(file, chunk.start, chunk.end, conn_id=S3_CONN_ID) as stream:
            rows.extend(read_chunk(stream, chunk, schema))

    assert len(plan.chunks) > 5
    assert rows == [Row(line, (str(line - 1), f"name {line - 1}")) for line in range(2, 2002)]


def test_an_s3_object_replaced_after_discovery_is_refused(s3_drop: str) -> None:
    (file,) = discover(s3_drop, "top.csv", conn_id=S3_CONN_ID)
    bucket, key = s3_drop.removeprefix("s3://").split("/", 1)

    s3_hook(S3_CONN_ID).load_file_obj(
        io.BytesIO(CSV.replace(b"a", b"z")), f"{key}/top.csv", bucket, replace=True
    )

    with pytest.raises(SourceChanged, match="new ETag"):
        open_chunk(file, 0, None, conn_id=S3_CONN_ID)


def test_a_drop_on_s3_is_inferred_through_the_connection(s3_drop: str) -> None:
    files = discover(s3_drop, "**/*.csv", conn_id=S3_CONN_ID)

    result = infer(files, conn_id=S3_CONN_ID)

    # m2.csv is the CSV twice over: its second header line is a value, and not a number.
    assert result.columns == (Column("id", "id", ColumnType.TEXT), Column("name", "name", ColumnType.TEXT))
    assert [schema.file for schema in result.files] == files
    assert result.rejected == ()
    without_m2 = infer([file for file in files if file.member != "m2.csv"], conn_id=S3_CONN_ID)
    assert without_m2.columns[0] == Column("id", "id", ColumnType.INTEGER)


def test_a_change_found_at_the_end_of_a_chunk_stops_its_reading(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(CSV)
    (file,) = discover(str(tmp_path), "*.csv", conn_id=None)
    schema = FileSchema(
        file, Dialect(), (Column("id", "id", ColumnType.INTEGER), Column("name", "name", ColumnType.TEXT))
    )

    with open_chunk(file, 0, None, conn_id=None) as stream:
        os.utime(path, ns=(1, 1))
        with pytest.raises(SourceChanged):
            list(read_chunk(stream, Chunk(file, 0, 0, None, 1), schema))
        assert not stream.closed
