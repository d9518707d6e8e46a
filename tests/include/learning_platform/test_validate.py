"""validate reads each landed record exactly as the standard library's JSON decoder would."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.learning_platform.validate import decode_record

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=16,
)


def _same(left: object, right: object) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0 nor True), NaN equal to NaN."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return (math.isnan(left) and math.isnan(right)) or left == right
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[key], right[key]) for key in left)
    return left == right


@settings(max_examples=1000)
@given(_values, st.booleans())
def test_any_json_decodes_as_the_standard_library_decodes_it(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)

    assert _same(decode_record(text), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"n": 123456789012345678901234567890, "m": -123456789012345678901234567890}',
        '{"x": 1e400, "y": -1e400, "z": 1e-400}',
        '{"x": NaN, "y": Infinity, "z": -Infinity}',
        '{"lone": "\\ud800", "low": "\\udc00x", "pair": "\\ud83d\\ude00"}',
        '{"nul": "\\u0000", "esc": "\\"\\\\\\/\\b\\f\\n\\r\\t"}',
        '{"lti_user_id": 1.0, "is_correct": -0, "f": -0.0, "e": 1E5}',
        " [ ] ",
    ],
)
def test_edge_cases_of_json_decode_as_the_standard_library_decodes_them(text: str) -> None:
    assert _same(decode_record(text), json.loads(text))
