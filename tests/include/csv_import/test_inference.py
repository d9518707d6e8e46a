"""One schema for a drop: per-file samples, columns united by name, types widened, overrides checked."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from include.csv_import.dialect import DialectOverrides
from include.csv_import.inference import HEAD_BYTES, Inference, InferenceError, infer
from include.csv_import.model import Column, ColumnType, RejectReason
from include.csv_import.sources import discover

T = ColumnType


def drop(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def inferred(folder: Path, **options: Any) -> Inference:
    return infer(discover(str(folder), "**/*.csv", conn_id=None), conn_id=None, **options)


def test_columns_are_united_by_name_and_their_types_widened_across_files(tmp_path: Path) -> None:
    folder = drop(
        tmp_path,
        {
            "a.csv": b"ID,Rating,Lodged,Amount\n1,A,2024-01-01,10\n2,B,2024-01-02,12\n",
            "b.csv": b"id;amount;lodged;Extra\n3;10.5;2024-01-03 10:00;x\n4;3000000000;;y\n",
        },
    )

    result = inferred(folder)

    assert result.columns == (
        Column("id", "ID", T.INTEGER),
        Column("rating", "Rating", T.TEXT),
        Column("lodged", "Lodged", T.TIMESTAMP),
        Column("amount", "Amount", T.NUMERIC),
        Column("extra", "Extra", T.TEXT),
    )
    first, second = result.files
    assert [column.name for column in first.columns] == ["id", "rating", "lodged", "amount"]
    assert [column.name for column in second.columns] == ["id", "amount", "lodged", "extra"]
    assert second.dialect.delimiter == ";"
    assert result.rejected == ()


def test_a_file_without_header_among_headed_ones_is_rejected_whole(tmp_path: Path) -> None:
    folder = drop(
        tmp_path,
        {
            "a.csv": b"id,amount\n1,2.5\n",
            "b.csv": b"id,amount\n2,3\n",
            "c.csv": b"3,4.5\n4,5\n",
        },
    )

    result = inferred(folder)

    (rejected,) = result.rejected
    assert rejected.file.name.endswith("c.csv")
    assert rejected.reject.reason == RejectReason.HEADER_MISMATCH
    assert rejected.reject.line is None
    assert "has no header line while most files of the drop have one" in rejected.reject.detail
    assert len(result.files) == 2


def test_headerless_files_are_matched_by_position_and_must_have_the_same_width(tmp_path: Path) -> None:
    folder = drop(
        tmp_path, {"a.csv": b"1,2024-01-01\n2,2024-01-02\n", "b.csv": b"3,x\n", "c.csv": b"1,2,3\n4,5,6\n"}
    )

    result = inferred(folder, dialect=DialectOverrides(header=False))

    assert result.columns == (
        Column("column_1", "column 1", T.INTEGER),
        Column("column_2", "column 2", T.TEXT),
    )
    (rejected,) = result.rejected
    assert rejected.file.name.endswith("c.csv")
    assert "has 3 fields per record, the other files without a header 2" in rejected.reject.detail


def test_an_empty_file_is_rejected_and_a_header_only_file_is_not(tmp_path: Path) -> None:
    folder = drop(
        tmp_path, {"empty.csv": b"", "blank.csv": b"\r\n\n", "header.csv": b"id,name\n", "a.csv": b"id\n1\n"}
    )

    result = inferred(folder)

    assert sorted((r.file.name.rsplit("/", 1)[1], r.reject.reason) for r in result.rejected) == [
        ("blank.csv", RejectReason.EMPTY_FILE),
        ("empty.csv", RejectReason.EMPTY_FILE),
    ]
    assert result.columns == (Column("id", "id", T.INTEGER), Column("name", "name", T.TEXT))


def test_a_damaged_zip_member_is_an_unreadable_file(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.csv", b"id\n1\n" * 1000)
    (tmp_path / "b.csv").write_bytes(b"id\n2\n")
    data = bytearray((tmp_path / "a.zip").read_bytes())
    data[40:60] = b"\xff" * 20  # inside the compressed stream
    (tmp_path / "a.zip").write_bytes(bytes(data))

    result = inferred(tmp_path)

    (rejected,) = result.rejected
    assert rejected.reject.reason == RejectReason.UNREADABLE_FILE
    assert rejected.file.member == "a.csv"


def test_values_far_into_a_big_file_are_sampled(tmp_path: Path) -> None:
    small = b"".join(b"%d,x\n" % number for number in range(200_000))
    assert len(small) > HEAD_BYTES * 1.5
    folder = drop(tmp_path, {"a.csv": b"id,note\n" + small + b"3000000000,y\n" * 20_000 + small})

    (column, _) = inferred(folder).columns

    assert column.type == T.BIGINT


def test_column_type_overrides_win_by_name_or_header(tmp_path: Path) -> None:
    folder = drop(tmp_path, {"a.csv": b"Post Code,Amount\n12345,1\n"})

    result = inferred(folder, column_types={"Post Code": "text", "amount": "NUMERIC"})

    assert [(column.name, column.type) for column in result.columns] == [
        ("post_code", T.TEXT),
        ("amount", T.NUMERIC),
    ]
    assert result.files[0].columns == result.columns


def test_an_override_of_an_unknown_column_or_type_says_what_exists(tmp_path: Path) -> None:
    folder = drop(tmp_path, {"a.csv": b"id,amount\n1,2\n"})

    with pytest.raises(
        InferenceError, match="'price', which is no column of this drop; its columns are: amount, id"
    ):
        inferred(folder, column_types={"price": "numeric"})
    with pytest.raises(InferenceError, match="the type 'money', which is not one of: boolean, integer"):
        inferred(folder, column_types={"amount": "money"})


def test_a_column_with_no_values_anywhere_is_text(tmp_path: Path) -> None:
    folder = drop(tmp_path, {"a.csv": b"id,unused\n1,\n2,\n"})

    assert inferred(folder).columns[1] == Column("unused", "unused", T.TEXT)


def test_a_rare_misfit_within_the_rejected_share_keeps_the_column_typed(tmp_path: Path) -> None:
    # 1 impossible date in 400: within a 1 % share the column stays a date (that line will be a
    # type_mismatch reject); with no share allowed, it must widen to text.
    lines = [f"{n},2024-01-{n % 28 + 1:02d}" for n in range(399)] + ["399,2024-02-30"]
    folder = drop(tmp_path, {"a.csv": ("id,lodged\n" + "\n".join(lines) + "\n").encode()})

    tolerant = inferred(folder, max_rejected_share=0.01)
    strict = inferred(folder)

    assert [column.type for column in tolerant.columns] == [T.INTEGER, T.DATE]
    assert [column.type for column in strict.columns] == [T.INTEGER, T.TEXT]


def test_a_misfit_share_above_the_rejected_share_widens_the_column(tmp_path: Path) -> None:
    lines = [f"{n},{'n/a' if n % 10 == 0 else n}" for n in range(400)]
    folder = drop(tmp_path, {"a.csv": ("id,amount\n" + "\n".join(lines) + "\n").encode()})

    assert [column.type for column in inferred(folder, max_rejected_share=0.01).columns] == [
        T.INTEGER,
        T.TEXT,
    ]
