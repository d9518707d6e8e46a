"""Parse ``passback_params``: a Python dict literal sent as a string, never evaluated.

The platform serialises the LTI passback parameters with Python's ``repr`` of a dict, so the
field is not JSON. ``eval`` would run whatever the feed contains, and ``ast.literal_eval``
accepts far more than a flat dict of strings (nested containers, numbers, sets) and is slow.
What we accept is exactly this grammar: ``{ 'key': 'value', ... }`` with string keys and string
values. The common case (plain single-quoted strings without escapes) is read by splitting on
the quotes, a few string operations per value: this field is in every one of a day's million
records. Anything else falls back to Python's own parser (``ast.parse``), whose tree we walk
ourselves and accept only if it is a flat dict of string constants. Nothing is ever executed.
"""

from __future__ import annotations

import ast

PASSBACK_KEYS = ("oauth_consumer_key", "lis_result_sourcedid", "lis_outcome_service_url")

# A real value is a few hundred characters. The cap keeps a hostile field from costing
# unbounded parse time or memory, and keeps the parser's recursion shallow.
MAX_PASSBACK_CHARS = 16_384


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
