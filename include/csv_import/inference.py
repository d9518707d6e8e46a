"""One table schema for a whole drop, from a bounded sample of each file.

Sampling
--------
Each file gives its first :data:`HEAD_BYTES` (some ten thousand records of a typical export)
and, when it is bigger and seekable, :data:`SPREAD_BLOCKS` blocks spread evenly over the rest:
a column that turns from small to big numbers, or from dates to free text, halfway through a
file is seen. Spread blocks are skipped in a file whose head has a field with a line break: a
block could start inside such a field and read garbage as records. Reads stay bounded (about
1.5 MiB a file) whatever the file's size.

A sample is not the file: a value later on that does not fit the inferred type is rejected on
import as ``type_mismatch``, counted, and the run fails if that is more than
``max_rejected_share``; the ``column_types`` override then fixes the type without guessing.
Within a file's sample, a column's type is the narrowest that all its values fit but at most
that same share of them (:func:`_settle`): one ``2024-02-30`` among thousands of dates is a
rejected line, not a date column silently turned into text.

Union of the files
------------------
Columns are united by their identifier (:mod:`~include.csv_import.identifiers`), in the order
they first appear, files taken by name. A column missing from a file is NULL in its rows, and a
column only one file has is still a column: extra or missing named columns are normal in a drop
that grew over the years, not a mismatch. A column's type is the :func:`~include.csv_import.types.widen`
of its types in all files. What cannot be united is a ``header_mismatch`` reject of the whole
file: a file without a header among files with one (or the other way round: the majority
decides), and a header-less file whose records have another number of fields than the others.
An empty file is an ``empty_file`` reject, one that cannot be read (a damaged or encrypted zip
member) an ``unreadable_file`` reject.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from include.csv_import.dialect import DialectOverrides, detect, header_evidence, read_sample
from include.csv_import.identifiers import to_identifier, unique_identifiers
from include.csv_import.model import (
    Column,
    ColumnType,
    Dialect,
    FileSchema,
    Reject,
    RejectReason,
    SourceFile,
)
from include.csv_import.reader import text_encoding
from include.csv_import.sources import open_chunk
from include.csv_import.types import (
    NARROWEST_FIRST,
    already_canonical,
    column_type_named,
    fits,
    narrowest,
    widen,
)

log = logging.getLogger(__name__)

HEAD_BYTES = 1024 * 1024
SPREAD_BLOCKS = 8
SPREAD_BLOCK_BYTES = 64 * 1024


# Names users write for types, beyond PostgreSQL's own (ColumnType's values).
class InferenceError(ValueError):
    """The user's ``column_types`` name a column or a type that does not exist."""


@dataclass(frozen=True, slots=True)
class RejectedFile:
    """A file left out of the import as a whole, and why (``reject.line`` is None)."""

    file: SourceFile
    reject: Reject


@dataclass(frozen=True)
class Inference:
    """The table's columns, how each accepted file maps onto them, and the files rejected whole."""

    columns: tuple[Column, ...]
    files: tuple[FileSchema, ...]
    rejected: tuple[RejectedFile, ...]


@dataclass
class FileSample:
    """What the sample of one file says: its dialect, header (None: none), width and types."""

    file: SourceFile
    dialect: Dialect
    header: list[str] | None
    width: int
    types: list[ColumnType | None] = field(default_factory=list)
    # The sampled non-empty values of each column, until _settle types them and lets them go.
    values: list[list[str]] = field(default_factory=list)
    # False when nothing in the sample told a header from data (text only, or a single record):
    # then the drop's majority decides.
    header_known: bool = True


def infer(
    files: Sequence[SourceFile],
    *,
    conn_id: str | None,
    dialect: DialectOverrides | None = None,
    column_types: Mapping[str, ColumnType | str] | None = None,
    max_rejected_share: float = 0.0,
) -> Inference:
    """Sample every file and unite them into one schema (see the module's docstring).

    A column's type may leave out up to ``max_rejected_share`` of a file's sampled values (see
    :func:`_settle`): those lines become rejects, within the share the run accepts anyway.
    """
    samples: list[FileSample] = []
    rejected: list[RejectedFile] = []
    for file in files:
        sample = sample_file(file, conn_id=conn_id, overrides=dialect, tolerance=max_rejected_share)
        if isinstance(sample, Reject):
            rejected.append(RejectedFile(file, sample))
        else:
            samples.append(sample)
    result = unite(samples, column_types or {})
    rejected.extend(result.rejected)
    log.info(
        "inferred %d columns from %d files (%d rejected whole): %s",
        len(result.columns),
        len(result.files),
        len(rejected),
        ", ".join(f"{column.name} {column.type}" for column in result.columns),
    )
    return Inference(result.columns, result.files, tuple(rejected))


