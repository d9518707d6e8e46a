"""Which records are rejected, which are loaded with flags, and with what reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.learning_platform.rules import (
    BOUNDARY_COPY,
    Attempt,
    BoundaryCopy,
    Defect,
    Reason,
    Rejection,
    validate_record,
)

START = datetime(2026, 11, 22, 9, tzinfo=UTC)
END = datetime(2026, 11, 22, 10, tzinfo=UTC)
PASSBACK = (
    "{'oauth_consumer_key': '', 'lis_result_sourcedid': 'course-v1:SF+DST-3.0+28FEB2021:"
    "lms.example.org-ca3ecf8e5f284c329eb7bd529e1a9f7e:3583bf109f8b458e13ae1ac9d85c396a', "
    "'lis_outcome_service_url': 'https://lms.example.org/grade_handler'}"
)


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "lti_user_id": "3583bf109f8b458e13ae1ac9d85c396a",
        "passback_params": PASSBACK,
        "is_correct": 1,
        "attempt_type": "submit",
        "created_at": "2026-11-22 09:16:30.117858",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not MISSING}


MISSING = object()


def reasons_of(rec: object) -> tuple[Reason, ...]:
    verdict = validate_record(rec, START, END)
    assert isinstance(verdict, Rejection), verdict
    return verdict.reasons


def test_a_clean_submit_becomes_a_typed_attempt() -> None:
    verdict = validate_record(record(), START, END)
    assert verdict == Attempt(
        user_id="3583bf109f8b458e13ae1ac9d85c396a",
        oauth_consumer_key="",
        lis_result_sourcedid=(
            "course-v1:SF+DST-3.0+28FEB2021:lms.example.org-ca3ecf8e5f284c329eb7bd529e1a9f7e:"
            "3583bf109f8b458e13ae1ac9d85c396a"
        ),
        lis_outcome_service_url="https://lms.example.org/grade_handler",
        is_correct=True,
        attempt_type="submit",
        created_at=datetime(2026, 11, 22, 9, 16, 30, 117858, tzinfo=UTC),
    )


@pytest.mark.parametrize(("value", "expected"), [(0, False), (1, True), (False, False), (True, True)])
def test_is_correct_accepts_numbers_and_booleans_on_submit(value: object, expected: bool) -> None:
    verdict = validate_record(record(is_correct=value), START, END)
    assert isinstance(verdict, Attempt)
    assert verdict.is_correct is expected


def test_a_run_has_no_is_correct_and_a_whole_second_timestamp_is_fine() -> None:
    verdict = validate_record(
        record(attempt_type="run", is_correct=None, created_at="2026-11-22 09:00:00"), START, END
    )
    assert isinstance(verdict, Attempt)
    assert verdict.is_correct is None
    assert verdict.created_at == START


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lti_user_id": MISSING}, Reason.USER_ID_MISSING),
        ({"lti_user_id": None}, Reason.USER_ID_MISSING),
        ({"lti_user_id": 12345}, Reason.USER_ID_NOT_STRING),
        ({"lti_user_id": "3583bf109f8b458e13ae1ac9d85c396"}, Reason.USER_ID_WRONG_LENGTH),
        ({"lti_user_id": "3583bf109f8b458e13ae1ac9d85c396aa"}, Reason.USER_ID_WRONG_LENGTH),
        ({"lti_user_id": ""}, Reason.USER_ID_WRONG_LENGTH),
        ({"lti_user_id": "3583bf109f8b458e13ae1ac9d85c39\x00a"}, Reason.USER_ID_BAD_CHARACTERS),
        ({"lti_user_id": "3583bf109f8b458e13ae1ac9d85c39éa"}, Reason.USER_ID_BAD_CHARACTERS),
        ({"lti_user_id": "3583bf109f8b458e13ae1ac9d85c39\ud800a"}, Reason.USER_ID_BAD_CHARACTERS),
        ({"attempt_type": "peek"}, Reason.ATTEMPT_TYPE_INVALID),
        ({"attempt_type": MISSING}, Reason.ATTEMPT_TYPE_INVALID),
        ({"attempt_type": ["submit"]}, Reason.ATTEMPT_TYPE_INVALID),
        ({"attempt_type": "run", "is_correct": 1}, Reason.IS_CORRECT_ON_RUN),
        ({"attempt_type": "run", "is_correct": False}, Reason.IS_CORRECT_ON_RUN),
        ({"is_correct": None}, Reason.IS_CORRECT_MISSING_ON_SUBMIT),
        ({"is_correct": MISSING}, Reason.IS_CORRECT_MISSING_ON_SUBMIT),
        ({"is_correct": 2}, Reason.IS_CORRECT_INVALID),
        ({"is_correct": 1.0}, Reason.IS_CORRECT_INVALID),
        ({"is_correct": "1"}, Reason.IS_CORRECT_INVALID),
        ({"created_at": MISSING}, Reason.CREATED_AT_MISSING),
        ({"created_at": "yesterday"}, Reason.CREATED_AT_INVALID),
        ({"created_at": "2026-11-22T09:16:30"}, Reason.CREATED_AT_INVALID),
        ({"created_at": "2026-11-22 09:16:30+03:00"}, Reason.CREATED_AT_INVALID),
        ({"created_at": "2026-13-22 09:16:30"}, Reason.CREATED_AT_INVALID),
        ({"created_at": 1732267000}, Reason.CREATED_AT_INVALID),
        ({"created_at": "2026-11-22 08:59:59.999999"}, Reason.CREATED_AT_OUTSIDE_WINDOW),
        ({"created_at": "2026-11-22 10:00:00.000001"}, Reason.CREATED_AT_OUTSIDE_WINDOW),
    ],
)
def test_each_fault_rejects_the_record_with_its_reason(changes: dict, reason: Reason) -> None:
    assert reasons_of(record(**changes)) == (reason,)


@pytest.mark.parametrize(
    "changes", [{}, {"lti_user_id": None}, {"attempt_type": "walk"}, {"is_correct": "yes"}]
)
def test_a_record_stamped_exactly_at_the_window_end_is_the_copy_the_next_window_owns(changes: dict) -> None:
    """The API's windows include their end: the next window returns the same record and judges
    it (valid or not); this copy is neither an attempt nor a rejection."""
    at_the_end = record(**changes, created_at="2026-11-22 10:00:00.000000")

    assert validate_record(at_the_end, START, END) is BOUNDARY_COPY
    next_window = validate_record(at_the_end, END, END + (END - START))
    assert not isinstance(next_window, BoundaryCopy)
    assert isinstance(next_window, Attempt) == (not changes)


def test_every_reason_is_reported_not_just_the_first() -> None:
    assert reasons_of(
        {"lti_user_id": None, "attempt_type": "run", "is_correct": 1, "created_at": "later"}
    ) == (Reason.USER_ID_MISSING, Reason.IS_CORRECT_ON_RUN, Reason.CREATED_AT_INVALID)


@pytest.mark.parametrize("value", [None, [], "a string", 42, 3.5, True])
def test_a_record_that_is_not_an_object_is_rejected(value: object) -> None:
    assert reasons_of(value) == (Reason.NOT_AN_OBJECT,)


@pytest.mark.parametrize(
    ("passback", "defect"),
    [
        (MISSING, Defect.PASSBACK_MISSING),
        (None, Defect.PASSBACK_MISSING),
        ("", Defect.PASSBACK_MISSING),
        ({"oauth_consumer_key": ""}, Defect.PASSBACK_MALFORMED),
        ("__import__('os').system('id')", Defect.PASSBACK_MALFORMED),
        ("[1, 2, 3]", Defect.PASSBACK_MALFORMED),
        ("{'oauth_consumer_key': ''}", Defect.PASSBACK_KEYS_MISSING),
    ],
)
def test_damaged_passback_loads_the_record_with_a_flag(passback: object, defect: Defect) -> None:
    verdict = validate_record(record(passback_params=passback), START, END)
    assert isinstance(verdict, Attempt)
    assert verdict.defects == (defect,)


def test_unstorable_passback_values_are_dropped_and_flagged() -> None:
    text = (
        "{'oauth_consumer_key': 'a\\x00b', 'lis_result_sourcedid': 'ok', "
        "'lis_outcome_service_url': '\\ud800'}"
    )
    verdict = validate_record(record(passback_params=text), START, END)
    assert isinstance(verdict, Attempt)
    assert (verdict.oauth_consumer_key, verdict.lis_result_sourcedid, verdict.lis_outcome_service_url) == (
        None,
        "ok",
        None,
    )
    assert verdict.defects == (Defect.PASSBACK_VALUE_UNSTORABLE,)


def test_extra_fields_are_ignored() -> None:
    assert isinstance(validate_record(record(extra={"anything": [1, 2]}), START, END), Attempt)


def test_verdicts_are_immutable() -> None:
    verdict = validate_record(record(), START, END)
    with pytest.raises(AttributeError):
        verdict.user_id = "someone else"
