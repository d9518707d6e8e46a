"""Deterministic, realistic attempt records for any date: what the simulated API serves.

Determinism
    Records are generated per UTC hour (a *slot*) by a random generator seeded with
    ``(seed, date, hour)``, so the same configuration and date give byte-identical records
    whatever windows are asked for, and a request costs only the hours it overlaps. A few
    recent slots are cached. Within a response, records are sorted by ``created_at``.

The world behind the records
    Depends on the seed and the volume only, so the same students come back every day:
    five courses (``course-v1:ORG+COURSE+RUN``) of 20–40 task blocks each; a pool of
    students that grows with the volume (``records_per_day / 20``, between 300 and 20,000),
    each enrolled in one course or (one in four) two, with an activity level (a few
    students make most attempts) and a skill (the chance that a submit is correct, 0.3–0.7).
    Every attempt is a ``run`` (70 %) or a ``submit`` (30 %) of a block of one of the
    student's courses.

Volume and daily rhythm
    ``records_per_day`` is split across the 24 UTC hours by :data:`HOURLY_WEIGHTS` (quiet
    at night, peak in the evening for a student body mostly at UTC+3) with the
    largest-remainder method: the hours of a day sum to ``records_per_day`` *exactly*, and
    every day has the same hourly counts. Within an hour, times are uniform.

Valid variants (not defects)
    2 % of ``created_at`` values have no fractional part (``YYYY-MM-DD HH:MM:SS``), and 2 %
    of submits carry ``is_correct`` as a JSON boolean instead of ``0``/``1``.

Defects
    ``defects`` maps a kind to the share of records it damages; each kind is drawn for
    every record independently, from its own seeded generator (so changing one share does
    not move the others). A field damaged by one kind is left alone by the kinds after it
    in :data:`DEFECT_KINDS` order, so every kind's damage is recognisable.

    ``user_id_missing``            the ``lti_user_id`` key is absent
    ``user_id_null``               ``lti_user_id`` is ``null``
    ``user_id_short``              ``lti_user_id`` truncated to 1–31 characters
    ``user_id_long``               ``lti_user_id`` longer than 32 (dashed UUID form, or junk appended)
    ``passback_missing``           the ``passback_params`` key is absent
    ``passback_empty``             ``passback_params`` is ``""``
    ``passback_not_dict``          a string that is no dict literal: a truncated literal, or a
                                   hostile one (code, a list, a set, a nesting or memory bomb)
    ``passback_missing_keys``      a dict literal lacking one, two or all three keys
    ``is_correct_on_run``          a ``run`` with ``is_correct`` 0 or 1
    ``is_correct_null_on_submit``  a ``submit`` with ``is_correct`` ``null``
    ``outside_window``             ``created_at`` moved 1 ms–5 s before the start or after the end
                                   of the window asked for, as a sloppy server would

    Default mix (:data:`DEFAULT_DEFECTS`), small but visible in a demo: ``user_id_null``
    0.005 (the real feed has it), every other kind 0.001, except ``outside_window`` 0.
"""

from __future__ import annotations

import ast
import json
import math
import random
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devservices.simulator.config import SimulatorConfig

Record = dict[str, Any]

DEFECT_KINDS = (
    "user_id_missing",
    "user_id_null",
    "user_id_short",
    "user_id_long",
    "passback_missing",
    "passback_empty",
    "passback_not_dict",
    "passback_missing_keys",
    "is_correct_on_run",
    "is_correct_null_on_submit",
    "outside_window",
)
DEFAULT_DEFECTS: Mapping[str, float] = MappingProxyType(
    {kind: 0.001 for kind in DEFECT_KINDS} | {"user_id_null": 0.005, "outside_window": 0.0}
)

# UTC hours 00..23. Relative weights: only their ratios matter.
HOURLY_WEIGHTS = (12, 8, 6, 7, 13, 24, 36, 46, 52, 56, 58, 58, 57, 58, 60, 63, 67, 69, 66, 56, 43, 31, 22, 16)

# A response must fit in memory: a month at a million records a day is already 30 million.
MAX_WINDOW = timedelta(days=31)

USER_ID_LENGTH = 32
LMS_HOST = "lms.example.org"
COURSES = (
    ("SF", "DST-3.0", "28FEB2021"),
    ("SF", "PYTHON-2.0", "15JAN2022"),
    ("SF", "SQL-1.5", "01SEP2022"),
    ("SF", "DSPR-2.0", "14MAR2023"),
    ("SF", "MLOPS-1.0", "05OCT2023"),
)
COURSE_POPULARITY = (5, 4, 3, 2, 1)
PASSBACK_KEYS = ("oauth_consumer_key", "lis_result_sourcedid", "lis_outcome_service_url")

