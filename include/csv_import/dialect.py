"""How a CSV file is written: encoding, delimiter, quote character, header, from a sample of it.

Each field the user sets (the DAG's params) wins over detection, field by field: a known
encoding with a detected delimiter is fine. Detection reads a sample from the start of the file
(its first 200 records decide) and, for the encoding, a few blocks spread over it; inference
hands it both, some 1.5 MiB a file at most.

Encoding
--------
A BOM decides (UTF-8, UTF-16, UTF-32). Otherwise the file is UTF-8 unless more than the run's
``max_rejected_share`` of the sampled lines are not valid UTF-8, and ``cp1252`` then. A UTF-8
export with a few corrupt bytes is thus read as UTF-8, its corrupt lines rejected as
``invalid_encoding`` (instead of the whole file read as cp1252, every accented letter garbled),
while a cp1252 export, whose accented letters are invalid UTF-8 on every line that has one, is
read as cp1252 unless they are rarer than that share: then they are rejected, counted, and the
operator sets the encoding. Not charset-normalizer's guess: among
single-byte code pages its answer on a sample turns on a handful of bytes (cp1250 or cp1252 or
latin-1 for the same export), so two files of one drop could be read differently; cp1252 is what
Western exports that are not UTF-8 nearly always are, it decodes all but five bytes (so a wrong
guess shows as odd letters, never as lost lines), and an operator who knows better sets it. A
UTF-8 file with a stray invalid byte outside the sample still loses only that line, as a reject.

Delimiter, quote, header
------------------------
The delimiter is the one of ``,``, ``;``, tab and ``|`` that splits the sample's records into the
same number (more than one) of fields most consistently, read by :mod:`csv` itself so quoted
delimiters do not count. The quote is ``"`` unless fields open with ``'`` and never with ``"``.
The first record is a header unless it looks like data: it is data when all its values are
numbers, dates or booleans, or when every column whose other values have such a type has a
first value of that type too. A file of text only (or of one record of text) is taken to have a
header, as nearly every export does; inference then lets the drop's majority decide.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from dataclasses import dataclass, replace
from typing import BinaryIO

from include.csv_import.model import ColumnType, Dialect
from include.csv_import.types import fits, narrowest

SAMPLE_BYTES = 256 * 1024
SPREAD_BLOCKS = 8
SPREAD_BLOCK_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
FALLBACK_ENCODING = "cp1252"
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAMPLE_RECORDS = 200


class DialectError(ValueError):
    """An override that cannot be used (an unknown encoding, a delimiter of two characters)."""


@dataclass(frozen=True)
class DialectOverrides:
    """What the user set; None: detect it."""

    delimiter: str | None = None
    quotechar: str | None = None
    encoding: str | None = None
    header: bool | None = None
    escapechar: str | None = None

    def __post_init__(self) -> None:
        for name in ("delimiter", "quotechar", "escapechar"):
            value = getattr(self, name)
            if value is not None and len(value) != 1:
                raise DialectError(f"the {name} must be one character, not {value!r}")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise DialectError(f"unknown encoding {self.encoding!r}: use a Python codec name") from None


def bom_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark at the start of a file announces, if any."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return None


def detect_encoding(head: bytes, blocks: list[bytes], tolerance: float = 0.0) -> str:
    """UTF-8 (with or without BOM), UTF-16/32 by BOM, else cp1252; see the module's docstring."""
    announced = bom_encoding(head)
    if announced is not None:
        return announced
    lines = invalid = 0
    for index, block in enumerate([head, *blocks]):
        block_lines, block_invalid = _utf8_lines(block, ragged=index > 0)
        lines, invalid = lines + block_lines, invalid + block_invalid
    return "utf-8" if invalid <= lines * tolerance else FALLBACK_ENCODING


def _utf8_lines(block: bytes, *, ragged: bool) -> tuple[int, int]:
    """The lines of ``block`` and how many of them are not valid UTF-8.

    A spread block (``ragged``) starts and ends anywhere: its first and last lines are partial
    and not counted. The head's last line may be cut too, so it is judged as incomplete text.
    """
    parts = block.split(b"\n")
    if ragged:
        parts = parts[1:-1]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(b"\n".join(parts), final=ragged)
    except UnicodeDecodeError:
        pass
    else:
        # A line feed is never part of a UTF-8 character, so each line is valid when all are:
        # one decode instead of one per line, for the files that are UTF-8 (most of them).
        return len(parts), 0
    invalid = 0
    for position, part in enumerate(parts):
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(part, final=ragged or position < len(parts) - 1)
        except UnicodeDecodeError:
            invalid += 1
    return len(parts), invalid