def sample_file(
    file: SourceFile,
    *,
    conn_id: str | None,
    overrides: DialectOverrides | None = None,
    tolerance: float = 0.0,
) -> FileSample | Reject:
    """The sample of one file, or the reject of a file that is empty or cannot be read."""
    try:
        # Only the head's range, so that S3 is asked for no more than is sampled.
        head_end = None if file.member is not None or file.size <= HEAD_BYTES else HEAD_BYTES
        with open_chunk(file, 0, head_end, conn_id=conn_id) as stream:
            head = read_sample(stream, HEAD_BYTES)
        complete = len(head) >= file.size
        blocks = [] if complete or file.member is not None else _spread_blocks(file, conn_id)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
    ) as error:
        # A damaged, truncated, encrypted or oddly compressed zip member.
        return _file_reject(RejectReason.UNREADABLE_FILE, f"cannot be read: {error}")
    if not head.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe\x00"):
        return _file_reject(RejectReason.EMPTY_FILE, "the file is empty (no header, no records)")
    dialect = detect(head, blocks, overrides, complete=complete, tolerance=tolerance)
    records = _records(head, dialect, complete=complete)
    header_known = (overrides is not None and overrides.header is not None) or (
        header_evidence(_decoded(head, dialect), dialect) is not None
    )
    if not records:
        return _file_reject(RejectReason.EMPTY_FILE, "the file has no records")
    if dialect.header:
        header: list[str] | None = records[0]
        width, data = len(records[0]), records[1:]
    else:
        header = None
        width, data = Counter(len(record) for record in records).most_common(1)[0][0], records
    sample = FileSample(
        file,
        dialect,
        header,
        width,
        types=[None] * width,
        values=[[] for _ in range(width)],
        header_known=header_known,
    )
    _observe(sample, data)
    if blocks and not any("\n" in value or "\r" in value for record in data for value in record):
        for block in blocks:
            _observe(sample, _records(block, dialect, complete=False, ragged_start=True))
    _settle(sample, tolerance)
    return sample


def _file_reject(reason: RejectReason, detail: str) -> Reject:
    return Reject(line=None, reason=reason, column=None, raw="", detail=detail)


def _spread_blocks(file: SourceFile, conn_id: str | None) -> list[bytes]:
    step = (file.size - HEAD_BYTES) // SPREAD_BLOCKS
    if step < SPREAD_BLOCK_BYTES:
        return []
    blocks = []
    for index in range(1, SPREAD_BLOCKS + 1):
        start = HEAD_BYTES + index * step - SPREAD_BLOCK_BYTES
        with open_chunk(file, start, start + SPREAD_BLOCK_BYTES, conn_id=conn_id) as stream:
            blocks.append(read_sample(stream, SPREAD_BLOCK_BYTES))
    return blocks


def _records(data: bytes, dialect: Dialect, *, complete: bool, ragged_start: bool = False) -> list[list[str]]:
    """The records in ``data``, a piece of the file: a cut first or last line left out."""
    text = _decoded(data, dialect, ragged_start=ragged_start)
    if ragged_start:
        text = text[text.find("\n") + 1 :] if "\n" in text else ""
    if not complete:
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: cut + 1] if cut >= 0 else ""
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        escapechar=dialect.escapechar,
    )
    try:
        return [record for record in reader if record]
    except csv.Error:
        return []


def _decoded(data: bytes, dialect: Dialect, *, ragged_start: bool = False) -> str:
    return data.decode(text_encoding(dialect.encoding, 1 if ragged_start else 0), errors="replace")


def _observe(sample: FileSample, records: list[list[str]]) -> None:
    """Keep the sampled values of each column, for :func:`_settle` to type once the sample is read."""
    whole = [record for record in records if len(record) == sample.width]
    for kept, values in zip(sample.values, zip(*whole, strict=True) if whole else (), strict=False):
        kept.extend(filter(str.strip, values))