RUN_SHARE = 0.7
NO_FRACTION_SHARE = 0.02
BOOLEAN_IS_CORRECT_SHARE = 0.02
RECORDS_PER_STUDENT_DAY = 20
MIN_STUDENTS, MAX_STUDENTS = 300, 20_000

# Strings that are not dict literals and would hurt a client that evaluates them.
HOSTILE_PASSBACKS = (
    "__import__('os').system('touch /tmp/pwned')",
    "[1, 2, 3]",
    "{'oauth_consumer_key', 'lis_result_sourcedid', 'lis_outcome_service_url'}",
    "'x' * 10 ** 10",
    "[" * 5_000 + "]" * 5_000,
    "None",
)

_SLOT_CACHE_SIZE = 4
_HOUR_US = 3_600_000_000
_SECOND_US = 1_000_000
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_MINUTE_SECOND = tuple(f"{second // 60:02d}:{second % 60:02d}" for second in range(3600))


def generate_records(config: SimulatorConfig, start: datetime, end: datetime) -> list[Record]:
    """Exactly the records the simulator returns for the window ``[start, end]`` (closed).

    Naive datetimes are taken as UTC. The dicts are fresh copies: change them at will.
    Raises :class:`ValueError` for a window that ends before it starts or is too long.
    """
    return [dict(record) for record in _select(config, start, end)]


def render_records(config: SimulatorConfig, start: datetime, end: datetime) -> tuple[bytes, int]:
    """The response body for the window ``[start, end]`` and how many records it holds."""
    records = _select(config, start, end)
    return serialize_records(records), len(records)


