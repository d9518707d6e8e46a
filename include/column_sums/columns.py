"""Which columns are summed: the 10th, 20th, 30th … (1-based), named by the file's header.

The first record that is not a blank line is the header. A file has no header when that record
names nothing: all its non-blank cells are numbers, or it has none (``1,2,3`` or ``,,,``); a
header may hold a number among names (``region,2024,2025``). Names are the header's cells as
they are, duplicates and blanks included: a column is identified by its index, its name is for
people. A header with fewer than 10 fields has no column to sum, which is an error, not an
empty result, so that a file exported with the wrong delimiter is noticed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from include.column_sums.cells import is_blank, parse_number
from include.column_sums.dialect import Dialect
from include.column_sums.problems import NoHeader, TooFewColumns, UnreadableEncoding

EVERY = 10


@dataclass(frozen=True, slots=True)
class Column:
    index: int  # 1-based
    name: str


@dataclass(frozen=True, slots=True)
class Header:
    fields: int
    columns: tuple[Column, ...]  # the summed ones


def read_header(record: bytes, dialect: Dialect, encoding: str) -> Header:
    """The header from its record's bytes (without the line break)."""
    if b"\0" in record:
        raise UnreadableEncoding(
            "the header holds NUL bytes, as UTF-16 text does: save or convert the file as UTF-8 "
            "and submit it again"
        )
    try:
        text = record.decode(encoding)
    except UnicodeDecodeError as error:
        raise UnreadableEncoding(
            f"the header is not valid {encoding} (byte 0x{record[error.start]:02x} at offset "
            f"{error.start}): give the file's encoding (cp1252 for most Windows exports) or "
            "convert the file to UTF-8"
        ) from None
    names = next(
        csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter, quotechar=dialect.quote)
    )
    values = [name.encode(encoding) for name in names if not is_blank(name.encode(encoding))]
    if all(parse_number(value) is not None for value in values):
        example = ",".join(names[:EVERY])
        raise NoHeader(
            f"the first row holds no column names ({example!r}…): add a header row naming the "
            "columns as the first line of the file"
        )
    if len(names) < EVERY:
        raise TooFewColumns(
            f"the header has {len(names)} column(s) ({dialect.delimiter!r}-delimited): every {EVERY}th "
            f"column is summed, so the file needs at least {EVERY}; check the delimiter if it has more"
        )
    return Header(
        fields=len(names),
        columns=tuple(Column(index, names[index - 1]) for index in range(EVERY, len(names) + 1, EVERY)),
    )
