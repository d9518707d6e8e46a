"""A drop of building energy certificates as CSV files: the demo data of ``csv_folder_import``.

    python -m devservices.energy_certificates OUT [--size 200MB] [--files 8] [--defects 0.001]
                                                  [--zipped 0.25] [--seed 1]

Writes ``OUT/manifest.json`` beside the files: what a correct import of the drop must end with,
file by file (and zip member by member): the records, the rows to import, and every line to
reject with its reason (the names of ``include.csv_import.model.RejectReason``) and its physical
line number (1-based, the header is line 1, a record spanning lines is named by its first).
Tests, the demo and the benchmark compare an import with the manifest, never with a count the
importer made itself.

The rows look like the UK's EPC open data that the seed's author imported: a certificate key,
address, postcode and coordinates, property type, energy ratings and efficiencies, floor area,
CO2 emissions, dates, a timestamp with zone, a boolean spelled ``true``/``false`` (the spelling
a type inference can call boolean without guessing; empty is unknown), and free-text notes that
sometimes hold commas, doubled quotes and newlines (quoted, as CSV writes them).

Speed: values come from pools made once with Faker (``en_GB``) and are picked by index with
NumPy, a block of rows at a time; no Faker call per row. Same arguments, same Faker and NumPy
versions: byte-identical files (zip entries carry a fixed timestamp).

Variety that is not a defect, by data file index, so that a drop of 8 files has each once:
0 plain; 1 ``;``-delimited with CRLF; 2 UTF-8 with a BOM; 3 cp1252 with accented names;
4 an extra column (``heating_cost_current``); 5 no ``address3`` column; 6 CRLF; 7 ``;``.
Some files sit in a subfolder (``older/``), for a ``**`` glob. The last ``--zipped`` share of
the data files go into ``.zip`` archives, two members each.

Defects, when ``--defects`` is above 0: that share of data records, spread over
``wrong_field_count`` (a field more or a field less), ``type_mismatch`` (one value that fits no
reading of its column's type, e.g. ``12a`` in an integer, ``2024-02-30`` as a date) and
``invalid_encoding`` (a byte the file's encoding does not define); an ``unterminated_quote`` as
the last record of the first file and of the last zip member; and two extra files: an
``empty_file`` (0 bytes) and a ``header_mismatch`` file (see ``HEADER_MISMATCH_DEFINITION``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np

from devservices.sizes import size_argument

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

# The drop's columns in the order most files have them, with the type a correct inference gives.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("lmk_key", "text"),
    ("uprn", "bigint"),
    ("address1", "text"),
    ("address2", "text"),
    ("address3", "text"),
    ("postcode", "text"),
    ("posttown", "text"),
    ("latitude", "numeric"),
    ("longitude", "numeric"),
    ("property_type", "text"),
    ("built_form", "text"),
    ("current_energy_rating", "text"),
    ("potential_energy_rating", "text"),
    ("current_energy_efficiency", "integer"),
    ("potential_energy_efficiency", "integer"),
    ("total_floor_area", "numeric"),
    ("co2_emissions_current", "numeric"),
    ("lodgement_date", "date"),
    ("inspection_date", "date"),
    ("lodgement_datetime", "timestamptz"),
    ("mains_gas_flag", "boolean"),
    ("assessor_notes", "text"),
)
EXTRA_COLUMN = ("heating_cost_current", "numeric")  # only in the file with an extra column
MISSING_COLUMN = "address3"  # absent from the file missing a column
BASE_NAMES = tuple(name for name, _ in COLUMNS)

HEADER_MISMATCH_DEFINITION = (
    "The file has no header row: its first line is already a record, in the older 18-column "
    "layout (the drop's columns up to inspection_date). Every other file of the drop starts with "
    "a header naming its columns, so this file's first line names no column of the drop and its "
    "field count differs from every header: the whole file is one file-level reject (line null), "
    "none of its records is imported."
)
LEGACY_COLUMNS = BASE_NAMES[: BASE_NAMES.index("inspection_date") + 1]

# Values that fit no reading of their column's type; none needs quoting in any dialect.
TYPE_MISMATCHES: tuple[tuple[str, str], ...] = (
    ("current_energy_efficiency", "12a"),
    ("lodgement_date", "2024-02-30"),
    ("latitude", "51.5N"),
    ("mains_gas_flag", "maybe"),
    ("total_floor_area", "84..5"),
    ("lodgement_datetime", "2024-13-01 10:00:00+00:00"),
    ("uprn", "UPRN-0042"),
)
LINE_DEFECTS = ("wrong_field_count", "type_mismatch", "invalid_encoding")
# A lone surrogate that ``surrogateescape`` encodes as a byte undefined in the file's encoding:
# 0xFF never occurs in UTF-8, 0x81 is unassigned in cp1252.
_BAD_BYTE = {"utf-8": "\udcff", "cp1252": "\udc81"}

# Street names with accented letters, all in Latin-1 (so cp1252 holds them, and Latin-1 readers too).
ACCENTED_STREETS = (
    "Brontë Close",
    "Café Row",
    "Señora Way",
    "Müller Court",
    "Noël Street",
    "Chloë Gardens",
    "Zoë Mews",
    "Rue de l'Église",
    "Désirée Lane",
    "Åsa Terrace",
)
PROPERTY_TYPES = (
    ("House", 0.55),
    ("Flat", 0.3),
    ("Bungalow", 0.1),
    ("Maisonette", 0.04),
    ("Park home", 0.01),
)
BUILT_FORMS = (
    ("Semi-Detached", 0.3),
    ("Mid-Terrace", 0.25),
    ("Detached", 0.2),
    ("End-Terrace", 0.15),
    ("Enclosed Mid-Terrace", 0.05),
    ("NO DATA!", 0.05),
)
# EPC bands: the lowest efficiency of A, B, ... G (SAP points).
BANDS = ("G", "F", "E", "D", "C", "B", "A")
BAND_FLOORS = (21, 39, 55, 69, 81, 92)
FIRST_LODGEMENT, LAST_LODGEMENT = date(2008, 10, 1), date(2025, 12, 31)
ZIP_TIMESTAMP = (2026, 1, 1, 0, 0, 0)
MAX_BLOCK_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Layout:
    """How one data file is written."""

    path: str  # relative to the drop's folder; for a zip member, the archive's path
    member: str | None
    columns: tuple[str, ...]
    delimiter: str = ","
    terminator: str = "\n"
    encoding: str = "utf-8"
    bom: bool = False
    unterminated_quote: bool = False  # its last record opens a quote that never closes


@dataclass(slots=True)
class FileAccount:
    """What the manifest says about one file (or member), filled in as it is written."""

    layout: Layout
    bytes: int = 0
    records: int = 0
    physical_lines: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def manifest_entry(self) -> dict[str, Any]:
        layout = self.layout
        by_reason = Counter(reject["reason"] for reject in self.rejects)
        return {
            "path": layout.path,
            "member": layout.member,
            "bytes": self.bytes,
            "encoding": layout.encoding,
            "bom": layout.bom,
            "delimiter": layout.delimiter,
            "line_terminator": layout.terminator,
            "header": True,
            "columns": list(layout.columns),
            "records": self.records,
            "physical_lines": self.physical_lines,
            "good_rows": self.records - len(self.rejects),
            "rejects_by_reason": dict(sorted(by_reason.items())),
            "rejects": self.rejects,
            "file_reject": None,
        }


def generate(
    out: Path,
    *,
    size: int,
    files: int = 8,
    defects: float = 0.001,
    zipped: float = 0.25,
    seed: int = 1,
) -> dict[str, Any]:
    """Write the drop into ``out`` (created; it must be empty) and return its manifest."""
    if files < 1:
        raise ValueError("files must be at least 1")
    if not 0 <= defects < 0.5 or not 0 <= zipped <= 1:
        raise ValueError("defects must be in [0, 0.5) and zipped in [0, 1]")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: give the generator a new or empty folder")
    started = time.perf_counter()
    pools = _Pools.build(seed)
    layouts = _layouts(files, defects > 0, zipped)
    targets = _byte_targets(size, len(layouts), seed)
    accounts = []
    for index, (layout, target) in enumerate(zip(layouts, targets, strict=True)):
        rng = np.random.default_rng([seed, index])
        accounts.append(FileAccount(layout))
        _write_file(out, accounts[-1], target, defects, rng, pools)
    entries = [account.manifest_entry() for account in accounts]
    if defects > 0:
        entries += _defective_files(out, pools, np.random.default_rng([seed, len(layouts)]))
    elapsed = time.perf_counter() - started
    manifest = _manifest(entries, size=size, files=files, defects=defects, zipped=zipped, seed=seed)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    total = manifest["totals"]["bytes"]
    log.info(
        "wrote %s: %d files, %.1f MB of CSV, %d records (%d to reject) in %.1f s, %.1f MB/s",
        out,
        len(entries),
        total / 1e6,
        manifest["totals"]["records"],
        manifest["totals"]["rejected_records"],
        elapsed,
        total / 1e6 / elapsed if elapsed else 0.0,
    )
    return manifest


# --- what is written where ----------------------------------------------------------------------


def _layouts(files: int, defective: bool, zipped: float) -> list[Layout]:
    zipped_count = round(files * zipped)
    layouts = []
    for index in range(files):
        columns = list(BASE_NAMES)
        options: dict[str, Any] = {}
        variant = index % 8
        if variant in (1, 7):
            options["delimiter"] = ";"
        if variant in (1, 6):
            options["terminator"] = "\r\n"
        if variant == 2:
            options["bom"] = True
        if variant == 3:
            options["encoding"] = "cp1252"
        if variant == 4:
            columns.insert(columns.index("co2_emissions_current") + 1, EXTRA_COLUMN[0])
        if variant == 5:
            columns.remove(MISSING_COLUMN)
        name = f"certificates-{index:03d}.csv"
        first_zipped = files - zipped_count
        if index >= first_zipped:
            archive = (index - first_zipped) // 2
            path, member = f"certificates-archive-{archive:02d}.zip", f"{archive:02d}/{name}"
        else:
            path, member = (f"older/{name}" if index % 3 == 2 else name), None
        layouts.append(Layout(path=path, member=member, columns=tuple(columns), **options))
    if defective:
        # Both ends of the drop: a plain file and, when there are zips, the last member read.
        for position in {0, files - 1} if zipped_count else {0}:
            layouts[position] = replace(layouts[position], unterminated_quote=True)
    return layouts


def _byte_targets(size: int, count: int, seed: int) -> list[int]:
    """Uneven file sizes (0.6x to 1.4x the mean), summing to ``size``."""
    weights = np.random.default_rng([seed, 1_000_003]).uniform(0.6, 1.4, count)
    return [int(size * weight / weights.sum()) for weight in weights]


def _write_file(
    out: Path, account: FileAccount, target: int, defects: float, rng: np.random.Generator, pools: _Pools
) -> None:
    layout = account.layout
    header = layout.delimiter.join(layout.columns) + layout.terminator
    with _open_output(out, layout) as stream:
        prefix = "\ufeff" if layout.bom else ""
        account.bytes += stream.write((prefix + header).encode(layout.encoding))
        account.physical_lines = 1
        # A small first block measures the layout's bytes per row; the following ones aim with it.
        row_bytes, measured = 330.0, False
        while True:
            remaining = target - account.bytes
            if measured:
                rows = max(1, min(MAX_BLOCK_ROWS, round(remaining / row_bytes)))
                last = rows * row_bytes >= remaining * 0.95
            else:
                rows, last = max(1, min(1000, int(remaining / row_bytes / 4))), False
            text = _block(account, rows, defects, rng, pools, close_with_open_quote=last)
            data = text.encode(layout.encoding, "surrogateescape")
            account.bytes += stream.write(data)
            row_bytes, measured = len(data) / rows, True
            if last:
                return


@contextmanager
def _open_output(out: Path, layout: Layout) -> Iterator[IO[bytes]]:
    path = out / layout.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout.member is None:
        with path.open("wb") as stream:
            yield stream
        return
    entry = zipfile.ZipInfo(layout.member, date_time=ZIP_TIMESTAMP)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    # force_zip64: a member's size is not known when it starts; a big one needs zip64 headers.
    with zipfile.ZipFile(path, "a") as archive, archive.open(entry, "w", force_zip64=True) as stream:
        yield stream


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pools:
    """Every value a row is made of, made once; text values quoted per delimiter."""

    addresses1: np.ndarray
    localities: np.ndarray
    places: np.ndarray  # (postcode, posttown, latitude, longitude), as text
    notes: np.ndarray
    notes_newlines: np.ndarray
    dates: np.ndarray
    times: np.ndarray
    tenths: np.ndarray  # "0.0" .. "999.9"
    cents: np.ndarray  # "100.00" .. "2999.99"
    integers: np.ndarray  # "0" .. "100"
    bands: np.ndarray
    quoted: dict[str, dict[str, np.ndarray]]

    @classmethod
    def build(cls, seed: int) -> _Pools:
        from faker import Faker  # deferred: only generating needs it

        faker = Faker("en_GB")
        faker.seed_instance(seed)
        rng = np.random.default_rng([seed, 7])
        streets = [faker.street_name() for _ in range(3000)] + list(ACCENTED_STREETS) * 20
        addresses1 = []
        for number in range(20_000):
            street = streets[int(rng.integers(len(streets)))]
            house = int(rng.integers(1, 300))
            # Flats carry a comma, as real addresses do: quoted in comma-delimited files.
            addresses1.append(
                f"Flat {number % 40 + 1}, {house} {street}" if number % 5 == 0 else f"{house} {street}"
            )
        localities = [faker.city() for _ in range(1500)]
        towns = [faker.city() for _ in range(600)]
        places = []
        for _ in range(8_000):
            latitude, longitude = rng.uniform(50.0, 58.6), rng.uniform(-6.0, 1.7)
            town = towns[int(rng.integers(len(towns)))]
            places.append((faker.postcode(), town.upper(), f"{latitude:.6f}", f"{longitude:.6f}"))
        notes = [_note(faker, rng) for _ in range(4000)]
        days = (LAST_LODGEMENT - FIRST_LODGEMENT).days + 1
        pools = {
            "addresses1": np.array(addresses1, dtype=object),
            "localities": np.array(localities + [""] * len(localities), dtype=object),
            "places": np.array(places, dtype=object),
            "notes": np.array(notes, dtype=object),
            "notes_newlines": np.array([note.count("\n") for note in notes]),
            "dates": np.array(
                [(FIRST_LODGEMENT + timedelta(days=d)).isoformat() for d in range(days)], dtype=object
            ),
            "times": np.array(
                [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)], dtype=object
            ),
            "tenths": np.array([f"{k / 10:.1f}" for k in range(10_000)], dtype=object),
            "cents": np.array([f"{k / 100:.2f}" for k in range(10_000, 300_000)], dtype=object),
            "integers": np.array([str(k) for k in range(101)], dtype=object),
            "bands": np.array(BANDS, dtype=object),
        }
        quoted = {
            delimiter: {
                name: _quote_all(pools[name], delimiter) for name in ("addresses1", "localities", "notes")
            }
            | {"places": np.array([[_quote(v, delimiter) for v in place] for place in places], dtype=object)}
            for delimiter in (",", ";")
        }
        return cls(**pools, quoted=quoted)


def _note(faker: Any, rng: np.random.Generator) -> str:
    """Free text as an assessor types it: mostly a sentence, sometimes commas, quotes, newlines."""
    kind = rng.random()
    if kind < 0.3:
        return ""
    if kind < 0.7:
        return faker.sentence(nb_words=8)
    if kind < 0.82:
        return f"{faker.sentence(nb_words=5)[:-1]}, {faker.word()}, {faker.sentence(nb_words=4)}"
    if kind < 0.92:
        return f'Occupier said "{faker.word()} {faker.word()}"; {faker.sentence(nb_words=4)}'
    lines = [faker.sentence(nb_words=6) for _ in range(int(rng.integers(2, 4)))]
    return "\n".join(lines)


def _quote(value: str, delimiter: str) -> str:
    if delimiter in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _quote_all(values: np.ndarray, delimiter: str) -> np.ndarray:
    return np.array([_quote(value, delimiter) for value in values], dtype=object)


def _block(
    account: FileAccount,
    rows: int,
    defects: float,
    rng: np.random.Generator,
    pools: _Pools,
    *,
    close_with_open_quote: bool,
) -> str:
    """``rows`` records as text, their account added to ``account``."""
    layout = account.layout
    quoted = pools.quoted[layout.delimiter]
    columns = _values(rows, rng, pools, quoted)
    notes_index = columns.pop("_notes_index")
    lines = list(map(layout.delimiter.join, zip(*(columns[name] for name in layout.columns), strict=True)))
    if "assessor_notes" in layout.columns:
        spans = 1 + pools.notes_newlines[notes_index]
    else:
        spans = np.ones(rows, dtype=np.int64)

    defective = np.flatnonzero(rng.random(rows) < defects)
    kinds = rng.integers(0, len(LINE_DEFECTS), len(defective))
    picks = rng.integers(0, 1 << 30, len(defective))
    rejects: dict[int, dict[str, Any]] = {}
    for row, kind, pick in zip(defective.tolist(), kinds.tolist(), picks.tolist(), strict=True):
        fields = [columns[name][row] for name in layout.columns]
        if "assessor_notes" in layout.columns:
            # A defective record stays on one line, so its line number is the one it starts on.
            fields[layout.columns.index("assessor_notes")] = ""
            spans[row] = 1
        reason, column = LINE_DEFECTS[kind], None
        if reason == "wrong_field_count":
            fields = fields[:-1] if pick % 2 else [*fields, "unexpected"]
        elif reason == "type_mismatch":
            candidates = [(name, value) for name, value in TYPE_MISMATCHES if name in layout.columns]
            column, value = candidates[pick % len(candidates)]
            fields[layout.columns.index(column)] = value
        else:
            where = layout.columns.index("address1")
            fields[where] = _BAD_BYTE[layout.encoding] + fields[where]
        lines[row] = layout.delimiter.join(fields)
        rejects[row] = {"reason": reason, "column": column}

    if close_with_open_quote and layout.unterminated_quote:
        row = rows - 1
        fields = [columns[name][row] for name in layout.columns]
        # The opening quote swallows everything after it: the record has no end, the file ends.
        fields[-1] = '"Survey note left open, the quote never closes'
        lines[row] = layout.delimiter.join(fields)
        spans[row] = 1
        rejects[row] = {"reason": "unterminated_quote", "column": None}

    starts = account.physical_lines + np.concatenate(([1], 1 + np.cumsum(spans[:-1])))
    for row in sorted(rejects):
        account.rejects.append({"line": int(starts[row]), **rejects[row]})
    account.records += rows
    account.physical_lines += int(spans.sum())
    return layout.terminator.join(lines) + layout.terminator


def _values(
    rows: int, rng: np.random.Generator, pools: _Pools, quoted: dict[str, np.ndarray]
) -> dict[str, Any]:
    """A column of ``rows`` values for every column a file may have, as text ready to join."""
    places = quoted["places"][rng.integers(0, len(pools.places), rows)]
    current = rng.integers(1, 101, rows)
    potential = np.minimum(current + rng.integers(0, 40, rows), 100)
    lodged = rng.integers(0, len(pools.dates), rows)
    inspected = np.maximum(lodged - rng.integers(0, 30, rows), 0)
    lodged_dates = pools.dates[lodged]
    address3 = rng.integers(0, len(quoted["localities"]), rows)
    # Mostly empty: the pool's second half is "" (address2 is empty half the time, address3 90 %).
    address3 = np.where(rng.random(rows) < 0.8, len(pools.localities) - 1, address3)
    uprn = rng.integers(10**10, 10**12, rows).astype(str).astype(object)
    uprn[rng.random(rows) < 0.05] = ""
    co2 = pools.tenths[rng.integers(1, 250, rows)]
    co2[rng.random(rows) < 0.02] = ""
    gas = np.array(("true", "false", ""), dtype=object)[rng.choice(3, rows, p=(0.7, 0.25, 0.05))]
    notes_index = rng.integers(0, len(pools.notes), rows)
    keys = rng.integers(0, 256, (rows, 16), dtype=np.uint8)
    keys[:, 0] = 0xA0 | (keys[:, 0] & 0x0F)  # a letter first: a key is never read as a number
    hexed = keys.tobytes().hex()
    return {
        "lmk_key": [hexed[i : i + 32] for i in range(0, len(hexed), 32)],
        "uprn": uprn,
        "address1": quoted["addresses1"][rng.integers(0, len(pools.addresses1), rows)],
        "address2": quoted["localities"][rng.integers(0, len(pools.localities), rows)],
        "address3": quoted["localities"][address3],
        "postcode": places[:, 0],
        "posttown": places[:, 1],
        "latitude": places[:, 2],
        "longitude": places[:, 3],
        "property_type": _weighted(PROPERTY_TYPES, rows, rng),
        "built_form": _weighted(BUILT_FORMS, rows, rng),
        "current_energy_rating": pools.bands[np.searchsorted(BAND_FLOORS, current, side="right")],
        "potential_energy_rating": pools.bands[np.searchsorted(BAND_FLOORS, potential, side="right")],
        "current_energy_efficiency": pools.integers[current],
        "potential_energy_efficiency": pools.integers[potential],
        "total_floor_area": pools.tenths[rng.integers(200, 4000, rows)],
        "co2_emissions_current": co2,
        "heating_cost_current": pools.cents[rng.integers(0, len(pools.cents), rows)],
        "lodgement_date": lodged_dates,
        "inspection_date": pools.dates[inspected],
        "lodgement_datetime": lodged_dates + " " + pools.times[rng.integers(0, 86400, rows)] + "+00:00",
        "mains_gas_flag": gas,
        "assessor_notes": quoted["notes"][notes_index],
        "_notes_index": notes_index,
    }


def _weighted(choices: Sequence[tuple[str, float]], rows: int, rng: np.random.Generator) -> np.ndarray:
    values = np.array([value for value, _ in choices], dtype=object)
    weights = np.array([weight for _, weight in choices])
    return values[rng.choice(len(values), rows, p=weights / weights.sum())]


# --- the two defective files and the manifest ---------------------------------------------------


def _defective_files(out: Path, pools: _Pools, rng: np.random.Generator) -> list[dict[str, Any]]:
    empty = FileAccount(Layout(path="certificates-empty.csv", member=None, columns=()))
    (out / empty.layout.path).write_bytes(b"")
    empty_entry = empty.manifest_entry() | {"header": False, "physical_lines": 0, "good_rows": 0}
    empty_entry["file_reject"] = {"reason": "empty_file", "detail": "0 bytes: no header, no records"}

    legacy = FileAccount(Layout(path="older/certificates-legacy.csv", member=None, columns=LEGACY_COLUMNS))
    text = _block(legacy, 200, 0.0, rng, pools, close_with_open_quote=False)
    (out / legacy.layout.path).parent.mkdir(exist_ok=True)
    legacy.bytes = (out / legacy.layout.path).write_bytes(text.encode(legacy.layout.encoding))
    legacy_entry = legacy.manifest_entry() | {"header": False, "good_rows": 0}
    legacy_entry["file_reject"] = {"reason": "header_mismatch", "detail": HEADER_MISMATCH_DEFINITION}
    return [empty_entry, legacy_entry]


def _manifest(entries: list[dict[str, Any]], **arguments: Any) -> dict[str, Any]:
    by_reason: Counter[str] = Counter()
    for entry in entries:
        by_reason.update(entry["rejects_by_reason"])
        if entry["file_reject"]:
            by_reason[entry["file_reject"]["reason"]] += 1
    return {
        "generator": "devservices.energy_certificates",
        "version": MANIFEST_VERSION,
        "arguments": arguments,
        "columns": [{"name": name, "type": type_} for name, type_ in (*COLUMNS, EXTRA_COLUMN)],
        "conventions": {
            "line": "physical line, 1-based, the header is line 1; "
            "a record spanning lines is named by its first",
            "records": "records after the header; "
            "good_rows + len(rejects) == records unless the file is rejected",
            "bytes": "bytes of CSV text (a zip member's uncompressed size)",
            "boolean": "true / false; empty is unknown (NULL)",
            "null": "an empty field is NULL",
            "header_mismatch": HEADER_MISMATCH_DEFINITION,
            "rejects_by_reason": "per file: line rejects; "
            "totals: line rejects plus one per file-level reject",
        },
        "totals": {
            "files": len(entries),
            "bytes": sum(entry["bytes"] for entry in entries),
            "records": sum(entry["records"] for entry in entries),
            "good_rows": sum(entry["good_rows"] for entry in entries),
            "rejected_records": sum(entry["records"] - entry["good_rows"] for entry in entries),
            "rejects_by_reason": dict(sorted(by_reason.items())),
        },
        "files": entries,
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    parser = argparse.ArgumentParser(
        prog="python -m devservices.energy_certificates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", type=Path, help="folder to write (created; must be empty)")
    parser.add_argument("--size", type=size_argument, default="200MB", help="total CSV bytes (default 200MB)")
    parser.add_argument("--files", type=int, default=8, help="data files (default 8), plus 2 defective ones")
    parser.add_argument(
        "--defects", type=float, default=0.001, help="share of defective records (default 0.001)"
    )
    parser.add_argument(
        "--zipped", type=float, default=0.25, help="share of data files zipped (default 0.25)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        manifest = generate(
            args.out,
            size=args.size,
            files=args.files,
            defects=args.defects,
            zipped=args.zipped,
            seed=args.seed,
        )
    except (FileExistsError, ValueError) as error:
        parser.error(str(error))
    print(json.dumps(manifest["totals"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
