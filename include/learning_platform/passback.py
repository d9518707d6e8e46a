"""Parse ``passback_params``: a Python dict literal sent as a string, never evaluated.

The platform serialises the LTI passback parameters with Python's ``repr`` of a dict, so the
field is not JSON. ``eval`` would run whatever the feed contains, and ``ast.literal_eval``
accepts far more than a flat dict of strings (nested containers, numbers, sets) and is slow.
What we accept is exactly this grammar: ``{ 'key': 'value', ... }`` with string keys and string
values. The common case (plain single-quoted strings without escapes) is read by one regular
expression; anything else falls back to Python's own parser (``ast.parse``), whose tree we walk
ourselves and accept only if it is a flat dict of string constants. Nothing is ever executed.
"""

from __future__ import annotations

import ast
import re

PASSBACK_KEYS = ("oauth_consumer_key", "lis_result_sourcedid", "lis_outcome_service_url")

# A real value is a few hundred characters. The cap keeps a hostile field from costing
# unbounded parse time or memory, and keeps the parser's recursion shallow.
MAX_PASSBACK_CHARS = 16_384

_SIMPLE_STRING = r"'[^'\\\n]*'"
_SIMPLE_DICT = re.compile(
    rf"\{{\s*(?:{_SIMPLE_STRING}\s*:\s*{_SIMPLE_STRING}\s*(?:,\s*{_SIMPLE_STRING}\s*:\s*{_SIMPLE_STRING}\s*)*,?\s*)?\}}"
)
_SIMPLE_PAIR = re.compile(r"'([^'\\\n]*)'\s*:\s*'([^'\\\n]*)'")


class PassbackParseError(ValueError):
    """The string is not a flat dict literal of strings."""


def parse_passback_params(text: str) -> dict[str, str]:
    """Return the dict that ``text`` spells, or raise :class:`PassbackParseError`.

    Duplicate keys keep the last value, as Python's dict display does.
    """
    if len(text) > MAX_PASSBACK_CHARS:
        raise PassbackParseError(f"longer than {MAX_PASSBACK_CHARS} characters")
    if _SIMPLE_DICT.fullmatch(text.strip()):
        return dict(_SIMPLE_PAIR.findall(text))
    return _parse_with_python_grammar(text)


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