def detect(
    head: bytes,
    blocks: list[bytes],
    overrides: DialectOverrides | None = None,
    *,
    complete: bool = False,
    tolerance: float = 0.0,
) -> Dialect:
    """The dialect of a file whose first bytes are ``head`` (``complete``: that is all of it).

    ``blocks`` are samples from further in (for the encoding only); may be empty. ``tolerance``
    is the share of sampled lines that may be invalid UTF-8 in a file still read as UTF-8.
    """
    overrides = overrides or DialectOverrides()
    encoding = overrides.encoding or detect_encoding(head, blocks, tolerance)
    text = _decode_sample(head, encoding, complete=complete)
    delimiter = overrides.delimiter or detect_delimiter(text, overrides.quotechar or '"')
    quotechar = overrides.quotechar or detect_quotechar(text, delimiter)
    dialect = Dialect(
        delimiter=delimiter, quotechar=quotechar, encoding=encoding, escapechar=overrides.escapechar
    )
    header = overrides.header if overrides.header is not None else detect_header(text, dialect)
    return replace(dialect, header=header)


def _decode_sample(head: bytes, encoding: str, *, complete: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(head, final=complete)
    if not complete:
        # The last line is probably cut: leave it out.
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: cut + 1] if cut > 0 else text
    return text


def _records(text: str, delimiter: str, quotechar: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar)
    records = []
    try:
        for record in reader:
            if record:
                records.append(record)
            if len(records) >= _SAMPLE_RECORDS:
                break
    except csv.Error:
        pass
    return records


def detect_delimiter(text: str, quotechar: str = '"') -> str:
    """The candidate that gives the most records of one same field count above one."""
    best, best_score = DELIMITERS[0], 0
    for delimiter in DELIMITERS:
        if delimiter not in text:
            continue
        counts = Counter(len(record) for record in _records(text, delimiter, quotechar))
        width, score = counts.most_common(1)[0] if counts else (0, 0)
        if width > 1 and score > best_score:
            best, best_score = delimiter, score
    return best


def detect_quotechar(text: str, delimiter: str) -> str:
    """``"`` unless fields open with ``'`` and never with ``"``."""
    opening = {quote: text.count(delimiter + quote) + text.count("\n" + quote) for quote in "\"'"}
    if text.startswith(("'",)):
        opening["'"] += 1
    if text.startswith('"'):
        opening['"'] += 1
    return "'" if opening["'"] > 0 and opening['"'] == 0 else '"'


def detect_header(text: str, dialect: Dialect) -> bool:
    """Whether the first record names the columns (see the module's docstring)."""
    evidence = header_evidence(text, dialect)
    return True if evidence is None else evidence


def header_evidence(text: str, dialect: Dialect) -> bool | None:
    """What the sample says of a header: None when nothing does (no typed column, one record)."""
    records = _records(text, dialect.delimiter, dialect.quotechar)
    if not records:
        return None
    first, rest = records[0], [record for record in records[1:] if len(record) == len(records[0])]
    if all(narrowest(value) not in (None, ColumnType.TEXT) for value in first):
        return False  # nobody names every column with a number or a date
    typed_columns = data_like = 0
    for index, value in enumerate(first):
        column_type: ColumnType | None = None
        for record in rest:
            found = narrowest(record[index], column_type)
            if found is not None:
                column_type = found
        if column_type is None or column_type == ColumnType.TEXT:
            continue
        typed_columns += 1
        data_like += fits(column_type, value)
    if typed_columns == 0:
        return None
    return data_like < typed_columns


def read_sample(stream: BinaryIO, size: int = SAMPLE_BYTES) -> bytes:
    """Up to ``size`` bytes from the start of ``stream`` (fewer only at its end)."""
    parts, remaining = [], size
    while remaining > 0 and (part := stream.read(remaining)):
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
