"""The CSV generator: the same arguments give the same bytes, and its expected figures add up."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from devservices.csv_columns import column_names, main, write_csv


def test_same_arguments_same_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", rows=500, columns=12, seed=4)
    second = write_csv(tmp_path / "b.csv", rows=500, columns=12, seed=4)
    other = write_csv(tmp_path / "c.csv", rows=500, columns=12, seed=5)
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    assert Path(first.path).read_bytes() != Path(other.path).read_bytes()
    assert first.expected == second.expected


def test_expected_figures_are_what_a_plain_reading_of_the_file_finds(tmp_path: Path) -> None:
    written = write_csv(
        tmp_path / "a.csv", rows=3000, columns=21, seed=2, blank_share=0.05, junk_share=0.05, crlf=True
    )
    with open(written.path, newline="", encoding="utf-8") as source:
        records = list(csv.reader(source))
    assert records[0] == column_names(21)
    assert len(records) == 3001
    assert all(len(record) == 21 for record in records)
    for expected in written.expected:
        cells = [record[expected.index - 1] for record in records[1:]]
        blank = sum(cell == "" for cell in cells)
        numbers = [Decimal(cell) for cell in cells if cell and _is_number(cell)]
        assert (expected.numeric, expected.blank) == (len(numbers), blank)
        assert expected.non_numeric == len(cells) - len(numbers) - blank > 0
        assert Decimal(expected.sum) == sum(numbers)


def _is_number(cell: str) -> bool:
    try:
        return Decimal(cell).is_finite()
    except ArithmeticError:
        return False


def test_the_command_line_prints_the_expected_figures(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "a.csv"), "--rows", "10", "--columns", "10"]) == 0
    assert '"name": "col_010"' in capsys.readouterr().out
