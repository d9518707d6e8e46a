"""Sizes as people write them on a command line (``200MB``, ``2GiB``), for the demo data generators."""

from __future__ import annotations

import argparse
import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_size(text: str) -> int:
    """``200MB`` → 200,000,000 bytes (decimal units; ``MiB`` for binary ones); a bare number is bytes."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: write e.g. 200MB, 2GB or 500000 (bytes)")
    return int(float(match.group(1)) * _UNITS[unit])


def size_argument(text: str) -> int:
    """:func:`parse_size` as an argparse ``type``: a bad size is a usage error, not a traceback."""
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def sizes_argument(text: str) -> tuple[int, ...]:
    """Comma-separated sizes (``100MB,2GB``) as an argparse ``type``, ascending (a benchmark's order)."""
    try:
        return tuple(sorted(parse_size(part) for part in text.split(",") if part.strip()))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
