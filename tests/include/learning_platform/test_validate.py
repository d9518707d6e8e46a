"""validate reads each landed record exactly as the standard library's JSON decoder would, and
stages each one with the verdict it gets on its own."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.learning_platform import validate
from include.learning_platform.rules import Attempt
from include.learning_platform.validate import ValidateResult, decode_record, judge_landed_record

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


class _Copy(list):
    """The rows a COPY was given."""

    def write_row(self, row: tuple) -> None:
        self.append(row)


_RECORD = {
    "lti_user_id": "3583bf109f8b458e13ae1ac9d85c396a",
    "passback_params": (
        "{'oauth_consumer_key': '', 'lis_result_sourcedid': 's', 'lis_outcome_service_url': 'u'}"
    ),
    "is_correct": None,
    "attempt_type": "run",
}


def test_a_batch_of_several_windows_is_staged_as_each_record_is_judged_alone(monkeypatch) -> None:
    # Bounds in a zone other than created_at's UTC, as psycopg returns them for a session that is
    # not in UTC, and times at both edges of each window: a record judged against the wrong
    # window, or a wrong instant, would change sides.
    zone = ZoneInfo("Asia/Kathmandu")
    nine_utc = datetime(2026, 11, 22, 14, 45, tzinfo=zone)
    windows = [
        (nine_utc, nine_utc + timedelta(hours=1)),
        (nine_utc + timedelta(hours=1), nine_utc + timedelta(hours=2)),
    ]
    times = [
        "2026-11-22 08:59:59.999999",
        "2026-11-22 09:00:00",
        "2026-11-22 09:59:59.999999",
        "2026-11-22 10:00:00",
        "2026-11-22 10:59:59.999999",
        "2026-11-22 11:00:00",
    ]
    batch = [
        (start, end, position, json.dumps({**_RECORD, "created_at": created_at}))
        for start, end in windows
        for position, created_at in enumerate(times)
    ]
    staged: list[_Copy] = []

    @contextmanager
    def open_copy(cursor: object, statement: str, types: tuple[str, ...]) -> Iterator[_Copy]:
        staged.append(_Copy())
        yield staged[-1]

    monkeypatch.setattr(validate, "_open_copy", open_copy)

    validate._stage_batch(None, batch, ValidateResult())

    attempts, rejections = staged
    verdicts = [
        (start, position, judge_landed_record(text, start, end)) for start, end, position, text in batch
    ]
    assert [(start, position) for start, position, *_ in attempts] == [
        (start, position) for start, position, verdict in verdicts if isinstance(verdict, Attempt)
    ]
    assert [(start, position, tuple(reasons)) for start, _, position, _, reasons in rejections] == [
        (start, position, verdict.reasons)
        for start, position, verdict in verdicts
        if not isinstance(verdict, Attempt)
    ]
    assert [position for _, position, *_ in attempts] == [1, 2, 3, 4]
