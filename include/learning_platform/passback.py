"""Parse ``passback_params``: a Python dict literal sent as a string, never evaluated.

The platform serialises the LTI passback parameters with Python's ``repr`` of a dict, so the
field is not JSON. ``eval`` would run whatever the feed contains, and ``ast.literal_eval``
accepts far more than a flat dict of strings (nested containers, numbers, sets) and is slow.
What we accept is exactly this grammar: ``{ 'key': 'value', ... }`` with string keys and string
values. Plain single-quoted strings without escapes are read by splitting on the quotes, a few
string operations per value; anything else falls back to Python's own parser (``ast.parse``),
whose tree we walk ourselves and accept only if it is a flat dict of string constants. Nothing
is ever executed.

The field is in every one of a day's million records, and nearly always exactly as the platform
writes it: the three known keys in one order, plain printable values. :func:`parse_usual_passback`
reads that text with one regular expression, ahead of all this (no dict, nothing left to check),
and reads nothing that :func:`parse_passback_params` would read otherwise.
"""

from __future__ import annotations

import ast
import re

PASSBACK_KEYS = ("oauth_consumer_key", "lis_result_sourcedid", "lis_outcome_service_url")

# A real value is a few hundred characters. The cap keeps a hostile field from costing
# unbounded parse time or memory, and keeps the parser's recursion shallow.
MAX_PASSBACK_CHARS = 16_384

# The field as the platform writes it, repr() of its dict: the keys in PASSBACK_KEYS order, each
# value printable ASCII other than ' (0x27) and \ (0x5c), characters repr() writes as they are.
_USUAL_VALUE = r"'([\x20-\x26\x28-\x5b\x5d-\x7e]*)'"
_USUAL_PASSBACK = re.compile(r"\{" + ", ".join(f"'{key}': {_USUAL_VALUE}" for key in PASSBACK_KEYS) + r"\}")


class PassbackParseError(ValueError):
    """The string is not a flat dict literal of strings."""


def parse_passback_params(text: str) -> dict[str, str]:
    """Return the dict that ``text`` spells, or raise :class:`PassbackParseError`.

    Duplicate keys keep the last value, as Python's dict display does.
    """
    if len(text) > MAX_PASSBACK_CHARS:
        raise PassbackParseError(f"longer than {MAX_PASSBACK_CHARS} characters")
    simple = _parse_simple_dict(text.strip())
    if simple is not None:
        return simple
    return _parse_with_python_grammar(text)


def parse_usual_passback(text: str) -> tuple[str, str, str] | None:
    """The values of PASSBACK_KEYS, in order, if ``text`` is spelled as the platform spells it.

    None for any other text, which may still be a valid dict: that is for
    :func:`parse_passback_params` to say. When this reads values, they are the ones it would
    read, and they are plain printable ASCII (no NUL, no surrogate): nothing left to check.
    """
    if len(text) > MAX_PASSBACK_CHARS:  # which parse_passback_params refuses
        return None
    match = _USUAL_PASSBACK.fullmatch(text)
    return match.groups() if match else None


def _parse_simple_dict(text: str) -> dict[str, str] | None:
    """The dict if ``text`` is ``{'k': 'v', ...}`` with plain single-quoted strings, else None.

    Plain strings hold no quote, backslash or newline, so splitting on ``'`` leaves the strings
    at odd positions and the punctuation between them at even ones: ``{``, then ``:`` and ``,``
    by turns, then ``}`` (a trailing comma allowed), each with any whitespace around it.
    Whatever does not fit exactly is left to the full parser, so this only has to be right
    about what it accepts.
    """
    if "\\" in text:
        return None
    parts = text.split("'")
    pairs, odd = divmod(len(parts) - 1, 4)
    if odd:
        return None
    # The punctuation, one piece per gap between strings, whitespace dropped; "'" cannot occur
    # in a piece, so joining with it keeps each piece apart (per-piece checks, done in C).
    punctuation = "".join("'".join(parts[0::2]).split())
    if pairs:
        opened = "{'" + "','".join(":" * pairs) + "'"  # {'  ':'  ','  ':'  ... ':'
        if punctuation != opened + "}" and punctuation != opened + ",}":
            return None
    elif punctuation != "{}":
        return None
    if "\n" in text and any("\n" in string for string in parts[1::2]):
        return None
    return dict(zip(parts[1::4], parts[3::4], strict=True))


def _parse_with_python_grammar(text: str) -> dict[str, str]:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise PassbackParseError(f"not a Python literal ({type(error).__name__})") from None
    node = tree.body
    if not isinstance(node, ast.Dict):
        raise PassbackParseError(f"a {type(node).__name__} expression, not a dict")
    parsed: dict[str, str] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        # A ``**mapping`` entry has no key node.
        if not (_is_string_constant(key) and _is_string_constant(value)):
            raise PassbackParseError("keys and values must be plain strings")
        parsed[key.value] = value.value
    return parsed


def _is_string_constant(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is str
