"""The service that writes usage files, for ``usage_files_ingest``'s tests, demo and benchmark.

    python -m devservices.usage_writer INCOMING [--files 4] [--size 100MB] [--consumers 100000]
                                                [--bad-share 0.001] [--seed 1]
                                                [--mode rename|in_place] [--in-place-delay 0.5]

Writes files of lines ``<consumer id> <amount>`` into INCOMING, and beside that folder a manifest
(``INCOMING-seed<seed>.manifest.json`` and its ``.npz``) of what a correct ingest ends with, file
by file: size, sha256, lines, applied lines, bad lines by reason (the values of
``include.usage_ingest.model.BadLineReason``) with their line numbers, and the true sum per
consumer, plus the grand total. Tests and the benchmark compare the store with the manifest,
never with a count the parser made itself.

Two ways of writing, the two a real writer has:
``rename`` (safe) writes ``INCOMING/.<name>.part`` and renames it into place when complete;
``in_place`` writes the final name in chunks of ``in_place_chunk`` bytes with ``in_place_delay``
seconds between them, so that a scan sees a growing file (the case the finished rule is for).

Variety: a ``bad_share`` of lines is bad, spread over every reason and its spellings (blank
lines, ``\\r``-only lines, tabs, doubled or edge spaces, signs, decimals, non-ASCII digits,
ids beyond bigint, amounts beyond 10^12); as many more are good but odd (CRLF endings, leading
zeros, the largest id and amount, consumer 0); every other file lacks its final newline.

Speed: lines are rendered by NumPy a million at a time (digits by vectorised division, one
``uint8`` matrix per chunk with the padding dropped); only the few odd lines are Python bytes.
Same arguments and NumPy version: byte-identical files. About 10 s per GB (one core, loaded).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

from devservices.sizes import size_argument
from include.usage_ingest.model import BadLineReason

log = logging.getLogger(__name__)

MAX_CONSUMER = 9_223_372_036_854_775_807
MAX_AMOUNT = 1_000_000_000_000
SUFFIX = ".usage"
CHUNK_LINES = 1 << 20
REASONS = tuple(BadLineReason)

Mode = Literal["rename", "in_place"]


@dataclass(frozen=True)
class ManifestFile:
    """What a correct ingest of one file finds."""

    name: str
    size: int
    sha256: str
    lines: int
    applied_lines: int
    bad_lines: dict[str, int]  # reason value → count, every reason present
    amount: int  # the sum of its applied amounts


@dataclass(frozen=True)
class Manifest:
    """What a correct ingest of the written files ends with; the arrays live in ``arrays``."""

    path: Path  # the JSON
    arrays: Path  # the .npz beside it
    incoming: Path
    files: tuple[ManifestFile, ...]
    consumers: int  # distinct consumers with an applied line
    amount: int  # grand total

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        return cls(
            path=path,
            arrays=path.with_name(data["arrays"]),
            incoming=Path(data["incoming"]),
            files=tuple(ManifestFile(**entry) for entry in data["files"]),
            consumers=data["consumers"],
            amount=data["amount"],
        )

    def totals(self) -> dict[int, int]:
        """The true total per consumer over all files."""
        consumers, amounts = self.total_arrays()
        return dict(zip(consumers.tolist(), amounts.tolist(), strict=True))

    def total_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The true totals as (consumers ascending, amounts), int64 and compact for millions."""
        with np.load(self.arrays) as arrays:
            return arrays["consumers"], arrays["amounts"]

    def file_totals(self, name: str) -> dict[int, int]:
        """The true sum per consumer of one file (its usage hour's share)."""
        index = self._index(name)
        with np.load(self.arrays) as arrays:
            consumers, amounts = arrays[f"f{index}_consumers"], arrays[f"f{index}_amounts"]
            return dict(zip(consumers.tolist(), amounts.tolist(), strict=True))

    def bad_lines(self, name: str) -> list[tuple[int, BadLineReason]]:
        """Every bad line of one file: (1-based line number, reason), in file order."""
        index = self._index(name)
        with np.load(self.arrays) as arrays:
            numbers, reasons = arrays[f"f{index}_bad_numbers"], arrays[f"f{index}_bad_reasons"]
            return [(n, REASONS[r]) for n, r in zip(numbers.tolist(), reasons.tolist(), strict=True)]

    def _index(self, name: str) -> int:
        for index, entry in enumerate(self.files):
            if entry.name == name:
                return index
        raise KeyError(f"{name} is not in the manifest {self.path}")


