"""Dialect detection: delimiter, quote, encoding, header; user overrides win field by field."""

from __future__ import annotations

import codecs

import pytest

from include.csv_import.dialect import DialectError, DialectOverrides, detect
from include.csv_import.model import Dialect


def detected(
    data: bytes, overrides: DialectOverrides | None = None, blocks: list[bytes] | None = None
) -> Dialect:
    return detect(data, blocks or [], overrides, complete=True)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_the_one_that_splits_records_evenly(delimiter: str) -> None:
    text = delimiter.join(["id", "name", "amount"]) + "\n"
    # Commas inside a quoted field and in values must not outvote the real delimiter.
    text += delimiter.join(["1", '"Smith, John; Jr."', "3,5"]) + "\n"
    text += delimiter.join(["2", "Jones", "4"]) + "\n"

    assert detected(text.encode()).delimiter == delimiter


def test_a_utf8_file_with_crlf_and_bom_is_utf8_sig() -> None:
    dialect = detected(codecs.BOM_UTF8 + "id;ville\r\n1;Zürich\r\n".encode())

    assert dialect == Dialect(delimiter=";", encoding="utf-8-sig", header=True)


def test_a_utf16_file_is_known_by_its_bom() -> None:
    dialect = detected("id\tname\r\n1\tÅsa\r\n".encode("utf-16"))

    assert (dialect.encoding, dialect.delimiter) == ("utf-16", "\t")


def test_a_file_that_is_not_utf8_is_read_as_cp1252() -> None:
    assert detected("id,name\n1,Café €5\n".encode("cp1252")).encoding == "cp1252"


def test_a_non_utf8_byte_further_in_the_file_is_found_in_a_spread_block() -> None:
    head = b"id,name\n1,plain ascii\n"
    later = "\n2,Café\n".encode("cp1252")

    assert detected(head).encoding == "utf-8"
    assert detect(head, [later], None, complete=False).encoding == "cp1252"


def test_a_utf8_character_cut_at_a_spread_block_edge_is_not_taken_for_another_encoding() -> None:
    block = "éé\n3,Zoë\nü".encode()[1:-1]

    assert detect(b"id,name\n1,x\n", [block], None, complete=False).encoding == "utf-8"


def test_single_quotes_are_the_quote_only_when_fields_open_with_them() -> None:
    assert detected(b"id,name\n1,'Smith, J'\n2,'Jones'\n").quotechar == "'"
    assert detected(b'id,name\n1,"O\'Brien"\n').quotechar == '"'


def test_a_header_is_told_from_data_by_the_column_types() -> None:
    assert detected(b"id,amount,day\n1,2.5,2024-01-01\n2,3,2024-01-02\n").header is True
    assert detected(b"1,2.5,2024-01-01\n2,3,2024-01-02\n").header is False
    assert detected(b"7,8,9\n").header is False


def test_a_file_of_text_only_is_taken_to_have_a_header() -> None:
    assert detected(b"name,city\nAnn,Leeds\nBob,York\n").header is True


def test_overrides_win_field_by_field() -> None:
    data = b"a;b\n1;2\n"

    dialect = detected(data, DialectOverrides(encoding="latin-1", header=False))

    assert dialect == Dialect(delimiter=";", quotechar='"', encoding="latin-1", header=False)
    assert detected(data, DialectOverrides(delimiter=",")).delimiter == ","


def test_an_impossible_override_says_what_is_wrong() -> None:
    with pytest.raises(DialectError, match="one character"):
        DialectOverrides(delimiter=";;")
    with pytest.raises(DialectError, match="unknown encoding 'klingon'"):
        DialectOverrides(encoding="klingon")


def test_a_utf8_file_with_a_rare_corrupt_byte_stays_utf8_within_the_rejected_share() -> None:
    lines = [f"{n},Crème brûlée {n}".encode() for n in range(400)]
    lines[200] = b"200,Cr\xffme"
    head = b"id,name\n" + b"\n".join(lines) + b"\n"

    assert detect(head, [], None, complete=True, tolerance=0.01).encoding == "utf-8"
    assert detect(head, [], None, complete=True).encoding == "cp1252"


def test_a_cp1252_file_whose_accents_are_common_is_read_as_cp1252() -> None:
    head = (
        b"id,street\n"
        + b"\n".join(f"{n},Rue de l'\xe9glise {n}".encode("latin-1") for n in range(100))
        + b"\n"
    )

    assert detect(head, [], None, complete=True, tolerance=0.01).encoding == "cp1252"
