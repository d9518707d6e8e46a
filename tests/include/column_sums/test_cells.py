"""The one-cell rules and the exact sum that the vectorised reader is held to."""

from __future__ import annotations

import pytest

from include.column_sums.cells import MAX_EXPONENT, ExactSum, is_blank, parse_number, unquote


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", (12, 0)),
        ("-12.50", (-1250, -2)),
        ("+.5", (5, -1)),
        ("7.", (7, 0)),
        (" \t3 ", (3, 0)),
        ("1.5e3", (15, 2)),
        ("2E-2", (2, -2)),
        ("-0", (0, 0)),
        ("00012", (12, 0)),
    ],
)
def test_numbers_are_read_exactly_as_coefficient_and_exponent(text: str, number: tuple[int, int]) -> None:
    assert parse_number(text.encode()) == number


@pytest.mark.parametrize(
    "text",
    [
        "n/a",
        "12,5",
        "1 000",
        "1_000",
        "NaN",
        "Infinity",
        "1.2.3",
        "--1",
        "+-1",
        "1e",
        ".",
        "-",
        "١٢",
        "0x1F",
        "1e5000",
    ],
)
def test_anything_else_is_not_a_number(text: str) -> None:
    assert parse_number(text.encode()) is None


def test_exponents_are_bounded_so_a_sum_stays_small() -> None:
    assert parse_number(f"1e{MAX_EXPONENT}".encode()) == (1, MAX_EXPONENT)
    assert parse_number(f"1e{MAX_EXPONENT + 1}".encode()) is None


def test_blank_is_empty_or_spaces_and_tabs_only() -> None:
    assert [is_blank(value) for value in (b"", b" \t ", b"\n", b"0")] == [True, True, False, False]


def test_unquote_reads_rfc_4180_quoting() -> None:
    assert unquote(b'"say ""hi"""', b'"') == b'say "hi"'
    assert unquote(b'"', b'"') == b'"'
    assert unquote(b"plain", b'"') == b"plain"


def test_an_exact_sum_keeps_every_digit_and_shows_the_largest_scale() -> None:
    total = ExactSum()
    for coefficient, exponent in [(1, -30), (10**20, 0), (-25, -1), (3, 2)]:
        total.add(coefficient, exponent)
        total.show_scale(max(0, -exponent))
    assert str(total.value()) == "100000000000000000297.500000000000000000000000000001"


def test_an_exact_sum_of_nothing_is_zero() -> None:
    assert str(ExactSum().value()) == "0"
