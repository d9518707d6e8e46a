"""The rules written the plain way, for tests to hold the vectorised reader to: :mod:`csv` and Decimal.

Independent of ``include.column_sums`` on purpose (its own number rule, its own sums), so that a
shared mistake cannot hide.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, Inexact, localcontext

PRECISION = 100_000
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


@dataclass
class Column:
    index: int
    name: str
    total: Decimal = Decimal(0)
    scale: int = 0
    numeric: int = 0
    blank: int = 0
    non_numeric: int = 0
    samples: list[tuple[int, int, str]] = field(default_factory=list)

    def sum_text(self) -> str:
        with localcontext() as context:
            context.prec = PRECISION
            return str(self.total.quantize(Decimal(1).scaleb(-self.scale)))


@dataclass
class Reference:
    rows: int
    fields: int
    columns: list[Column]
    ragged: list[tuple[int, int, int]]  # (row, line, fields), all of them


def reference(
    data: bytes, *, delimiter: str = ",", quote: str = '"', encoding: str = "utf-8", samples: int = 5
) -> Reference:
    text = data.decode(encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote, strict=True)
    header: list[str] | None = None
    columns: list[Column] = []
    ragged: list[tuple[int, int, int]] = []
    rows = 0
    previous_end = 0
    with localcontext() as context:
        context.prec = PRECISION
        context.traps[Inexact] = True
        for record in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not record:  # a blank line
                continue
            if header is None:
                header = record
                columns = [Column(index, header[index - 1]) for index in range(10, len(header) + 1, 10)]
                continue
            rows += 1
            row = rows + 1
            if len(record) != len(header):
                ragged.append((row, line, len(record)))
            for column in columns:
                value = record[column.index - 1] if len(record) >= column.index else ""
                stripped = value.strip(" \t")
                if not stripped:
                    column.blank += 1
                elif NUMBER.fullmatch(stripped):
                    number = Decimal(stripped)
                    column.total += number
                    column.scale = max(column.scale, -number.as_tuple().exponent)
                    column.numeric += 1
                else:
                    column.non_numeric += 1
                    if len(column.samples) < samples:
                        column.samples.append((row, line, value))
    assert header is not None, "the reference needs a header"
    return Reference(rows, len(header), columns, ragged)
