"""The type lattice: what fits each type, how it is written for PostgreSQL, how types widen."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.csv_import.model import ColumnType as T
from include.csv_import.types import NotOfType, already_canonical, convert, fits, narrowest, widen


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", T.INTEGER),
        ("-2147483648", T.INTEGER),
        ("2147483648", T.BIGINT),
        ("-9223372036854775808", T.BIGINT),
        ("9223372036854775808", T.NUMERIC),
        ("12.50", T.NUMERIC),
        ("-1.5e3", T.NUMERIC),
        ("0.5", T.NUMERIC),
        ("true", T.BOOLEAN),
        ("No", T.BOOLEAN),
        ("2024-02-29", T.DATE),
        ("2024-02-29 13:45", T.TIMESTAMP),
        ("2024-02-29T13:45:00.123456", T.TIMESTAMP),
        ("2024-02-29T13:45:00Z", T.TIMESTAMPTZ),
        ("2024-02-29 13:45:00+02:00", T.TIMESTAMPTZ),
        ("007", T.TEXT),
        ("1_000", T.TEXT),
        ("1,000", T.TEXT),
        ("١٢", T.TEXT),
        ("NaN", T.TEXT),
        ("Infinity", T.TEXT),
        ("1e99999", T.TEXT),
        ("2023-02-29", T.TEXT),
        ("20240131", T.INTEGER),
        ("31/01/2024", T.TEXT),
        ("1", T.INTEGER),
        ("maybe", T.TEXT),
    ],
)
def test_a_value_is_of_the_narrowest_type_it_fits(value: str, expected: T) -> None:
    assert narrowest(value) == expected


def test_empty_text_is_null_in_every_type_and_has_no_type_of_its_own() -> None:
    for column_type in T:
        assert convert(column_type, "") is None
    assert narrowest("") is None
    assert narrowest("   ") is None


@pytest.mark.parametrize(
    ("column_type", "value", "written"),
    [
        (T.INTEGER, " 12 ", "12"),
        (T.INTEGER, "+7", "7"),
        (T.BOOLEAN, "Y", "true"),
        (T.BOOLEAN, "f", "false"),
        (T.TIMESTAMP, "2024-01-31", "2024-01-31 00:00:00"),
        (T.TIMESTAMP, "2024-01-31T10:00:00", "2024-01-31T10:00:00"),
        (T.TIMESTAMP, "2024-01-31T10:00", "2024-01-31 10:00:00"),
        (T.TIMESTAMPTZ, "2024-01-31 10:00", "2024-01-31 10:00:00+00:00"),
        (T.TIMESTAMPTZ, "2024-01-31T10:00:00.5+02:00", "2024-01-31 10:00:00.500000+02:00"),
        (T.TIMESTAMPTZ, "2024-01-31T10:00:00Z", "2024-01-31T10:00:00Z"),
        (T.TEXT, " kept as is ", " kept as is "),
    ],
)
def test_values_are_written_the_way_postgresql_reads_them_whatever_its_settings(
    column_type: T, value: str, written: str
) -> None:
    assert convert(column_type, value) == written


def test_a_refused_value_says_what_was_expected() -> None:
    with pytest.raises(NotOfType, match="ISO date YYYY-MM-DD"):
        convert(T.DATE, "01/02/2024")
    with pytest.raises(NotOfType, match="between -2147483648 and 2147483647"):
        convert(T.INTEGER, "2147483648")


def test_one_and_zero_are_integers_not_booleans() -> None:
    assert not fits(T.BOOLEAN, "1")
    assert narrowest("0") == T.INTEGER


@pytest.mark.parametrize(
    ("a", "b", "wider"),
    [
        (T.INTEGER, T.BIGINT, T.BIGINT),
        (T.INTEGER, T.NUMERIC, T.NUMERIC),
        (T.DATE, T.TIMESTAMP, T.TIMESTAMP),
        (T.TIMESTAMP, T.TIMESTAMPTZ, T.TIMESTAMPTZ),
        (T.DATE, T.TIMESTAMPTZ, T.TIMESTAMPTZ),
        (T.BOOLEAN, T.INTEGER, T.TEXT),
        (T.NUMERIC, T.DATE, T.TEXT),
        (T.TEXT, T.INTEGER, T.TEXT),
        (T.BOOLEAN, T.BOOLEAN, T.BOOLEAN),
    ],
)
def test_widening_stays_in_a_chain_or_ends_in_text(a: T, b: T, wider: T) -> None:
    assert widen(a, b) == wider
    assert widen(b, a) == wider


@given(st.sampled_from(list(T)), st.sampled_from(list(T)), st.sampled_from(list(T)))
def test_widening_is_commutative_and_associative(a: T, b: T, c: T) -> None:
    assert widen(a, b) == widen(b, a)
    assert widen(widen(a, b), c) == widen(a, widen(b, c))


values = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.dates().map(str),
    st.datetimes().map(str),
    st.sampled_from(["true", "no", "T", "y"]),
    st.text(max_size=8),
)


@given(values, values)
def test_whatever_fits_a_type_fits_every_wider_type(first: str, second: str) -> None:
    # What inference relies on: the widened type of two values still accepts both.
    a, b = narrowest(first), narrowest(second)
    if a is None or b is None:
        return
    wider = widen(a, b)
    assert fits(wider, first)
    assert fits(wider, second)


def columns_of(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(strategy, st.just("")), min_size=1, max_size=20)


columns = st.one_of(
    columns_of(st.integers(-(2**70), 2**70).map(str)),
    columns_of(st.decimals(allow_nan=False, allow_infinity=False).map(str)),
    columns_of(st.dates().map(str)),
    columns_of(
        st.tuples(st.datetimes(), st.sampled_from(" T"), st.sampled_from(["seconds", "auto"])).map(
            lambda parts: parts[0].isoformat(sep=parts[1], timespec=parts[2])
        )
    ),
    columns_of(
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])).map(
            lambda moment: moment.isoformat(timespec="seconds").replace("+00:00", "Z")
        )
    ),
    columns_of(st.sampled_from(["true", "false", "t", "no"])),
    columns_of(values),
)


@given(st.sampled_from(list(T)), columns)
def test_a_column_passed_as_canonical_is_exactly_what_the_converter_would_write(
    column_type: T, column: list[str]
) -> None:
    # The reader's fast path must never accept what the converter refuses, nor write it otherwise.
    if already_canonical(column_type, column):
        assert [convert(column_type, value) for value in column] == [value or None for value in column]


@pytest.mark.parametrize(
    ("column_type", "column", "canonical"),
    [
        (T.INTEGER, ["1", "-20", "", "0"], True),
        (T.INTEGER, ["1", "007"], False),
        (T.INTEGER, ["1\n2"], False),
        (T.INTEGER, ["2147483648"], False),
        (T.NUMERIC, ["1.50", "-0.5", ""], True),
        (T.DATE, ["2024-02-29", ""], True),
        (T.DATE, ["2023-02-29"], False),
        (T.TIMESTAMP, ["2024-02-29 10:00:00", "2024-02-29T10:00:00"], True),
        (T.BOOLEAN, ["true", "false", ""], True),
        (T.BOOLEAN, ["yes"], False),
        (T.TIMESTAMPTZ, ["2024-02-29 10:00:00+00:00", "2024-02-29T10:00:00Z"], True),
        (T.TIMESTAMPTZ, ["2024-02-29 10:00:00"], False),
    ],
)
def test_only_values_already_written_canonically_take_the_fast_path(
    column_type: T, column: list[str], canonical: bool
) -> None:
    assert already_canonical(column_type, column) is canonical
