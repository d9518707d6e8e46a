"""validate reads each landed record exactly as the standard library's JSON decoder would, and
stages each one with the verdict it gets on its own."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.common.intervals import Interval
from include.learning_platform.extract import open_landing, record_landing
from include.learning_platform.partitions import LANDING, create_day_partitions
from include.learning_platform.rules import Attempt, BoundaryCopy, Rejection
from include.learning_platform.validate import decode_record, judge_landed_record, validate_interval

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


_RECORD = {
    "lti_user_id": "3583bf109f8b458e13ae1ac9d85c396a",
    "passback_params": (
        "{'oauth_consumer_key': '', 'lis_result_sourcedid': 's', 'lis_outcome_service_url': 'u'}"
    ),
    "is_correct": None,
    "attempt_type": "run",
}


def test_records_of_several_windows_are_staged_as_each_is_judged_alone(warehouse) -> None:
    # A session in a zone other than created_at's UTC, so that psycopg returns the window bounds
    # in that zone, and times at both edges of each window: a record judged against the wrong
    # window, or at a wrong instant, would change sides.
    warehouse.execute("SET TIME ZONE 'Asia/Kathmandu'")
    nine_utc = datetime(2026, 11, 22, 9, tzinfo=UTC)
    hour = timedelta(hours=1)
    windows = [Interval(nine_utc, nine_utc + hour), Interval(nine_utc + hour, nine_utc + 2 * hour)]
    times = [
        "2026-11-22 08:59:59.999999",
        "2026-11-22 09:00:00",
        "2026-11-22 09:59:59.999999",
        "2026-11-22 10:00:00",
        "2026-11-22 10:59:59.999999",
        "2026-11-22 11:00:00",
    ]
    landed = [
        (window, position, json.dumps({**_RECORD, "created_at": created_at}))
        for window in windows
        for position, created_at in enumerate(times)
    ]
    interval = Interval(windows[0].start, windows[-1].end)
    create_day_partitions(warehouse, LANDING, interval)
    with warehouse.cursor() as cursor:
        with open_landing(cursor) as copy:
            for window, position, text in landed:
                copy.write_row((window.start, window.end, position, text, "edges"))
        record_landing(cursor, interval, records=len(landed), dag_run_id="edges")
    warehouse.commit()

    validate_interval(warehouse, interval)

    verdicts = [
        (window.start, position, judge_landed_record(text, window.start, window.end))
        for window, position, text in landed
    ]
    staged = warehouse.execute(
        "SELECT window_start, position FROM learning_platform.staged_attempts ORDER BY 1, 2"
    ).fetchall()
    assert staged == [
        (start, position) for start, position, verdict in verdicts if isinstance(verdict, Attempt)
    ]
    rejected = warehouse.execute(
        "SELECT window_start, position, reasons FROM learning_platform.staged_rejections ORDER BY 1, 2"
    ).fetchall()
    assert rejected == [
        (start, position, list(verdict.reasons))
        for start, position, verdict in verdicts
        if isinstance(verdict, Rejection)
    ]
    # 10:00 and 11:00 end a window each: the copy of 10:00 in the second window is loaded; the
    # one of 11:00 belongs to 11:00-12:00, which this interval does not fetch.
    (boundary_copies,) = warehouse.execute(
        "SELECT boundary_copies FROM learning_platform.staging_batches"
    ).fetchone()
    assert boundary_copies == sum(isinstance(verdict, BoundaryCopy) for _, _, verdict in verdicts) == 2
    assert [position for _, position in staged] == [1, 2, 3, 4]