def write_files(
    incoming: Path,
    *,
    files: int = 4,
    size_bytes: int = 10_000_000,
    consumers: int = 100_000,
    bad_share: float = 0.001,
    seed: int = 1,
    mode: Mode = "rename",
    in_place_delay: float = 0.0,
    in_place_chunk: int = 1 << 20,
    mtime: datetime | None = None,
    prefix: str | None = None,
) -> Manifest:
    """Write ``files`` usage files of about ``size_bytes`` each into ``incoming`` (created).

    ``consumers`` ids are drawn (with a skew: low indices are busier), including 0 and the
    largest bigint once there are 3 or more. ``mtime`` (aware) is set on every file once written,
    so tests choose the arrival hour and need no waiting for the settle time. Files are named
    ``<prefix><n>.usage`` (prefix ``seed<seed>-``), so drops of several seeds share a folder.
    """
    if mode not in ("rename", "in_place"):
        raise ValueError(f"mode must be 'rename' or 'in_place', not {mode!r}")
    if consumers < 1 or files < 0 or size_bytes < 0 or not 0 <= bad_share <= 0.5:
        raise ValueError("need consumers ≥ 1, files ≥ 0, size_bytes ≥ 0 and 0 ≤ bad_share ≤ 0.5")
    incoming.mkdir(parents=True, exist_ok=True)
    prefix = f"seed{seed}-" if prefix is None else prefix
    ids = _consumer_ids(consumers, np.random.default_rng([seed, 0]))
    # The last two ids (0 and the largest bigint) are only spelled by odd lines: rows stay narrow.
    id_rows = _rows(ids[: len(ids) - 2 if consumers >= 3 else consumers], b" ")
    grand = np.zeros(consumers, dtype=np.int64)
    seen = np.zeros(consumers, dtype=bool)
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for index in range(files):
        name = f"{prefix}{index:04d}{SUFFIX}"
        generated = _File(
            ids, id_rows, size_bytes, bad_share, seed=seed, index=index, final_newline=index % 2 == 0
        )
        target = incoming / name
        if mode == "rename":
            part = incoming / f".{name}.part"
            with part.open("wb") as out:
                generated.write(out.write)
            if mtime is not None:  # before the rename: the file appears with its mtime, atomically
                os.utime(part, (mtime.timestamp(), mtime.timestamp()))
            os.replace(part, target)
        else:
            with target.open("wb") as out:

                def slowly(data: bytes, out=out) -> None:
                    for at in range(0, len(data), in_place_chunk):
                        out.write(data[at : at + in_place_chunk])
                        out.flush()
                        if in_place_delay:
                            time.sleep(in_place_delay)

                generated.write(slowly)
            if mtime is not None:
                os.utime(target, (mtime.timestamp(), mtime.timestamp()))
        grand += generated.totals
        seen |= generated.seen
        used = np.flatnonzero(generated.seen)
        order = np.argsort(ids[used], kind="stable")
        arrays[f"f{index}_consumers"] = ids[used][order]
        arrays[f"f{index}_amounts"] = generated.totals[used][order]
        arrays[f"f{index}_bad_numbers"] = np.asarray(generated.bad_numbers, dtype=np.int64)
        arrays[f"f{index}_bad_reasons"] = np.asarray(generated.bad_reasons, dtype=np.uint8)
        bad_counts = {reason.value: 0 for reason in REASONS}
        for code in generated.bad_reasons:
            bad_counts[REASONS[code].value] += 1
        entries.append(
            ManifestFile(
                name=name,
                size=target.stat().st_size,
                sha256=generated.sha256.hexdigest(),
                lines=generated.lines,
                applied_lines=generated.lines - len(generated.bad_numbers),
                bad_lines=bad_counts,
                amount=int(generated.totals.sum()),
            )
        )
    used = np.flatnonzero(seen)
    order = np.argsort(ids[used], kind="stable")
    arrays["consumers"], arrays["amounts"] = ids[used][order], grand[used][order]
    path = incoming.parent / f"{incoming.name}-{prefix}manifest.json"
    npz = path.with_name(path.name.removesuffix(".json") + ".npz")
    np.savez(npz, **arrays)
    manifest = Manifest(
        path=path,
        arrays=npz,
        incoming=incoming,
        files=tuple(entries),
        consumers=len(used),
        amount=int(grand.sum()),
    )
    path.write_text(
        json.dumps(
            {
                "incoming": str(incoming),
                "arrays": npz.name,
                "seed": seed,
                "consumers": manifest.consumers,
                "amount": manifest.amount,
                "files": [vars(entry) for entry in entries],
            },
            indent=1,
        )
    )
    return manifest


