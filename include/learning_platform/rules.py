"""The validation rules for one attempt record from the statistics API.

Every record gets exactly one verdict: an :class:`Attempt` bound for the warehouse, or a
:class:`Rejection` bound for quarantine. Both carry *all* the problems found, not the first.
The one exception is a record stamped exactly at its window's end, the API's second copy of a
record that the next window owns: a :class:`BoundaryCopy`, counted and not judged here.

What rejects a record and what only flags it
--------------------------------------------
A record is **rejected** when a figure in the daily report would be wrong if it were loaded:
it has no usable student id, its type is unknown, its ``is_correct`` contradicts its type (we
cannot tell which of the two fields is wrong), or its time is unreadable or outside the window
asked for. A record is loaded but **flagged** when only the LMS passback details are damaged:
they are lineage, not inputs of the statistics, and the original pipeline loaded such rows
and counted them as defective. Flags are stored with the row (``attempts.defects``) and counted.

Cost
----
validate runs these rules on a million records a day, so what nearly every record goes through
is kept cheap: verdicts are frozen msgspec Structs, ``created_at`` is read by one C call, and a
passback spelled as the platform spells it is read by one regular expression
(:func:`~include.learning_platform.passback.parse_usual_passback`) before the general parser.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

import msgspec

from include.learning_platform.passback import (
    PASSBACK_KEYS,
    PassbackParseError,
    parse_passback_params,
    parse_usual_passback,
)

USER_ID_LENGTH = 32
ATTEMPT_TYPES = frozenset({"run", "submit"})
_PASSBACK_KEY_SET = frozenset(PASSBACK_KEYS)
_NO_PASSBACK = (None, None, None)

_CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?")


class Reason(StrEnum):
    """Why a record was rejected (stored in ``quarantined_attempts.reasons``)."""

    # Valid JSON that the decoder cannot read: a number over 4,300 digits, nesting ~1,000 deep.
    UNREADABLE_JSON = "unreadable_json"
    NOT_AN_OBJECT = "not_an_object"
    USER_ID_MISSING = "user_id_missing"
    USER_ID_NOT_STRING = "user_id_not_string"
    USER_ID_WRONG_LENGTH = "user_id_wrong_length"
    USER_ID_BAD_CHARACTERS = "user_id_bad_characters"
    ATTEMPT_TYPE_INVALID = "attempt_type_invalid"
    IS_CORRECT_ON_RUN = "is_correct_on_run"
    IS_CORRECT_MISSING_ON_SUBMIT = "is_correct_missing_on_submit"
    IS_CORRECT_INVALID = "is_correct_invalid"
    CREATED_AT_MISSING = "created_at_missing"
    CREATED_AT_INVALID = "created_at_invalid"
    CREATED_AT_OUTSIDE_WINDOW = "created_at_outside_window"


class Defect(StrEnum):
    """A flaw that does not stop a record from loading (stored in ``attempts.defects``)."""

    PASSBACK_MISSING = "passback_missing"
    PASSBACK_MALFORMED = "passback_malformed"
    PASSBACK_KEYS_MISSING = "passback_keys_missing"
    PASSBACK_VALUE_UNSTORABLE = "passback_value_unstorable"


# Frozen msgspec Structs rather than frozen dataclasses: as immutable, and built ten times
# faster (a frozen dataclass sets each field through object.__setattr__).
class Attempt(msgspec.Struct, frozen=True):
    """A record that passed validation, typed as the warehouse stores it."""

    user_id: str
    oauth_consumer_key: str | None
    lis_result_sourcedid: str | None
    lis_outcome_service_url: str | None
    is_correct: bool | None
    attempt_type: str
    created_at: datetime
    defects: tuple[Defect, ...] = ()


class Rejection(msgspec.Struct, frozen=True):
    """A record that must not reach the warehouse, with every reason found."""

    reasons: tuple[Reason, ...]


class BoundaryCopy(msgspec.Struct, frozen=True):
    """A record stamped exactly at the end of its window: the copy the next window owns.

    The API's windows include their end, ours do not: such a record comes back again at the
    start of the next window, where it is judged. This copy is neither loaded nor quarantined
    (it is no defect of the source), only counted.
    """


BOUNDARY_COPY = BoundaryCopy()


def validate_record(
    record: object, window_start: datetime, window_end: datetime
) -> Attempt | Rejection | BoundaryCopy:
    """Judge one decoded JSON record fetched for the half-open window ``[window_start, window_end)``."""
    if not isinstance(record, dict):
        return Rejection((Reason.NOT_AN_OBJECT,))
    created_at, created_at_problem = _created_at(record.get("created_at"), window_start, window_end)
    if created_at == window_end:
        # Whatever else is wrong with it, the next window's copy gets the same verdict.
        return BOUNDARY_COPY
    reasons: list[Reason] = []

    user_id = record.get("lti_user_id")
    user_id_problem = _user_id_problem(user_id)
    if user_id_problem:
        reasons.append(user_id_problem)

    attempt_type = record.get("attempt_type")
    if not (isinstance(attempt_type, str) and attempt_type in ATTEMPT_TYPES):
        attempt_type = None
        reasons.append(Reason.ATTEMPT_TYPE_INVALID)

    is_correct, is_correct_problem = _is_correct(record.get("is_correct"), attempt_type)
    if is_correct_problem:
        reasons.append(is_correct_problem)

    if created_at_problem:
        reasons.append(created_at_problem)

    if reasons:
        return Rejection(tuple(reasons))
    (oauth_consumer_key, lis_result_sourcedid, lis_outcome_service_url), defects = _passback(
        record.get("passback_params")
    )
    return Attempt(
        user_id=user_id,
        oauth_consumer_key=oauth_consumer_key,
        lis_result_sourcedid=lis_result_sourcedid,
        lis_outcome_service_url=lis_outcome_service_url,
        is_correct=is_correct,
        attempt_type=attempt_type,
        created_at=created_at,
        defects=defects,
    )


def _user_id_problem(user_id: object) -> Reason | None:
    if user_id is None:
        return Reason.USER_ID_MISSING
    if not isinstance(user_id, str):
        return Reason.USER_ID_NOT_STRING
    if len(user_id) != USER_ID_LENGTH:
        return Reason.USER_ID_WRONG_LENGTH
    # Ids are machine-made (hex in practice): anything beyond ASCII letters and digits is
    # corruption, and would also be unsafe to store (NUL, lone surrogates).
    if not (user_id.isascii() and user_id.isalnum()):
        return Reason.USER_ID_BAD_CHARACTERS
    return None


def _is_correct(value: object, attempt_type: str | None) -> tuple[bool | None, Reason | None]:
    # JSON gives 0/1 or false/true; 1.0 or "1" are not what the contract allows.
    if value is not None and not (type(value) in (bool, int) and value in (0, 1)):
        return None, Reason.IS_CORRECT_INVALID
    if attempt_type == "run" and value is not None:
        return None, Reason.IS_CORRECT_ON_RUN
    if attempt_type == "submit" and value is None:
        return None, Reason.IS_CORRECT_MISSING_ON_SUBMIT
    return (None if value is None else bool(value)), None


def _created_at(
    value: object, window_start: datetime, window_end: datetime
) -> tuple[datetime | None, Reason | None]:
    if value is None:
        return None, Reason.CREATED_AT_MISSING
    if not isinstance(value, str) or not _CREATED_AT.fullmatch(value):
        return None, Reason.CREATED_AT_INVALID
    try:
        created_at = _utc_time(value)
    except ValueError:  # matches the pattern but is no date, e.g. month 13
        return None, Reason.CREATED_AT_INVALID
    if not window_start <= created_at < window_end:
        return created_at, Reason.CREATED_AT_OUTSIDE_WINDOW
    return created_at, None


def _utc_time(text: str) -> datetime:
    """The UTC time that a ``_CREATED_AT`` string spells (ValueError if it is no date).

    The offset is spelled out rather than set afterwards with ``.replace(tzinfo=UTC)``: one C
    call instead of two, a sixth of the time, with the same result for every such string.
    """
    return datetime.fromisoformat(text + "+00:00")


def _passback(value: object) -> tuple[tuple[str | None, str | None, str | None], tuple[Defect, ...]]:
    """The values of PASSBACK_KEYS, in order (None where absent or unusable), and the defects."""
    if isinstance(value, str) and (usual := parse_usual_passback(value)) is not None:
        return usual, ()  # the platform's own spelling: all keys, storable values
    if value is None or value == "":
        return _NO_PASSBACK, (Defect.PASSBACK_MISSING,)
    if not isinstance(value, str):
        return _NO_PASSBACK, (Defect.PASSBACK_MALFORMED,)
    try:
        parsed = parse_passback_params(value)
    except PassbackParseError:
        return _NO_PASSBACK, (Defect.PASSBACK_MALFORMED,)
    defects: list[Defect] = []
    if not parsed.keys() >= _PASSBACK_KEY_SET:
        defects.append(Defect.PASSBACK_KEYS_MISSING)
    fields: dict[str, str | None] = {key: parsed.get(key) for key in PASSBACK_KEYS}
    for key, text in fields.items():
        if text is not None and not _storable(text):
            fields[key] = None
            if Defect.PASSBACK_VALUE_UNSTORABLE not in defects:
                defects.append(Defect.PASSBACK_VALUE_UNSTORABLE)
    return tuple(fields.values()), tuple(defects)


def _storable(text: str) -> bool:
    """Whether PostgreSQL ``text`` can hold the string (no NUL, valid UTF-8)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, which JSON escapes can produce
        return False
    return True