def serialize_records(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The JSON array the API sends: compact, ASCII, keys in the contract's order."""
    return json.dumps(records, separators=(",", ":")).encode("ascii")


def hourly_counts(records_per_day: int) -> tuple[int, ...]:
    """Records in each UTC hour of any day; they sum to ``records_per_day`` exactly."""
    total = sum(HOURLY_WEIGHTS)
    quotas = [divmod(records_per_day * weight, total) for weight in HOURLY_WEIGHTS]
    counts = [whole for whole, _ in quotas]
    by_remainder = sorted(range(24), key=lambda hour: (-quotas[hour][1], hour))
    for hour in by_remainder[: records_per_day - sum(counts)]:
        counts[hour] += 1
    return tuple(counts)


def _select(config: SimulatorConfig, start: datetime, end: datetime) -> list[Record]:
    """The window's records, shared with the slot cache: callers must not change them."""
    if start > end:
        raise ValueError("the window ends before it starts")
    if end - start > MAX_WINDOW:
        raise ValueError(f"the simulator serves windows of at most {MAX_WINDOW.days} days")
    start_us, end_us = _epoch_us(start), _epoch_us(end)
    before: list[tuple[int, Record]] = []
    inside: list[Record] = []
    after: list[tuple[int, Record]] = []
    for hour_index in range(start_us // _HOUR_US, end_us // _HOUR_US + 1):
        day = date.fromordinal(_EPOCH_ORDINAL + hour_index // 24)
        if day in config.empty_dates:
            continue
        slot = _slot(config, day, hour_index % 24)
        lo, hi = bisect_left(slot.times, start_us), bisect_right(slot.times, end_us)
        if not slot.outside:
            inside.extend(slot.records[lo:hi])
            continue
        for i in range(lo, hi):
            shift = slot.outside.get(i)
            if shift is None:
                inside.append(slot.records[i])
            else:
                moment = start_us + shift if shift < 0 else end_us + shift
                moved = {**slot.records[i], "created_at": _format_us(moment)}
                (before if shift < 0 else after).append((moment, moved))
    before.sort(key=lambda pair: pair[0])
    after.sort(key=lambda pair: pair[0])
    return [record for _, record in before] + inside + [record for _, record in after]


def _epoch_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_US


def _format_us(epoch_us: int) -> str:
    return (_EPOCH + timedelta(microseconds=epoch_us)).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True, slots=True)
class _World:
    """The students and what they can attempt; depends on the seed and the volume only."""

    student_ids: tuple[str, ...]
    # Per student: (passback text before the user id, text after it) for every block of
    # their courses, so a record's passback is two concatenations away.
    student_blocks: tuple[tuple[tuple[str, str], ...], ...]
    student_skill: tuple[float, ...]
    # Student indices, each repeated by activity: a uniform pick is an activity-weighted one.
    tickets: tuple[int, ...]


@lru_cache(maxsize=4)
def _world(seed: int, records_per_day: int) -> _World:
    rng = random.Random(f"world:{seed}:{records_per_day}")
    course_blocks = [_course_blocks(rng, *course) for course in COURSES]
    students = max(MIN_STUDENTS, min(MAX_STUDENTS, records_per_day // RECORDS_PER_STUDENT_DAY))
    ids, blocks, skills, tickets = [], [], [], []
    for student in range(students):
        ids.append(_hex(rng, USER_ID_LENGTH))
        enrolled = set(rng.choices(range(len(COURSES)), COURSE_POPULARITY, k=1 if rng.random() < 0.75 else 2))
        blocks.append(tuple(block for course in sorted(enrolled) for block in course_blocks[course]))
        skills.append(rng.uniform(0.3, 0.7))
        tickets.extend([student] * (1 + int(3 * rng.lognormvariate(0, 0.8))))
    return _World(tuple(ids), tuple(blocks), tuple(skills), tuple(tickets))


def _course_blocks(rng: random.Random, org: str, code: str, run: str) -> tuple[tuple[str, str], ...]:
    course_id = f"course-v1:{org}+{code}+{run}"
    # The consumer key is per LTI integration: empty for most courses.
    consumer_key = _hex(rng, 20) if rng.random() < 0.3 else ""
    blocks = []
    for _ in range(rng.randint(20, 40)):
        block = _hex(rng, 32)
        url = (
            f"https://{LMS_HOST}/courses/{course_id}/xblock/"
            f"block-v1:{org}+{code}+{run}+type@lti+block@{block}/handler_noauth/grade_handler"
        )
        # The halves of ``repr`` of the passback dict around the user id (no quotes inside).
        head = (
            f"{{'oauth_consumer_key': '{consumer_key}', "
            f"'lis_result_sourcedid': '{course_id}:{LMS_HOST}-{block}:"
        )
        tail = f"', 'lis_outcome_service_url': '{url}'}}"
        blocks.append((head, tail))
    return tuple(blocks)


def _hex(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(4 * length):0{length}x}"


@dataclass(frozen=True, slots=True)
class _Slot:
    """One UTC hour of records, sorted by time."""

    times: list[int]  # created_at of each record in µs since the epoch
    records: list[Record]
    # Record index → shift in µs out of any window that holds it: before the start if
    # negative, after the end if positive (the ``outside_window`` defect).
    outside: dict[int, int]


class _SlotCache:
    """A small LRU of generated slots, shared by all request threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._slots: OrderedDict[tuple[object, ...], _Slot] = OrderedDict()
        # Held while generating too: generation is pure Python, so under the GIL two
        # threads would not finish sooner, and one thread avoids generating a slot twice.
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], build: Callable[[], _Slot]) -> _Slot:
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = build()
                if len(self._slots) > self._size:
                    self._slots.popitem(last=False)
            else:
                self._slots.move_to_end(key)
            return slot


_cache = _SlotCache(_SLOT_CACHE_SIZE)


def _slot(config: SimulatorConfig, day: date, hour: int) -> _Slot:
    key = (config.seed, config.records_per_day, tuple(config.defects.items()), day, hour)
    return _cache.get(key, lambda: _generate_slot(config, day, hour))


def _generate_slot(config: SimulatorConfig, day: date, hour: int) -> _Slot:
    world = _world(config.seed, config.records_per_day)
    rng = random.Random(f"{config.seed}:{day.isoformat()}:{hour}")
    rand = rng.random
    count = hourly_counts(config.records_per_day)[hour]

    offsets = [int(rand() * _HOUR_US) for _ in range(count)]
    # Truncated before sorting, so that the order stays right.
    for i in _bernoulli_indices(rng, count, NO_FRACTION_SHARE):
        offsets[i] -= offsets[i] % _SECOND_US
    offsets.sort()

    tickets, ticket_count = world.tickets, len(world.tickets)
    student_ids, student_blocks, skills = world.student_ids, world.student_blocks, world.student_skill
    minute_second = _MINUTE_SECOND
    hour_prefix = f"{day.isoformat()} {hour:02d}:"
    records: list[Record] = []
    append = records.append
    # The hot loop of the benchmark: locals only, no calls beyond random().
    for offset in offsets:
        student = tickets[int(rand() * ticket_count)]
        user_id = student_ids[student]
        blocks = student_blocks[student]
        head, tail = blocks[int(rand() * len(blocks))]
        if rand() < RUN_SHARE:
            attempt_type, is_correct = "run", None
        else:
            attempt_type, is_correct = "submit", int(rand() < skills[student])
        second, micro = divmod(offset, _SECOND_US)
        append(
            {
                "lti_user_id": user_id,
                "passback_params": head + user_id + tail,
                "is_correct": is_correct,
                "attempt_type": attempt_type,
                "created_at": f"{hour_prefix}{minute_second[second]}.{micro:06d}"
                if micro
                else hour_prefix + minute_second[second],
            }
        )

    for i in _bernoulli_indices(rng, count, BOOLEAN_IS_CORRECT_SHARE):
        if records[i]["is_correct"] is not None:
            records[i]["is_correct"] = bool(records[i]["is_correct"])

    hour_start_us = (day.toordinal() - _EPOCH_ORDINAL) * 24 * _HOUR_US + hour * _HOUR_US
    times = [hour_start_us + offset for offset in offsets]
    outside = _apply_defects(records, config, f"{config.seed}:{day.isoformat()}:{hour}")
    return _Slot(times, records, outside)


def _apply_defects(records: list[Record], config: SimulatorConfig, slot_seed: str) -> dict[int, int]:
    """Damage the records in place; return the ``outside_window`` shifts by record index."""
    damaged: dict[str, set[int]] = {field: set() for field in set(_DEFECT_FIELDS.values())}
    outside: dict[int, int] = {}
    for kind in DEFECT_KINDS:
        share = config.defects.get(kind, 0.0)
        if share <= 0:
            continue
        rng = random.Random(f"{slot_seed}:{kind}")
        field_damaged = damaged[_DEFECT_FIELDS[kind]]
        for i in _bernoulli_indices(rng, len(records), share):
            if i in field_damaged:
                continue
            field_damaged.add(i)
            if kind == "outside_window":
                outside[i] = rng.choice((-1, 1)) * rng.randint(1_000, 5 * _SECOND_US)
            else:
                _DAMAGE[kind](records[i], rng)
    return outside


def _bernoulli_indices(rng: random.Random, count: int, share: float) -> Iterator[int]:
    """The indices in ``range(count)`` that a coin of bias ``share`` picks, one flip each.

    Skips over the misses with geometric gaps, so the cost follows the hits, not ``count``.
    """
    if share >= 1:
        yield from range(count)
        return
    log_miss = math.log1p(-share)
    i = -1
    while True:
        # 1 - random() lies in (0, 1]: the logarithm is finite.
        i += 1 + int(math.log(1.0 - rng.random()) / log_miss)
        if i >= count:
            return
        yield i


def _drop_user_id(record: Record, rng: random.Random) -> None:
    del record["lti_user_id"]


def _null_user_id(record: Record, rng: random.Random) -> None:
    record["lti_user_id"] = None


def _shorten_user_id(record: Record, rng: random.Random) -> None:
    record["lti_user_id"] = record["lti_user_id"][: rng.randint(1, USER_ID_LENGTH - 1)]


def _lengthen_user_id(record: Record, rng: random.Random) -> None:
    user_id = record["lti_user_id"]
    if rng.random() < 0.5:
        user_id = f"{user_id[:8]}-{user_id[8:12]}-{user_id[12:16]}-{user_id[16:20]}-{user_id[20:]}"
    else:
        user_id += _hex(rng, rng.randint(1, 8))
    record["lti_user_id"] = user_id


def _drop_passback(record: Record, rng: random.Random) -> None:
    del record["passback_params"]


def _empty_passback(record: Record, rng: random.Random) -> None:
    record["passback_params"] = ""


def _break_passback(record: Record, rng: random.Random) -> None:
    passback = record["passback_params"]
    if rng.random() < 0.5:
        # Every proper prefix lacks the closing brace, the only one in the text.
        record["passback_params"] = passback[: rng.randint(1, len(passback) - 1)]
    else:
        record["passback_params"] = rng.choice(HOSTILE_PASSBACKS)


def _drop_passback_keys(record: Record, rng: random.Random) -> None:
    # Safe: the text is a clean literal this module wrote.
    params = ast.literal_eval(record["passback_params"])
    for key in rng.sample(PASSBACK_KEYS, rng.randint(1, len(PASSBACK_KEYS))):
        del params[key]
    record["passback_params"] = repr(params)


def _correct_run(record: Record, rng: random.Random) -> None:
    if record["is_correct"] is None:
        record["is_correct"] = rng.randint(0, 1)
    record["attempt_type"] = "run"


def _ungraded_submit(record: Record, rng: random.Random) -> None:
    record["attempt_type"] = "submit"
    record["is_correct"] = None


_DAMAGE: dict[str, Callable[[Record, random.Random], None]] = {
    "user_id_missing": _drop_user_id,
    "user_id_null": _null_user_id,
    "user_id_short": _shorten_user_id,
    "user_id_long": _lengthen_user_id,
    "passback_missing": _drop_passback,
    "passback_empty": _empty_passback,
    "passback_not_dict": _break_passback,
    "passback_missing_keys": _drop_passback_keys,
    "is_correct_on_run": _correct_run,
    "is_correct_null_on_submit": _ungraded_submit,
}
# The field each kind damages; ``is_correct`` kinds may also change ``attempt_type``.
_DEFECT_FIELDS = {
    **dict.fromkeys(DEFECT_KINDS[:4], "lti_user_id"),
    **dict.fromkeys(DEFECT_KINDS[4:8], "passback_params"),
    **dict.fromkeys(DEFECT_KINDS[8:10], "is_correct"),
    "outside_window": "created_at",
}