def _consumer_ids(consumers: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct ids of varied length (most of 6-8 digits), ending with 0 and the largest bigint."""
    ids = rng.choice(max(10 * consumers, 1_000_000), size=consumers, replace=False).astype(np.int64) + 1
    if consumers >= 3:
        ids[-2], ids[-1] = 0, MAX_CONSUMER
    return ids


class _File:
    """One file's content, generated chunk by chunk, with what it must ingest to."""

    def __init__(
        self,
        ids: np.ndarray,
        id_rows: tuple[np.ndarray, np.ndarray],
        size: int,
        bad_share: float,
        *,
        seed: int,
        index: int,
        final_newline: bool,
    ) -> None:
        self.ids, self.size, self.bad_share = ids, size, bad_share
        self.rng = np.random.default_rng([seed, 1, index])
        self.odd = random.Random(f"{seed}-{index}")
        self.final_newline = final_newline
        self.totals = np.zeros(len(ids), dtype=np.int64)
        self.seen = np.zeros(len(ids), dtype=bool)  # a consumer whose amounts are all 0 has a total
        self.id_rows, self.id_lengths = id_rows
        self.sha256 = hashlib.sha256()
        self.lines = 0
        self.bad_numbers: list[int] = []
        self.bad_reasons: list[int] = []

    def write(self, out: Callable[[bytes], object]) -> None:
        written = 0
        while written < self.size:
            data = self._chunk(self.size - written)
            written += len(data)
            if written >= self.size and not self.final_newline:
                data = data[:-1]  # the last line is a good, non-empty one: it still counts
            self.sha256.update(data)
            out(data)

    def _chunk(self, remaining: int) -> bytes:
        rng, count = self.rng, CHUNK_LINES
        index = (len(self.id_rows) * rng.random(count) ** 2).astype(np.int64)
        amounts = rng.integers(0, len(_AMOUNT_ROWS), count, dtype=np.int64)
        matrix = np.concatenate([self.id_rows[index], _AMOUNT_ROWS[amounts]], axis=1)
        ends = np.cumsum(self.id_lengths[index] + _AMOUNT_LENGTHS[amounts])
        if ends[-1] >= remaining:
            # Cut after the line that reaches the size; the odd lines below change it but little.
            count = int(np.searchsorted(ends, remaining)) + 1
            matrix, index, amounts, ends = matrix[:count], index[:count], amounts[:count], ends[:count]
        flat = matrix.ravel()
        rendered = flat[flat != 0].tobytes()

        odd = np.flatnonzero(rng.random(count) < 2 * self.bad_share)
        odd = odd[odd < count - 1]  # the last line of a chunk stays plain (it may end the file)
        good = np.ones(count, dtype=bool)
        pieces, at = [], 0
        for line in odd.tolist():
            start = int(ends[line - 1]) if line else 0
            text, reason, applied = self._odd_line(int(index[line]), int(amounts[line]))
            pieces += [rendered[at:start], text, b"\n"]
            at = int(ends[line])
            if reason is None:
                index[line], amounts[line] = applied
                continue
            good[line] = False
            self.bad_numbers.append(self.lines + line + 1)
            self.bad_reasons.append(REASONS.index(reason))
        pieces.append(rendered[at:])
        np.add.at(self.totals, index[good], amounts[good])
        self.seen[index[good]] = True
        self.lines += count
        return b"".join(pieces)

    def _odd_line(self, index: int, amount: int) -> tuple[bytes, BadLineReason | None, tuple[int, int]]:
        """Half the odd lines are good but unusual, half are bad, of every reason.

        Returns the text, the reason if bad, and the (id index, amount) it applies if good.
        """
        pick = self.odd.random()
        if pick < 0.5:
            extreme = self.odd.random()
            if len(self.ids) >= 3 and extreme < 0.1:
                index = len(self.ids) - 1 if extreme < 0.05 else len(self.ids) - 2
            elif extreme < 0.15:
                amount = MAX_AMOUNT
            c, a = str(int(self.ids[index])).encode(), str(amount).encode()
            return self.odd.choice(_GOOD_SPELLINGS)(c, a), None, (index, amount)
        c, a = str(int(self.ids[index])).encode(), str(amount).encode()
        reason = REASONS[int((pick - 0.5) * 2 * len(REASONS))]
        return self.odd.choice(_BAD_SPELLINGS[reason])(c, a), reason, (index, amount)


# Spellings of a good line (consumer c, amount a) that a parser might get wrong.
_GOOD_SPELLINGS: tuple[Callable[[bytes, bytes], bytes], ...] = (
    lambda c, a: c + b" " + a + b"\r",  # CRLF
    lambda c, a: b"000" + c + b" 00" + a,
    lambda c, a: b"0" * 25 + c + b" " + a,  # longer than any int64, still in range
    lambda c, a: c + b" " + b"0" * 30 + a,
)

_BAD_SPELLINGS: dict[BadLineReason, tuple[Callable[[bytes, bytes], bytes], ...]] = {
    BadLineReason.EMPTY: (lambda c, a: b"", lambda c, a: b"\r"),
    BadLineReason.FIELD_COUNT: (
        lambda c, a: c + b"  " + a,
        lambda c, a: b" " + c + b" " + a,
        lambda c, a: c + b" " + a + b" ",
        lambda c, a: c + b"\t" + a,
        lambda c, a: c + b" " + a + b" 7",
        lambda c, a: c + a,
        lambda c, a: c + b" ",
        lambda c, a: b" ",
        lambda c, a: b"\r\r",
        lambda c, a: c + b" " + a + b"\r \r",
    ),
    BadLineReason.CONSUMER_NOT_INTEGER: (
        lambda c, a: b"x" + c + b" " + a,
        lambda c, a: c + b".5 " + a,
        lambda c, a: b"+" + c + b" " + a,
        lambda c, a: b"- " + a,
        lambda c, a: b"--" + c + b" " + a,
        lambda c, a: "١٢٣".encode() + b" " + a,  # Arabic-Indic digits: isdigit() but not ASCII
        lambda c, a: b"\xff" + c + b" " + a,  # not UTF-8 at all
        lambda c, a: b"1e3 " + a,
        lambda c, a: b"-x " + b"-" + a,  # not an integer comes before negative
    ),
    BadLineReason.AMOUNT_NOT_INTEGER: (
        lambda c, a: c + b" " + a + b".0",
        lambda c, a: c + b" 0x1f",
        lambda c, a: c + b" +" + a,
        lambda c, a: c + b" -",
        lambda c, a: c + b" " + "٣".encode(),
        lambda c, a: c + b" " + a + b"\r\r",
        lambda c, a: c + b" " + a + b"\xe9",
        lambda c, a: b"-" + c + b" 1e6",  # not an integer comes before negative
    ),
    BadLineReason.NEGATIVE: (
        lambda c, a: b"-" + c + b" " + a,
        lambda c, a: c + b" -" + a,
        lambda c, a: b"-0 " + a,
        lambda c, a: c + b" -0",
        lambda c, a: b"-99999999999999999999999 " + a,  # negative comes before out of range
    ),
    BadLineReason.OUT_OF_RANGE: (
        lambda c, a: b"9223372036854775808 " + a,
        lambda c, a: b"000009223372036854775808 " + a,
        lambda c, a: b"99999999999999999999999999 " + a,
        lambda c, a: c + b" 1000000000001",
        lambda c, a: c + b" 18446744073709551617",  # wraps to 1 in uint64
        lambda c, a: c + b" " + b"9" * 40,
    ),
}


def _rows(values: np.ndarray, end: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative int64s as ASCII digits then ``end``, one row each, 0-padded on the left (the
    padding is dropped when a chunk is flattened), and each row's length without the padding."""
    lengths = np.searchsorted(_POWERS, values, side="right").astype(np.int64) + 1
    width = int(lengths.max()) if len(values) else 1
    matrix = np.empty((len(values), width + 1), dtype=np.uint8)
    matrix[:, width] = end[0]
    rest = values.copy()
    for column in range(width - 1, -1, -1):
        matrix[:, column] = rest % 10 + ord("0")
        rest //= 10
    matrix[:, :width][np.arange(width) < (width - lengths)[:, None]] = 0
    return matrix, lengths + 1


_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)
# Every amount a plain line has, rendered once; chunks pick rows by index.
_AMOUNT_ROWS, _AMOUNT_LENGTHS = _rows(np.arange(100_000, dtype=np.int64), b"\n")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    parser = argparse.ArgumentParser(
        prog="python -m devservices.usage_writer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("incoming", type=Path, help="folder to write the files into (created)")
    parser.add_argument("--files", type=int, default=4, help="files to write (default 4)")
    parser.add_argument("--size", type=size_argument, default="100MB", help="bytes per file (default 100MB)")
    parser.add_argument("--consumers", type=int, default=100_000, help="distinct consumers (default 100000)")
    parser.add_argument("--bad-share", type=float, default=0.001, help="share of bad lines (default 0.001)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=("rename", "in_place"), default="rename")
    parser.add_argument(
        "--in-place-delay", type=float, default=0.0, help="seconds between 1 MiB writes in in_place mode"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        manifest = write_files(
            args.incoming,
            files=args.files,
            size_bytes=args.size,
            consumers=args.consumers,
            bad_share=args.bad_share,
            seed=args.seed,
            mode=args.mode,
            in_place_delay=args.in_place_delay,
        )
    except ValueError as error:
        parser.error(str(error))
    took = time.perf_counter() - started
    total = sum(entry.size for entry in manifest.files)
    log.info(
        "wrote %d files, %d bytes in %.1f s; manifest %s", len(manifest.files), total, took, manifest.path
    )
    print(json.dumps({"manifest": str(manifest.path), "bytes": total, "amount": manifest.amount}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