def _settle(sample: FileSample, tolerance: float) -> None:
    """Type each column of ``sample``: the narrowest type that all but ``tolerance`` of its values fit.

    With a tolerance of 0 this is the widening of every value's own type. With the run's
    ``max_rejected_share`` it keeps a date column a date column when one sampled value in a
    thousand is ``2024-02-30``: that line is rejected as ``type_mismatch`` on import, counted,
    instead of the whole column silently becoming text. A type is tried with an early exit once
    its misfits pass the tolerance, so a text column costs a few hundred failed conversions.
    """
    sample.types = [_column_type(values, tolerance) for values in sample.values]
    sample.values = [[] for _ in sample.values]


def _column_type(values: list[str], tolerance: float) -> ColumnType | None:
    if not values:
        return None
    allowed = int(len(values) * tolerance)
    for candidate in NARROWEST_FIRST:
        if already_canonical(candidate, values):
            return candidate  # every value fits, proven a column at a time (most columns)
        misfits = 0
        for value in values:
            if not fits(candidate, value):
                misfits += 1
                if misfits > allowed:
                    break
        else:
            return candidate
    return ColumnType.TEXT


def unite(samples: Sequence[FileSample], column_types: Mapping[str, ColumnType | str]) -> Inference:
    """The drop's columns from the files' samples; the files that cannot join, rejected."""
    rejected: list[RejectedFile] = []
    if not samples:
        return Inference((), (), ())
    known = [sample for sample in samples if sample.header_known]
    headed = sum(sample.header is not None for sample in known) * 2 >= len(known)
    for sample in samples:
        if not sample.header_known and sample.header is not None and not headed:
            # Its first record was taken for a header for want of evidence; the drop says data.
            for index, value in enumerate(sample.header):
                typed = sample.types[index]
                if value.strip() and (typed is None or not fits(typed, value)):
                    sample.types[index] = narrowest(value, typed) or typed
            sample.header, sample.dialect = None, replace(sample.dialect, header=False)
    widths = Counter(sample.width for sample in samples if sample.header is None)
    usual_width = widths.most_common(1)[0][0] if widths else 0
    types: dict[str, ColumnType | None] = {}
    headers: dict[str, str] = {}
    accepted: list[tuple[FileSample, list[str]]] = []
    for sample in samples:
        if (sample.header is not None) != headed:
            has, others = ("has no header line", "have one") if headed else ("has a header line", "have none")
            rejected.append(
                _mismatch(
                    sample, f"{has} while most files of the drop {others} (set the header param if wrong)"
                )
            )
            continue
        if sample.header is None and sample.width != usual_width:
            rejected.append(
                _mismatch(
                    sample,
                    f"has {sample.width} fields per record, the other files without a header "
                    f"{usual_width}: their columns cannot be matched",
                )
            )
            continue
        if sample.header is not None:
            names = unique_identifiers(sample.header)
            originals = sample.header
        else:
            names = [f"column_{position}" for position in range(1, sample.width + 1)]
            originals = [f"column {position}" for position in range(1, sample.width + 1)]
        accepted.append((sample, names))
        for name, original, found in zip(names, originals, sample.types, strict=True):
            headers.setdefault(name, original)
            previous = types.get(name)
            if previous is not None and found is not None:
                found = widen(previous, found)
            types[name] = found or previous
    final = {name: column_type or ColumnType.TEXT for name, column_type in types.items()}
    final.update(_overrides(column_types, headers))
    columns = {name: Column(name, headers[name], column_type) for name, column_type in final.items()}
    files = tuple(
        FileSchema(sample.file, sample.dialect, tuple(columns[name] for name in names))
        for sample, names in accepted
    )
    return Inference(tuple(columns.values()), files, tuple(rejected))


def _mismatch(sample: FileSample, detail: str) -> RejectedFile:
    return RejectedFile(sample.file, _file_reject(RejectReason.HEADER_MISMATCH, f"the file {detail}"))


def _overrides(
    column_types: Mapping[str, ColumnType | str], headers: Mapping[str, str]
) -> dict[str, ColumnType]:
    """The user's types by column name, checked: an unknown column or type is an error."""
    by_header = {header: name for name, header in headers.items()}
    chosen: dict[str, ColumnType] = {}
    for key, type_name in column_types.items():
        name = key if key in headers else by_header.get(key) or to_identifier(key, 0)
        if name not in headers:
            raise InferenceError(
                f"column_types names {key!r}, which is no column of this drop; its columns are: "
                + ", ".join(sorted(headers))
            )
        try:
            chosen[name] = column_type_named(type_name)
        except ValueError as error:
            raise InferenceError(f"column_types gives {key!r} the type {error}") from None
    return chosen
