"""Which text fits which column type, and how it is written for PostgreSQL: one rule for both.

Inference (:mod:`~include.csv_import.inference`) picks the narrowest type every sampled value
of a column fits; import (:mod:`~include.csv_import.reader`) checks every value against that
type with the *same* converter and hands PostgreSQL the converter's output. So a type is never
chosen on evidence that import would read differently, and a value that fits is written in the
one spelling PostgreSQL reads the same way whatever the session's ``DateStyle`` or time zone.

The lattice
-----------
Three chains, each value of a narrower type also fitting the wider ones, and ``text`` above all:

* ``integer`` (int4) → ``bigint`` (int8) → ``numeric``
* ``date`` → ``timestamp`` → ``timestamptz``
* ``boolean``

:func:`widen` of two types in one chain is the wider; of types in different chains, ``text``.

What each type accepts (decided here, documented in the README)
---------------------------------------------------------------
* Empty text is NULL for **every** type, ``text`` included: Python's :mod:`csv` does not tell
  ``,,`` from ``,"",``, and an empty string that means "no value" is what CSV exports write.
  Around non-text values, spaces are ignored (``" 12 "`` is the integer 12); text is kept verbatim.
* ``boolean``: ``true/false``, ``t/f``, ``yes/no``, ``y/n`` in any case. Not ``1``/``0``: such a
  column is an integer, which keeps every value, whereas calling it boolean would make a stray
  ``2`` a reject.
* ``integer`` / ``bigint``: an optional sign and ASCII digits within int4 / int8. No leading zero
  (``007`` is a code, not a number: typing it would lose the zeros), no ``1_000`` or ``1,000``.
* ``numeric``: finite decimals, with a fraction and an exponent (``-1.5e3``); ``NaN`` and
  ``Infinity`` are not numbers a CSV means, and the same leading-zero rule holds (``0.5`` is fine).
  Exponents are bounded (±1000) so that a value fits PostgreSQL's numeric.
* ``date``: ISO ``YYYY-MM-DD`` only. ``01/02/2024`` is 1 February or 2 January depending on who
  wrote it, and a guess that differs per file would silently swap days and months.
* ``timestamp``: ISO date and time (``T`` or a space between), seconds and fraction optional, no
  zone; a bare date is its midnight. ``timestamptz``: the same with a zone (``Z``, ``+02:00``);
  a value without a zone in a ``timestamptz`` column is read as UTC (the project's convention),
  never in the session's zone, so the result does not depend on where the import ran.
* ``text``: anything.

Cost: these run once per value of a 100 GB drop, so each is a few C-level string calls and no
regular expression, except ``numeric`` (one compiled ``fullmatch``) and the date/time types
(``fromisoformat`` behind a length check).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from include.csv_import.model import ColumnType

# A converter returns the value PostgreSQL is given (None: NULL) or raises NotOfType.
Converter = Callable[[str], str | None]

INT4 = (-(2**31), 2**31 - 1)
INT8 = (-(2**63), 2**63 - 1)
MAX_EXPONENT = 1000
_EXPONENT_DIGITS = len(str(MAX_EXPONENT))

_CHAINS = (
    (ColumnType.INTEGER, ColumnType.BIGINT, ColumnType.NUMERIC),
    (ColumnType.DATE, ColumnType.TIMESTAMP, ColumnType.TIMESTAMPTZ),
    (ColumnType.BOOLEAN,),
)
# The order inference tries types in: narrowest first, each chain in its order.
NARROWEST_FIRST = (
    ColumnType.BOOLEAN,
    ColumnType.INTEGER,
    ColumnType.BIGINT,
    ColumnType.NUMERIC,
    ColumnType.DATE,
    ColumnType.TIMESTAMP,
    ColumnType.TIMESTAMPTZ,
    ColumnType.TEXT,
)

_TRUE = frozenset({"true", "t", "yes", "y"})
_FALSE = frozenset({"false", "f", "no", "n"})
_BOOLEAN_MAX_LEN = 5

# The one spelling of each type's values that is written for PostgreSQL unchanged (besides empty
# text, which is NULL): what the column checks below look for, and what the CSV import's plain
# records must hold (:mod:`~include.csv_import.plain`, whose RE2 reads the same syntax). Years
# from 1000, no second 60, zones within ±14:59: PostgreSQL and ``fromisoformat`` read each of
# these the same way, so a value either reads unchanged in both or is refused by one of them.
_ISO_DATE = "[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_ISO_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
CANONICAL: dict[ColumnType, str] = {
    ColumnType.INTEGER: r"-?[1-9][0-9]{0,8}|0",
    ColumnType.BIGINT: r"-?[1-9][0-9]{0,17}|0",
    ColumnType.NUMERIC: r"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?",
    ColumnType.DATE: _ISO_DATE,
    ColumnType.TIMESTAMP: f"{_ISO_DATE}[T ]{_ISO_TIME}",
    ColumnType.TIMESTAMPTZ: f"{_ISO_DATE}[T ]{_ISO_TIME}(?:Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])",
    ColumnType.BOOLEAN: "true|false",
}

_NUMERIC = re.compile(r"[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][+-]?([0-9]+))?|[+-]?\.[0-9]+")
_PLAIN_DECIMAL = re.compile(CANONICAL[ColumnType.NUMERIC]).fullmatch
_DATE_LEN = 10
_PLAIN_TIMESTAMP_LEN = 19  # YYYY-MM-DD HH:MM:SS, which PostgreSQL reads as is (also with T)
# The same with an explicit zone, which PostgreSQL reads as is whatever the session's zone.
_ZONED = "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|[+-][0-9]{2}:[0-9]{2})"
_PLAIN_TIMESTAMPTZ = re.compile(_ZONED).fullmatch
_MIN_TIMESTAMP_LEN = 16  # YYYY-MM-DDTHH:MM
_MAX_TIMESTAMP_LEN = 35  # ...:SS.ffffff+HH:MM:SS


class NotOfType(ValueError):
    """A value does not fit a column type; the message says what was expected."""


def _boolean(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if len(value) <= _BOOLEAN_MAX_LEN:
        lowered = value.lower()
        if lowered in _TRUE:
            return "true"
        if lowered in _FALSE:
            return "false"
    raise NotOfType("expected a boolean (true/false, t/f, yes/no, y/n)")


def _integer_in(low: int, high: int, name: str) -> Converter:
    message = f"expected {name} between {low} and {high}, without leading zeros"
    # Most values: unsigned, short enough to be in range whatever their digits; one C call.
    plain = re.compile(f"[1-9][0-9]{{0,{len(str(high)) - 2}}}|0").fullmatch

    def convert(value: str) -> str | None:
        if plain(value):
            return value
        value = value.strip()
        if not value:
            return None
        digits = value[1:] if value[0] in "+-" else value
        # isdigit alone accepts '²' and Arabic-Indic digits, int() accepts '1_000': both refused.
        if not (digits.isascii() and digits.isdigit()) or (digits[0] == "0" and len(digits) > 1):
            raise NotOfType(message)
        number = int(value)
        if not low <= number <= high:
            raise NotOfType(message)
        return value if value[0] != "+" else value[1:]

    return convert


def _numeric(value: str) -> str | None:
    if _PLAIN_DECIMAL(value):
        return value
    value = value.strip()
    if not value:
        return None
    match = _NUMERIC.fullmatch(value)
    if match is None:
        raise NotOfType("expected a decimal number such as -12.5 or 1.5e3")
    exponent = match[1]
    # The length test first: int() of thousands of digits is slow, and refused past 4300.
    if exponent is not None and (len(exponent) > _EXPONENT_DIGITS or int(exponent) > MAX_EXPONENT):
        raise NotOfType(f"expected a decimal number with an exponent of at most {MAX_EXPONENT}")
    return value


def _date(value: str) -> str | None:
    if len(value) != _DATE_LEN:
        value = value.strip()
    if not value:
        return None
    # fromisoformat alone also takes 20240131 and 2024-W05-3, which nobody means as a date here.
    if len(value) == _DATE_LEN and value[4] == "-" and value[7] == "-":
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise NotOfType("expected an ISO date YYYY-MM-DD")


def _parse_timestamp(value: str) -> datetime:
    if len(value) == _DATE_LEN:
        return datetime.combine(date.fromisoformat(_date(value) or ""), datetime.min.time())
    if (
        _MIN_TIMESTAMP_LEN <= len(value) <= _MAX_TIMESTAMP_LEN
        and value[4] == "-"
        and value[7] == "-"
        and value[10] in "T "
        and value[13] == ":"
    ):
        return datetime.fromisoformat(value)
    raise ValueError(value)


def _timestamp(value: str) -> str | None:
    if len(value) == _PLAIN_TIMESTAMP_LEN and value[10] in "T " and value[13] == ":" and value[16] == ":":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    value = value.strip()
    if not value:
        return None
    try:
        parsed = _parse_timestamp(value)
    except (ValueError, NotOfType):
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        raise NotOfType("expected an ISO timestamp without time zone, YYYY-MM-DD HH:MM[:SS[.ffffff]]")
    return parsed.isoformat(sep=" ")


def _timestamptz(value: str) -> str | None:
    if _PLAIN_TIMESTAMPTZ(value):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    value = value.strip()
    if not value:
        return None
    try:
        parsed = _parse_timestamp(value)
    except (ValueError, NotOfType):
        raise NotOfType(
            "expected an ISO timestamp, YYYY-MM-DD HH:MM[:SS[.ffffff]][Z|±HH:MM] (no zone: UTC)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat(sep=" ")


CONVERTERS: dict[ColumnType, Converter] = {
    ColumnType.BOOLEAN: _boolean,
    ColumnType.INTEGER: _integer_in(*INT4, "an integer"),
    ColumnType.BIGINT: _integer_in(*INT8, "a bigint"),
    ColumnType.NUMERIC: _numeric,
    ColumnType.DATE: _date,
    ColumnType.TIMESTAMP: _timestamp,
    ColumnType.TIMESTAMPTZ: _timestamptz,
    # str() of a str is the str itself, and a C call: the reader turns empty text into NULL for
    # the whole row at once, instead of calling a Python function per text field.
    ColumnType.TEXT: str,
}


def column_type_named(name: object) -> ColumnType:
    """The type a user names (PostgreSQL's name, any case); ValueError listing the choices."""
    try:
        return ColumnType(str(name).lower())
    except ValueError:
        choices = ", ".join(t.value for t in ColumnType)
        raise ValueError(f"{str(name)!r}, which is not one of: {choices}") from None


def converter(column_type: ColumnType) -> Converter:
    """The function that checks a value against ``column_type`` and writes it for PostgreSQL."""
    return CONVERTERS[column_type]


def convert(column_type: ColumnType, value: str) -> str | None:
    """``value`` as PostgreSQL is given it in a ``column_type`` column (None: NULL); raises NotOfType."""
    return CONVERTERS[column_type](value) or None


def fits(column_type: ColumnType, value: str) -> bool:
    """Whether ``value`` is a value of ``column_type`` (empty text fits every type, as NULL)."""
    try:
        CONVERTERS[column_type](value)
    except NotOfType:
        return False
    return True


def narrowest(value: str, at_least: ColumnType | None = None) -> ColumnType | None:
    """The narrowest type that ``value`` fits, no narrower than ``at_least``; None for empty text.

    Inference calls this once per sampled value that its column's current type refuses.
    """
    if not value.strip():
        return None
    start = NARROWEST_FIRST.index(at_least) if at_least is not None else 0
    for candidate in NARROWEST_FIRST[start:]:
        if (at_least is None or widen(at_least, candidate) == candidate) and fits(candidate, value):
            return candidate
    return ColumnType.TEXT


def widen(a: ColumnType, b: ColumnType) -> ColumnType:
    """The narrowest type whose values include both ``a``'s and ``b``'s."""
    if a == b:
        return a
    for chain in _CHAINS:
        if a in chain and b in chain:
            return max(a, b, key=chain.index)
    return ColumnType.TEXT


# --- a column of values at once ------------------------------------------------------------------
#
# The reader converts a batch of records column by column. For most columns of most batches
# every value is already in the one spelling the converter would return (``42``, ``-1.5``,
# ``2024-01-31``, ``true``): one regular expression over the values joined by newlines, and a C
# ``map`` of ``fromisoformat`` for dates, prove it without a Python call per value. Such a check
# accepts a subset of what the converter accepts and returns the values unchanged, exactly as the
# converter would (a test holds the two to that); any other column goes through the converter.

ColumnCheck = Callable[[Sequence[str]], bool]


def _joined(pattern: str) -> Callable[[Sequence[str]], bool]:
    every = re.compile(f"(?:{pattern})?(?:\n(?:{pattern})?)*")

    def check(values: Sequence[str]) -> bool:
        text = "\n".join(values)
        # A value holding a newline of its own would pass as two.
        return text.count("\n") == len(values) - 1 and every.fullmatch(text) is not None

    return check


def _all_parse(shape: Callable[[Sequence[str]], bool], parse: Callable[[str], object]) -> ColumnCheck:
    def check(values: Sequence[str]) -> bool:
        if not shape(values):
            return False
        try:
            deque(map(parse, filter(None, values)), maxlen=0)
        except ValueError:
            return False
        return True

    return check


_CANONICAL_BOOLEANS = frozenset({"true", "false", ""})
_COLUMN_CHECKS: dict[ColumnType, ColumnCheck] = {
    ColumnType.INTEGER: _joined(CANONICAL[ColumnType.INTEGER]),
    ColumnType.BIGINT: _joined(CANONICAL[ColumnType.BIGINT]),
    ColumnType.NUMERIC: _joined(CANONICAL[ColumnType.NUMERIC]),
    ColumnType.DATE: _all_parse(_joined(CANONICAL[ColumnType.DATE]), date.fromisoformat),
    ColumnType.TIMESTAMP: _all_parse(_joined(CANONICAL[ColumnType.TIMESTAMP]), datetime.fromisoformat),
    ColumnType.TIMESTAMPTZ: _all_parse(_joined(CANONICAL[ColumnType.TIMESTAMPTZ]), datetime.fromisoformat),
    ColumnType.BOOLEAN: lambda values: _CANONICAL_BOOLEANS.issuperset(values),
    ColumnType.TEXT: lambda values: True,
}


def already_canonical(column_type: ColumnType, values: Sequence[str]) -> bool:
    """Whether every one of ``values`` fits ``column_type`` and is already written as its converter writes it.

    True means the values can go to PostgreSQL as they are (empty text still means NULL); False
    means nothing, only that they must go through :func:`converter` one by one.
    """
    check = _COLUMN_CHECKS.get(column_type)
    return check is not None and check(values)
