"""Properties of validation over arbitrary JSON: total, exclusive, and never evaluating input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from include.learning_platform.passback import PassbackParseError, parse_passback_params
from include.learning_platform.rules import (
    _CREATED_AT,
    Attempt,
    BoundaryCopy,
    Defect,
    Reason,
    Rejection,
    _utc_time,
    validate_record,
)

START = datetime(2026, 11, 22, 9, tzinfo=UTC)
END = START + timedelta(hours=1)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
# Records that look like the feed, with every field free to be anything.
field_values = {
    "lti_user_id": st.text(alphabet="0123456789abcdef", min_size=30, max_size=34) | json_values,
    "passback_params": st.sampled_from(
        [
            "{'oauth_consumer_key': '', 'lis_result_sourcedid': 's', 'lis_outcome_service_url': 'u'}",
            "__import__('os').system('echo pwned')",
            "{'a': ",
        ]
    )
    | json_values,
    "is_correct": st.sampled_from([None, 0, 1, True, False]) | json_values,
    "attempt_type": st.sampled_from(["run", "submit"]) | json_values,
    "created_at": st.datetimes(min_value=START.replace(tzinfo=None) - timedelta(minutes=5))
    .filter(lambda d: d < END.replace(tzinfo=None) + timedelta(minutes=5))
    .map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S.%f"))
    | json_values,
}
records = st.fixed_dictionaries({}, optional=field_values) | json_values


@settings(max_examples=400, deadline=None)
@given(records)
def test_every_record_gets_exactly_one_verdict_and_never_raises(record: object) -> None:
    verdict = validate_record(record, START, END)

    assert isinstance(verdict, Attempt | Rejection | BoundaryCopy)
    if isinstance(verdict, Rejection):
        assert verdict.reasons
        assert set(verdict.reasons) <= set(Reason)
        assert len(set(verdict.reasons)) == len(verdict.reasons)
    elif isinstance(verdict, BoundaryCopy):
        assert _utc_time(record["created_at"]) == END
    else:
        assert len(verdict.user_id) == 32
        assert verdict.attempt_type in {"run", "submit"}
        assert (verdict.attempt_type == "run") == (verdict.is_correct is None)
        assert START <= verdict.created_at < END
        assert set(verdict.defects) <= set(Defect)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_the_passback_parser_only_ever_returns_a_dict_of_strings_or_refuses(text: str) -> None:
    try:
        parsed = parse_passback_params(text)
    except PassbackParseError:
        return
    assert all(type(k) is str and type(v) is str for k, v in parsed.items())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5))
def test_any_dict_of_strings_survives_its_python_repr(value: dict[str, str]) -> None:
    assert parse_passback_params(repr(value)) == value


def _feed_time(moment: datetime, fraction_digits: int) -> str:
    """``moment`` in the feed's format, with 0 to 6 digits of fraction (zero-padded years too)."""
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    return text + f".{moment.microsecond:06d}"[: fraction_digits + 1] if fraction_digits else text


# Real times in every spelling the pattern allows, and anything else it matches (month 13,
# hour 24, digits of other scripts, which the pattern's \d lets through).
created_at_texts = st.builds(_feed_time, st.datetimes(), st.integers(0, 6)) | st.from_regex(
    _CREATED_AT, fullmatch=True
)


@settings(max_examples=1000, deadline=None)
@given(created_at_texts)
def test_created_at_is_the_naive_time_fromisoformat_reads_taken_as_utc(text: str) -> None:
    expected = _or_none(lambda: datetime.fromisoformat(text).replace(tzinfo=UTC))

    read = _or_none(lambda: _utc_time(text))

    assert read == expected
    if read is not None:
        assert read.utcoffset() == timedelta(0)


def _or_none(read: Callable[[], datetime]) -> datetime | None:
    try:
        return read()
    except ValueError:  # no such date or time
        return None
