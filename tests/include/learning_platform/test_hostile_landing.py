"""Hostile records that reach the landing table go through validate and load without harm."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from include.common.intervals import Interval
from include.learning_platform.extract import open_landing, record_landing
from include.learning_platform.load import load_interval
from include.learning_platform.partitions import LANDING, create_day_partitions
from include.learning_platform.validate import validate_interval
from tests.include.learning_platform.stages import DAY, attempts, quarantine

USER = "3583bf109f8b458e13ae1ac9d85c396a"
PASSBACK = "{'oauth_consumer_key': '', 'lis_result_sourcedid': 's', 'lis_outcome_service_url': 'u'}"
MARKER = Path("/tmp/learning-platform-pwned")


def hostile_records() -> list[object]:
    good = {"lti_user_id": USER, "attempt_type": "run", "is_correct": None}
    return [
        {**good, "created_at": "2026-11-22 00:00:01", "passback_params": PASSBACK},
        {
            **good,
            "created_at": "2026-11-22 00:00:02",
            "passback_params": f"__import__('pathlib').Path('{MARKER}').touch()",
        },
        {
            **good,
            "created_at": "2026-11-22 00:00:03",
            "passback_params": PASSBACK.replace("'s'", "'\x00'").replace("'u'", "'\ud800'"),
        },
        {**good, "created_at": "2026-11-22 00:00:04", "passback_params": "{'a': " + "[" * 10_000},
        {**good, "created_at": "2026-11-22 00:00:05", "passback_params": "{'k': '" + "x" * 1_000_000 + "'}"},
        {**good, "created_at": "2026-11-22 00:00:06", "lti_user_id": "\x00" * 32},
        {**good, "created_at": "2026-11-22 00:00:07", "lti_user_id": "\ud83d" * 32},
        {**good, "created_at": "2026-11-22 00:00:08", "lti_user_id": "ю" * 32},
        {**good, "created_at": "2026-11-22 00:00:09", "lti_user_id": {"$gt": ""}},
        {**good, "created_at": "'; DROP TABLE learning_platform.attempts; --"},
        ["not", "an", "object"],
        None,
        "a string record",
    ]


def test_hostile_records_are_stored_or_quarantined_never_run(warehouse) -> None:
    interval = Interval(DAY.start, DAY.start + timedelta(hours=1))
    records = hostile_records()
    create_day_partitions(warehouse, LANDING, interval)
    with warehouse.cursor() as cursor:
        with open_landing(cursor) as copy:
            for position, record in enumerate(records):
                copy.write_row((interval.start, interval.end, position, json.dumps(record), "hostile"))
        record_landing(cursor, interval, records=len(records), dag_run_id="hostile")
    warehouse.commit()

    checked = validate_interval(warehouse, interval)
    result = load_interval(warehouse, interval, dag_run_id="hostile")

    assert not MARKER.exists()
    assert checked.checked == result.fetched == len(records)
    assert result.loaded + result.quarantined == len(records)
    assert result.loaded == 5  # the passback is only lineage: those rows load, flagged
    loaded_defects = sorted(tuple(row[7]) for row in attempts(warehouse))
    assert loaded_defects == [
        (),
        ("passback_malformed",),
        ("passback_malformed",),
        ("passback_malformed",),
        ("passback_value_unstorable",),
    ]
    kept = {json.dumps(json.loads(record)) for record, _, _, _ in quarantine(warehouse)}
    assert kept == {json.dumps(r) for r in records[5:]}


def test_json_beyond_the_decoders_limits_is_quarantined_verbatim_with_its_reason(warehouse) -> None:
    """What extract lands whole although Python cannot decode it (see json_stream)."""
    interval = Interval(DAY.start, DAY.start + timedelta(hours=1))
    unreadable = [
        '{"lti_user_id": ' + "9" * 5000 + "}",
        "[" * 5000 + "]" * 5000,
        '{"attempt_type": "run", "x": ' + "[" * 3000 + "]" * 3000 + "}",
    ]
    readable = json.dumps({"lti_user_id": USER, "attempt_type": "run", "created_at": "2026-11-22 00:00:01"})
    texts = [readable, *unreadable]
    create_day_partitions(warehouse, LANDING, interval)
    with warehouse.cursor() as cursor:
        with open_landing(cursor) as copy:
            for position, text in enumerate(texts):
                copy.write_row((interval.start, interval.end, position, text, "hostile"))
        record_landing(cursor, interval, records=len(texts), dag_run_id="hostile")
    warehouse.commit()

    checked = validate_interval(warehouse, interval)
    result = load_interval(warehouse, interval, dag_run_id="hostile")

    assert checked.reasons["unreadable_json"] == len(unreadable)
    assert (result.fetched, result.loaded, result.quarantined) == (4, 1, 3)
    kept = {(record, tuple(reasons)) for record, reasons, _, _ in quarantine(warehouse)}
    assert kept == {(text, ("unreadable_json",)) for text in unreadable}
