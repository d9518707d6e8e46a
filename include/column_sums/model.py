"""The result of summing a file's every 10th column, and its JSON form (decimals as strings)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Cell:
    """Where a cell is, for a person to find it: ``row`` counts records with the header as row 1
    (a spreadsheet's numbering when the file has no blank lines), ``line`` is the line of the
    file the record starts on (they differ after a quoted line break or a blank line)."""

    row: int
    line: int
    value: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "line": self.line, "value": self.value}


@dataclass(frozen=True, slots=True)
class ColumnSum:
    index: int  # 1-based position in the header
    name: str
    sum: Decimal  # exact; as many fraction digits as the column's most precise number
    numeric: int
    blank: int  # empty or only spaces, or missing from a record with fewer fields
    non_numeric: int
    non_numeric_samples: tuple[Cell, ...]  # the first few, in file order

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "sum": str(self.sum),
            "numeric_cells": self.numeric,
            "blank_cells": self.blank,
            "non_numeric_cells": self.non_numeric,
            "non_numeric_samples": [cell.to_json() for cell in self.non_numeric_samples],
        }


@dataclass(frozen=True, slots=True)
class RaggedRow:
    """A record whose number of fields differs from the header's."""

    row: int
    line: int
    fields: int

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "line": self.line, "fields": self.fields}


@dataclass(frozen=True, slots=True)
class ColumnSums:
    rows: int  # data records, the header and blank lines not counted
    header_columns: int
    bytes_read: int
    columns: tuple[ColumnSum, ...]  # the 10th, 20th, 30th … in order
    ragged_rows: int
    ragged_samples: tuple[RaggedRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "header_columns": self.header_columns,
            "bytes_read": self.bytes_read,
            "columns": [column.to_json() for column in self.columns],
            "ragged_rows": self.ragged_rows,
            "ragged_samples": [row.to_json() for row in self.ragged_samples],
        }
