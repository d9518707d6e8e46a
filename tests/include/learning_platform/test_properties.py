"""Properties of parsing and validation over a hostile feed, from the response body to the warehouse.

``test_rules_properties.py`` judges plain JSON values with ``validate_record`` and
``test_json_stream.py`` round-trips array elements. Here records take the path the tasks give
them (JSON body → ``array_elements`` in extract → ``judge_landed_record`` in validate) with what
a hostile feed can hold: NUL and lone surrogates, huge numbers, NaN and its friends, Python code in
``passback_params``. Three promises are checked:

- parsing and judging a record never raises, whatever the record;
- no code is ever evaluated: payloads that would touch a marker file leave none, and an audit
  hook (a runtime check, not a mock) sees no ``exec`` and no ``compile`` other than
  ``ast.parse`` building a syntax tree while the parsers run;
- the real validate and load stages on PostgreSQL account for every landed record exactly once:
  loaded or quarantined (verbatim, with its reasons), never both, never twice, and a rerun
  leaves the same rows.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from include.common.intervals import Interval
from include.common.json_stream import array_elements
from include.learning_platform.extract import open_landing, record_landing
from include.learning_platform.load import load_interval
from include.learning_platform.partitions import LANDING, create_day_partitions
from include.learning_platform.passback import PASSBACK_KEYS, PassbackParseError, parse_passback_params
from include.learning_platform.rules import Attempt, BoundaryCopy, Defect, Reason, Rejection, validate_record
from include.learning_platform.validate import judge_landed_record, validate_interval
from include.learning_platform.warehouse import migrate_schema
from tests.include.learning_platform.stages import DAY

HOUR = timedelta(hours=1)
# A few windows of the day are enough to mix records of several windows in one load.
WINDOWS = list(DAY.windows(HOUR))[:3]
FIRST = WINDOWS[0]
# Evaluating any payload below would create this file; per process, so parallel runs don't meet.
MARKER = Path(tempfile.gettempdir()) / f"learning-platform-properties-pwned-{os.getpid()}"


# --- watching for evaluated code ---------------------------------------------------------------


class AuditWindow:
    """The audit events raised in one thread while a window is open.

    ``eval`` and ``exec`` raise ``exec``; ``compile`` raises ``compile``, and so does
    ``ast.parse``, which the passback parser uses on purpose: it only builds a syntax tree
    (``PyCF_ONLY_AST``), so that one caller is let through. Any other event (``open``,
    ``import``, ``os.system``, ``subprocess.Popen``...) means the parser reached outside itself.
    """

    def __init__(self) -> None:
        self._thread: int | None = None
        self.events: list[str] = []

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        # Called for every audit event of the process for the rest of the session: stay cheap.
        if self._thread is None or self._thread != threading.get_ident():
            return
        # Looking at the caller raises an event of its own (sys._getframe): don't watch ourselves.
        self._thread = None
        try:
            caller = sys._getframe(1)
            if event == "compile" and _builds_a_syntax_tree_only(caller):
                return
            self.events.append(f"{event} from {caller.f_code.co_name} ({caller.f_code.co_filename})")
        finally:
            self._thread = threading.get_ident()

    @contextmanager
    def watching(self) -> Iterator[list[str]]:
        self.events = []
        self._thread = threading.get_ident()
        try:
            yield self.events
        finally:
            self._thread = None


def _builds_a_syntax_tree_only(caller: FrameType) -> bool:
    return caller.f_code is ast.parse.__code__ and bool(caller.f_locals.get("flags", 0) & ast.PyCF_ONLY_AST)


AUDIT = AuditWindow()
# An audit hook cannot be removed: one for the module, idle outside a window.
sys.addaudithook(AUDIT.hook)
# Import whatever the parsers import lazily now, so that a window only sees the parsing itself.
for _text in ("{'a': 'b'}", "{'a': 'b' 'c'}", "{'a': f'{x}'}", "(", "\x00"):
    with suppress(PassbackParseError):
        parse_passback_params(_text)
validate_record({"created_at": "2026-11-22 00:00:00"}, FIRST.start, FIRST.end)


@pytest.fixture(autouse=True)
def _no_marker() -> Iterator[None]:
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a payload was evaluated: it created the marker file"


# --- strategies --------------------------------------------------------------------------------

HOSTILE_STRINGS = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",  # a surrogate pair as two code points: still lone surrogates to UTF-8
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "1e999",
    "-0",
    "null",
    "None",
    "true",
    "0",
    "1",
    "%s",
    "%(start)s",
    "{}",
    "\\",
    "'; DROP TABLE learning_platform.attempts; --",
]
strings = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(HOSTILE_STRINGS)
# Up to 4,000 digits: Python's int/str conversion stops at 4,300 (see the tests at the end).
numbers = (
    st.integers()
    | st.integers(min_value=-(10**4000), max_value=10**4000)
    | st.floats()  # NaN and ±Infinity included: the stdlib's JSON, ours, reads and writes them
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | strings,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(strings, children, max_size=4),
    max_leaves=10,
)

# Python source that creates the marker file, or reaches for what could, if it were ever run.
CODE = [
    f"__import__('pathlib').Path({str(MARKER)!r}).touch()",
    f"__import__('os').system('touch {MARKER}')",
    f"open({str(MARKER)!r}, 'w').close()",
    f"exec(\"open({str(MARKER)!r}, 'w')\")",
    f"(lambda: __import__('pathlib').Path({str(MARKER)!r}).touch())()",
    f"f\"{{__import__('pathlib').Path({str(MARKER)!r}).touch()}}\"",
    f"[c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == 'Popen'][0]"
    f"(['touch', {str(MARKER)!r}])",
    "().__class__.__bases__[0].__subclasses__()",
    "breakpoint()",
    "__builtins__",
    "'x' * 10**10",
]
# Where code can sit in something that looks like the dict literal the platform sends.
CONTEXTS = [
    "CODE",
    "{'oauth_consumer_key': CODE}",
    "{CODE: 'value'}",
    "{'lis_result_sourcedid': 's', **CODE}",
    "{'a': 'b'} if CODE else {}",
    "{'a': 'b'}[CODE]",
    "{'a': (CODE, 'b')[1]}",
    "{'k': 'v' for _ in [CODE]}",
    "{'lis_outcome_service_url': 'u' + CODE}",
]
code_payloads = st.builds(
    lambda context, code: context.replace("CODE", code), st.sampled_from(CONTEXTS), st.sampled_from(CODE)
)

# Python-literal-looking text: dict displays nesting strings, other literals and code.
_atoms = st.one_of(
    strings.map(repr),
    st.sampled_from(["None", "True", "1", "-1.5", "1e999", "b'x'", "...", "()", "[]", "set()", "x"]),
    st.sampled_from(CODE),
)
literal_looking = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.lists(st.tuples(inner, inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"
        ),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(inner, inner).map(" ".join),  # implicit concatenation, or garbage
    ),
    max_leaves=8,
)
# The platform's own format, repr() of a dict of strings: complete, or with any keys; hostile values.
real_passbacks = st.fixed_dictionaries(dict.fromkeys(PASSBACK_KEYS, strings)).map(repr)
passbacks = (
    real_passbacks
    | st.dictionaries(st.sampled_from(PASSBACK_KEYS) | strings, strings, max_size=4).map(repr)
    | code_payloads
    | literal_looking
    | strings
    | json_values
)


def created_at_for(window: Interval, *, valid: bool = False) -> st.SearchStrategy[object]:
    """The feed's timestamp format inside ``window``; unless ``valid``, also at its edges, or garbage."""
    inside = st.integers(0, int(HOUR / timedelta(microseconds=1)) - 1).map(
        lambda micros: window.start + timedelta(microseconds=micros)
    )
    if valid:
        return inside.map(lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S.%f"))
    edges = st.sampled_from([window.start, window.end, window.start - timedelta(microseconds=1)])
    moments = (inside | edges).map(lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S.%f"))
    malformed = st.sampled_from(
        [
            window.start.strftime("%Y-%m-%dT%H:%M:%S"),
            window.start.strftime("%Y-%m-%d %H:%M:%S.1234567"),
            window.start.strftime("%Y-%m-%d %H:%M:%S") + "+03:00",
            window.start.strftime("%Y-13-%d %H:%M:%S"),
            window.start.strftime("%Y-%m-%d %H:%M:%S\x00"),
        ]
    )
    return moments | malformed | json_values


def feed_records(window: Interval) -> st.SearchStrategy[object]:
    """Records as the feed sends them: sound, with one field fuzzed, any field fuzzed or missing,
    or any other JSON value."""
    user_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
    sound = st.builds(
        lambda user_id, is_correct, created_at, passback: {
            "lti_user_id": user_id,
            "attempt_type": "run" if is_correct is None else "submit",
            "is_correct": is_correct,
            "created_at": created_at,
            "passback_params": passback,
        },
        user_ids,
        st.sampled_from([None, 0, 1, True, False]),
        created_at_for(window, valid=True),
        real_passbacks,
    )
    fuzz = {
        "lti_user_id": st.text("0123456789abcdef", min_size=31, max_size=33)
        | st.text(min_size=32, max_size=32)
        | json_values,
        "attempt_type": st.sampled_from(["Run", "submit\x00", "SUBMIT"]) | json_values,
        "is_correct": st.sampled_from([1.0, "1", 2, -1]) | json_values,
        "created_at": created_at_for(window),
        "passback_params": passbacks,
    }
    one_field_fuzzed = st.builds(
        lambda record, field, value: {**record, field: value},
        sound,
        st.sampled_from(list(fuzz)),
        st.one_of(*fuzz.values()),
    )
    one_field_missing = st.builds(
        lambda record, field: {key: value for key, value in record.items() if key != field},
        sound,
        st.sampled_from(list(fuzz)),
    )
    anything = {field: strategy | user_ids for field, strategy in fuzz.items()}
    # Real keys free to be missing or anything, next to keys of no meaning.
    free_form = st.builds(
        lambda required, extra: {**extra, **required},
        st.fixed_dictionaries({}, optional=anything),
        st.dictionaries(strings, json_values, max_size=2),
    )
    return sound | one_field_fuzzed | one_field_missing | free_form | json_values


def response_body(records: list[object], *, ascii_only: bool) -> bytes:
    """The records as an API answer: a JSON array in UTF-8, escaped or not."""
    text = json.dumps(records, ensure_ascii=ascii_only)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates have no UTF-8 form: a server can only send them as \u escapes.
        return json.dumps(records).encode("ascii")


def judge(text: str, window: Interval) -> Attempt | Rejection | BoundaryCopy:
    """What validate does to one landed record."""
    return judge_landed_record(text, window.start, window.end)


# --- (a) nothing raises, (b) nothing is evaluated ----------------------------------------------

# Hypothesis's explain phase traces the test (sys.settrace) after a failure, and its tracer
# raises audit events of its own inside the window: leave it out where a window is open.
WATCHED_PHASES = tuple(phase for phase in Phase if phase is not Phase.explain)


def test_the_audit_window_sees_evaluation_but_not_syntax_trees() -> None:
    # The guard below is only as good as this: it must see eval/exec/compile when they happen.
    with AUDIT.watching() as events:
        ast.parse("1 + 1", mode="eval")
    assert events == []
    with AUDIT.watching() as events:
        eval("1 + 1")  # noqa: S307 - the point is to see it caught
    assert any(event.startswith("exec") for event in events)
    with AUDIT.watching() as events:
        compile("1 + 1", "<test>", "eval")
    assert any(event.startswith("compile") for event in events)


@settings(
    max_examples=300, deadline=None, phases=WATCHED_PHASES, suppress_health_check=[HealthCheck.too_slow]
)
@given(records=st.lists(feed_records(FIRST), max_size=6), ascii_only=st.booleans())
def test_any_feed_record_is_parsed_and_judged_without_raising_or_running_code(
    records: list[object], ascii_only: bool
) -> None:
    body = response_body(records, ascii_only=ascii_only)

    with AUDIT.watching() as events:
        texts = list(array_elements([body]))
        verdicts = [judge(text, FIRST) for text in texts]

    assert events == []
    assert len(texts) == len(records)
    for verdict in verdicts:
        assert isinstance(verdict, Attempt | Rejection | BoundaryCopy)
        if isinstance(verdict, Rejection):
            assert verdict.reasons
            assert set(verdict.reasons) <= set(Reason)


@settings(max_examples=300, deadline=None, phases=WATCHED_PHASES)
@given(literal_looking | code_payloads)
def test_python_looking_passback_params_give_what_python_would_read_or_a_refusal(text: str) -> None:
    with AUDIT.watching() as events:
        try:
            parsed: dict[str, str] | None = parse_passback_params(text)
        except PassbackParseError:
            parsed = None

    assert events == []
    if parsed is not None:
        assert all(type(key) is str and type(value) is str for key, value in parsed.items())
        # Python's own literal reader (which runs nothing either) says what the text means: the
        # parser may refuse more (``{'a': True, 'a': 'b'}``), never read something else.
        assert ast.literal_eval(text) == parsed


@settings(max_examples=200, deadline=None, phases=WATCHED_PHASES)
@given(st.dictionaries(st.sampled_from(PASSBACK_KEYS) | strings, strings, max_size=4))
def test_the_platform_format_is_read_back_whatever_the_characters(value: dict[str, str]) -> None:
    # repr() is how the platform writes the field; NUL and lone surrogates come out as escapes.
    with AUDIT.watching() as events:
        parsed = parse_passback_params(repr(value))

    assert events == []
    assert parsed == value


@settings(max_examples=100, deadline=None, phases=WATCHED_PHASES)
@given(code_payloads)
def test_code_in_passback_params_is_flagged_malformed_never_run(payload: str) -> None:
    record = {
        "lti_user_id": "3583bf109f8b458e13ae1ac9d85c396a",
        "attempt_type": "run",
        "is_correct": None,
        "created_at": FIRST.start.strftime("%Y-%m-%d %H:%M:%S"),
        "passback_params": payload,
    }

    with AUDIT.watching() as events:
        with pytest.raises(PassbackParseError):
            parse_passback_params(payload)
        verdict = judge(json.dumps(record), FIRST)

    assert events == []
    assert not MARKER.exists()
    # The attempt still counts (the passback is lineage only), with no value taken from the payload.
    assert isinstance(verdict, Attempt)
    assert verdict.defects == (Defect.PASSBACK_MALFORMED,)
    assert (verdict.oauth_consumer_key, verdict.lis_result_sourcedid, verdict.lis_outcome_service_url) == (
        None,
        None,
        None,
    )


# --- (c) every record accounted for exactly once, on PostgreSQL -------------------------------

PIPELINE_TABLES = (
    "learning_platform.raw_attempts, learning_platform.staged_attempts, "
    "learning_platform.staged_rejections, learning_platform.attempts, "
    "learning_platform.quarantined_attempts, learning_platform.load_batches"
)


@pytest.fixture(scope="module")
def shared_warehouse(postgres_server, request: pytest.FixtureRequest) -> Iterator[psycopg.Connection]:
    """One migrated database for all examples (a fresh one each would cost seconds per example)."""
    name = "t_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    postgres_server.drop_database(name)
    postgres_server.create_database(name)
    with psycopg.connect(postgres_server.conninfo(name), autocommit=True) as conn:
        migrate_schema(conn)
        yield conn
    postgres_server.drop_database(name)


landings = st.lists(
    st.sampled_from(WINDOWS).flatmap(lambda window: st.tuples(st.just(window), feed_records(window))),
    max_size=25,
)


def land(conn: psycopg.Connection, landing: list[tuple[Interval, object]], *, ascii_only: bool) -> dict:
    """Fill raw_attempts as extract does: each window's answer split by array_elements, in order."""
    landed: dict[tuple[datetime, int], str] = {}
    create_day_partitions(conn, LANDING, DAY)
    with conn.transaction(), conn.cursor() as cursor:
        with open_landing(cursor) as copy:
            for window in WINDOWS:
                records = [record for where, record in landing if where == window]
                body = response_body(records, ascii_only=ascii_only)
                for position, text in enumerate(array_elements([body])):
                    copy.write_row((window.start, window.end, position, text, "properties"))
                    landed[(window.start, position)] = text
        record_landing(cursor, DAY, records=len(landed), dag_run_id="properties")
    return landed


def published(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Attempts, quarantine and ledger as a reader sees them (without ids and timestamps)."""
    attempts = conn.execute(
        "SELECT source_window_start, source_position, user_id, oauth_consumer_key, lis_result_sourcedid, "
        "lis_outcome_service_url, is_correct, attempt_type, created_at, defects "
        "FROM learning_platform.attempts ORDER BY 1, 2"
    ).fetchall()
    quarantine = conn.execute(
        "SELECT source_window_start, source_position, record, reasons, source_window_end "
        "FROM learning_platform.quarantined_attempts ORDER BY 1, 2"
    ).fetchall()
    ledger = conn.execute(
        "SELECT interval_start, fetched, loaded, quarantined, flagged, boundary_copies"
        " FROM learning_platform.load_batches"
    ).fetchall()
    return attempts, quarantine, ledger


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(landing=landings, ascii_only=st.booleans())
def test_every_landed_record_is_loaded_quarantined_or_a_boundary_copy_exactly_once(
    shared_warehouse: psycopg.Connection, landing: list[tuple[Interval, object]], ascii_only: bool
) -> None:
    conn = shared_warehouse
    conn.execute(f"TRUNCATE {PIPELINE_TABLES}")  # the previous example's day
    landed = land(conn, landing, ascii_only=ascii_only)

    validate_interval(conn, DAY)
    result = load_interval(conn, DAY, dag_run_id="properties")
    attempts, quarantine, ledger = published(conn)

    assert result.fetched == len(landed) == len(landing)
    assert (result.loaded, result.quarantined) == (len(attempts), len(quarantine))
    assert ledger == [
        (DAY.start, result.fetched, result.loaded, result.quarantined, result.flagged, result.boundary_copies)
    ]
    loaded_keys = [(row[0], row[1]) for row in attempts]
    quarantined_keys = [(row[0], row[1]) for row in quarantine]
    assert len(set(loaded_keys)) == len(loaded_keys), "an attempt stored twice"
    assert len(set(quarantined_keys)) == len(quarantined_keys), "a record quarantined twice"
    assert not set(loaded_keys) & set(quarantined_keys), "a record both loaded and quarantined"
    boundary_keys = set(landed) - set(loaded_keys) - set(quarantined_keys)
    assert len(boundary_keys) == result.boundary_copies, "a landed record went missing"
    for window_start, position in boundary_keys:
        window = next(window for window in WINDOWS if window.start == window_start)
        assert isinstance(judge(landed[(window_start, position)], window), BoundaryCopy)

    by_key = {window.start: window for window in WINDOWS}
    for window_start, position, record, reasons, window_end in quarantine:
        assert record == landed[(window_start, position)], "the quarantine must keep the record verbatim"
        verdict = judge(record, Interval(window_start, window_end))
        assert isinstance(verdict, Rejection)
        assert reasons == [reason.value for reason in verdict.reasons]
        assert reasons
    for window_start, position, *stored in attempts:
        verdict = judge(landed[(window_start, position)], by_key[window_start])
        assert isinstance(verdict, Attempt)
        assert stored == [
            verdict.user_id,
            verdict.oauth_consumer_key,
            verdict.lis_result_sourcedid,
            verdict.lis_outcome_service_url,
            verdict.is_correct,
            verdict.attempt_type,
            verdict.created_at,
            [defect.value for defect in verdict.defects],
        ]

    # A retry or a rerun of the same day replaces it: the very same rows, nothing added.
    validate_interval(conn, DAY)
    load_interval(conn, DAY, dag_run_id="properties")
    assert published(conn) == (attempts, quarantine, ledger)


# --- beyond the decoder's limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    "element", ["1" * 5000, '{"lti_user_id": ' + "9" * 5000 + "}", "[" * 5000 + "]" * 5000]
)
def test_an_element_beyond_python_json_limits_is_passed_on_verbatim(element: str) -> None:
    """Valid JSON that Python's decoder refuses (a number over 4,300 digits, arrays nested 5,000
    deep) must not fail the whole body: extract lands it, validate quarantines it."""
    body = f'[{{"lti_user_id": "ok"}}, {element}, 2]'.encode()
    chunks = [body[start : start + 251] for start in range(0, len(body), 251)]

    assert list(array_elements(chunks)) == ['{"lti_user_id": "ok"}', element, "2"]
