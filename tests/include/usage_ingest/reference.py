"""The line rules of ``usage_files_ingest`` written the slow, obvious way: one line at a time.

The specification the vectorised parser (``include.usage_ingest.lines``) and the writer's
manifest (``devservices.usage_writer``) are both checked against; it shares no code with either.
"""

from __future__ import annotations

import re
from collections import Counter

from include.usage_ingest.model import BadLineReason

MAX_CONSUMER = 2**63 - 1
MAX_AMOUNT = 10**12
INTEGER = re.compile(rb"-?[0-9]+")


def classify(line: bytes) -> BadLineReason | tuple[int, int]:
    """A line without its ``\\n``: its reason if bad, else (consumer, amount)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        return BadLineReason.EMPTY
    fields = line.split(b" ")
    if len(fields) != 2 or not all(fields):
        return BadLineReason.FIELD_COUNT
    consumer, amount = fields
    if not INTEGER.fullmatch(consumer):
        return BadLineReason.CONSUMER_NOT_INTEGER
    if not INTEGER.fullmatch(amount):
        return BadLineReason.AMOUNT_NOT_INTEGER
    if consumer.startswith(b"-") or amount.startswith(b"-"):
        return BadLineReason.NEGATIVE
    if int(consumer) > MAX_CONSUMER or int(amount) > MAX_AMOUNT:
        return BadLineReason.OUT_OF_RANGE
    return int(consumer), int(amount)


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a file's bytes: a last line without ``\\n`` counts, an empty file has none."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def ingest(data: bytes, first_line: int = 1) -> tuple[Counter[int], list[tuple[int, BadLineReason]], int]:
    """What a correct parse of ``data`` finds: sums per consumer, bad lines (number, reason), lines."""
    totals: Counter[int] = Counter()
    bad = []
    lines = split_lines(data)
    for number, line in enumerate(lines, start=first_line):
        verdict = classify(line)
        if isinstance(verdict, BadLineReason):
            bad.append((number, verdict))
        else:
            totals[verdict[0]] += verdict[1]
    return totals, bad, len(lines)
