"""One cell by the rules, and an exact running sum: the slow path the vectorised one must agree with.

A cell is **blank** when it is empty or holds only spaces and tabs; **numeric** when, unquoted
and stripped of spaces and tabs, it is a finite decimal in plain or scientific notation
(``-12``, ``+0.50``, ``.5``, ``7.``, ``1.5e3``) with an exponent of at most ``MAX_EXPONENT`` in
size; anything else is **non-numeric**: ``n/a``, ``12,5``, ``1 000``, ``NaN``, ``Infinity``.
No locale, no thousands separator: a number that could be read two ways is a non-numeric cell a
person can find in the result, not a guess.

Sums are exact: a Python integer coefficient and a power of ten, whatever the scale of each
cell; no float ever touches a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# A sum over cells like 1e-999999999 would need a gigabyte of digits; no real column has them.
MAX_EXPONENT = 1000
_NUMBER = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,9}))?")
_SPACES = b" \t"


def unquote(raw: bytes, quote: bytes) -> bytes:
    """A field's value: an RFC 4180 quoted field without its quotes and with ``""`` read as ``"``."""
    if len(raw) >= 2 and raw[:1] == quote and raw[-1:] == quote:
        return raw[1:-1].replace(quote + quote, quote)
    return raw


def parse_number(value: bytes) -> tuple[int, int] | None:
    """``value`` (unquoted, non-blank) as (coefficient, exponent), or None if it is not a number."""
    match = _NUMBER.fullmatch(value.strip(_SPACES))
    if match is None:
        return None
    sign, whole, fraction, exponent = match.groups()
    fraction = fraction or b""
    if not whole and not fraction:
        return None
    power = int(exponent or 0) - len(fraction)
    if abs(power) > MAX_EXPONENT:
        return None
    coefficient = int(whole + fraction)
    return (-coefficient if sign == b"-" else coefficient), power


def is_blank(value: bytes) -> bool:
    return not value.strip(_SPACES)


@dataclass(slots=True)
class ExactSum:
    """Σ coefficient × 10^exponent, kept exact, shown with the most fraction digits any term had."""

    coefficient: int = 0
    exponent: int = 0
    scale: int = 0  # fraction digits to show

    def add(self, coefficient: int, exponent: int) -> None:
        if exponent < self.exponent:
            self.coefficient *= 10 ** (self.exponent - exponent)
            self.exponent = exponent
        self.coefficient += coefficient * 10 ** (exponent - self.exponent)

    def show_scale(self, scale: int) -> None:
        self.scale = max(self.scale, scale)

    def value(self) -> Decimal:
        """The sum as a Decimal with exactly ``scale`` fraction digits (exact: built from digits)."""
        coefficient, shift = self.coefficient, -self.exponent - self.scale
        if shift > 0:  # the terms had at most `scale` fraction digits: the division is exact
            coefficient, remainder = divmod(coefficient, 10**shift)
            if remainder:
                raise AssertionError(f"a sum at scale {self.scale} has more fraction digits")
        else:
            coefficient *= 10**-shift
        digits = tuple(int(digit) for digit in str(abs(coefficient)))
        return Decimal((int(coefficient < 0), digits, -self.scale))
