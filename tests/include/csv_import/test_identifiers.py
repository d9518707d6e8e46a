"""Headers become safe, stable, distinct PostgreSQL identifiers, whatever they say."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from include.csv_import.identifiers import LINEAGE_COLUMNS, MAX_IDENTIFIER_BYTES, unique_identifiers

SAFE = re.compile(r"[a-z][a-z0-9_]*")


def test_headers_become_lowercase_snake_case() -> None:
    assert unique_identifiers(["Energy Rating", "lodgementDate", "  Post-Code  ", "AMOUNT (£)"]) == [
        "energy_rating",
        "lodgementdate",
        "post_code",
        "amount",
    ]


def test_a_hostile_header_is_only_its_words() -> None:
    assert unique_identifiers(['"; DROP TABLE x; --', "a\"b'c`d", "x\x00y"]) == [
        "drop_table_x",
        "a_b_c_d",
        "x_y",
    ]


def test_accents_are_dropped_and_cyrillic_is_transliterated() -> None:
    assert unique_identifiers(["Größe in m²", "Café", "Стоимость", "Подъезд"]) == [
        "grosse_in_m2",
        "cafe",
        "stoimost",
        "podezd",
    ]


def test_a_header_without_latin_letters_gets_a_stable_name_from_its_text() -> None:
    first = unique_identifiers(["日本語", "x"])[0]
    assert first == unique_identifiers(["y", "日本語"])[1]
    assert re.fullmatch(r"c_[0-9a-f]{8}", first)


def test_an_empty_header_is_named_by_its_position() -> None:
    assert unique_identifiers(["a", "", "  "]) == ["a", "column_2", "column_3"]


def test_a_name_never_starts_with_a_digit() -> None:
    assert unique_identifiers(["2024 sales", "1"]) == ["c_2024_sales", "c_1"]


def test_duplicates_get_suffixes_that_no_other_header_takes() -> None:
    assert unique_identifiers(["id", "ID", "Id ", "id_2"]) == ["id", "id_3", "id_4", "id_2"]


def test_long_headers_are_cut_to_63_bytes_and_stay_distinct() -> None:
    names = unique_identifiers(["x" * 100, "x" * 100 + "y", "x" * 63])

    assert all(len(name.encode()) <= MAX_IDENTIFIER_BYTES for name in names)
    assert len(set(names)) == 3
    assert names[1].endswith("_2")


def test_headers_cannot_take_the_lineage_columns() -> None:
    names = unique_identifiers(["_source_file_id", "_source_line", "source_line"])

    assert not set(names) & set(LINEAGE_COLUMNS)
    assert len(set(names)) == 3


@given(st.lists(st.text(max_size=80), max_size=12))
def test_any_headers_give_safe_distinct_names(headers: list[str]) -> None:
    names = unique_identifiers(headers)

    assert len(names) == len(headers)
    assert len(set(names)) == len(names)
    for name in names:
        assert SAFE.fullmatch(name), name
        assert len(name.encode()) <= MAX_IDENTIFIER_BYTES
        assert name not in LINEAGE_COLUMNS
