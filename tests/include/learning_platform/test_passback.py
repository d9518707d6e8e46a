"""The passback_params parser accepts flat dicts of strings and never evaluates anything."""

from __future__ import annotations

import ast
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.learning_platform.passback import (
    MAX_PASSBACK_CHARS,
    PASSBACK_KEYS,
    PassbackParseError,
    _parse_simple_dict,
    parse_passback_params,
    parse_usual_passback,
)

REAL_VALUE = (
    "{'oauth_consumer_key': '', 'lis_result_sourcedid': 'course-v1:SF+DST-3.0+28FEB2021:"
    "lms.example.org-ca3ecf8e5f284c329eb7bd529e1a9f7e:3583bf109f8b458e13ae1ac9d85c396a', "
    "'lis_outcome_service_url': 'https://lms.example.org/courses/course-v1:SF+DST-3.0+28FEB2021/"
    "xblock/block-v1:SF+DST-3.0+28FEB2021+type@lti+block@ca3ecf8e5f284c329eb7bd529e1a9f7e/"
    "handler_noauth/grade_handler'}"
)


def test_a_real_value_parses_to_what_python_would_read() -> None:
    assert parse_passback_params(REAL_VALUE) == ast.literal_eval(REAL_VALUE)


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "{'a': 'b'}",
        "{ 'a' : 'b' , }",
        '{"a": "it\'s"}',
        "{'a': 'line\\nbreak', 'b': '\\u00e9t\\u00e9'}",
        "{'a': 'x' 'y'}",
        "{'key': 'юникод ✓'}",
        "{'a': '1', 'a': '2'}",
    ],
)
def test_any_flat_dict_of_strings_matches_python_semantics(text: str) -> None:
    assert parse_passback_params(text) == ast.literal_eval(text)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "{'a': __import__('os').getcwd()}",
        "{'a': open('/etc/passwd').read()}",
        "{**{'a': 'b'}}",
        "{'a': f'{1+1}'}",
        "{'a': b'bytes'}",
        "{'a': 1}",
        "{1: 'a'}",
        "{'a': ['nested']}",
        "{'a': {'b': 'c'}}",
        "[1, 2, 3]",
        "'just a string'",
        "{'a': 'b'",
        "",
        "None",
        "lambda: 0",
    ],
)
def test_anything_else_is_refused_without_being_run(text: str, tmp_path) -> None:
    with pytest.raises(PassbackParseError):
        parse_passback_params(text)


def test_code_in_the_value_is_never_executed(tmp_path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(PassbackParseError):
        parse_passback_params(f"{{'a': __import__('pathlib').Path({str(marker)!r}).touch()}}")
    assert not marker.exists()


def test_deep_nesting_is_refused_not_crashing() -> None:
    with pytest.raises(PassbackParseError):
        parse_passback_params("{'a': " + "[" * 5000 + "]" * 5000 + "}")


def test_oversized_values_are_refused_before_parsing() -> None:
    with pytest.raises(PassbackParseError, match="longer than"):
        parse_passback_params("{'a': '" + "x" * MAX_PASSBACK_CHARS + "'}")


# The plain-strings grammar as the regular expression that first defined it: the fast path must
# accept exactly these strings, and read the same dict from them.
_PLAIN = r"'[^'\\\n]*'"
_PLAIN_DICT = re.compile(rf"\{{\s*(?:{_PLAIN}\s*:\s*{_PLAIN}\s*(?:,\s*{_PLAIN}\s*:\s*{_PLAIN}\s*)*,?\s*)?\}}")
_PLAIN_PAIR = re.compile(r"'([^'\\\n]*)'\s*:\s*'([^'\\\n]*)'")

# Dict-shaped text, pieced together from the characters that matter to the grammar.
_pieces = st.sampled_from(["{", "}", "'", ":", ",", " ", "\n", "\t", "\\", '"', "\xa0", "\r", "a", "é", "u"])
_plain_strings = st.text(alphabet=st.characters(blacklist_characters="'\\\n"), max_size=8).map(repr)
_plain_dicts = st.lists(st.tuples(_plain_strings, _plain_strings), max_size=4).map(
    lambda pairs: "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"
)


@settings(max_examples=3000)
@given(st.lists(_pieces, max_size=24).map("".join) | _plain_dicts)
def test_the_fast_path_reads_exactly_the_plain_dicts_of_the_grammar(text: str) -> None:
    expected = dict(_PLAIN_PAIR.findall(text)) if _PLAIN_DICT.fullmatch(text.strip()) else None

    assert _parse_simple_dict(text.strip()) == expected


@settings(max_examples=500)
@given(_plain_dicts)
def test_plain_dicts_parse_to_what_python_would_read(text: str) -> None:
    if _PLAIN_DICT.fullmatch(text):  # repr() may have chosen double quotes or escapes
        assert parse_passback_params(text) == ast.literal_eval(text)


# --- the shortcut for the platform's own spelling -------------------------------------------------

PRINTABLE_PLAIN = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) not in "'\\")


def usual_spelling(values: tuple[str, ...]) -> str:
    return (
        "{" + ", ".join(f"'{key}': '{value}'" for key, value in zip(PASSBACK_KEYS, values, strict=True)) + "}"
    )


def test_the_platforms_own_spelling_takes_the_shortcut() -> None:
    assert parse_usual_passback(REAL_VALUE) == tuple(
        ast.literal_eval(REAL_VALUE)[key] for key in PASSBACK_KEYS
    )


def test_the_shortcut_leaves_an_oversized_value_to_the_parser_which_refuses_it() -> None:
    text = usual_spelling(("", "x" * MAX_PASSBACK_CHARS, ""))

    assert parse_usual_passback(text) is None
    with pytest.raises(PassbackParseError):
        parse_passback_params(text)


# Values from the characters that matter to either parser or to storage: printable ASCII takes
# the shortcut, anything else (quotes, escapes, control characters, non-ASCII) must not.
_value_texts = st.text(
    st.sampled_from(
        ["a", " ", "~", "{", "}", ":", ",", "'", '"', "\\", "\n", "\r", "\t", "\x00", "\x7f", "é", "\ud800"]
    ),
    max_size=6,
)
_usual_values = st.tuples(_value_texts, _value_texts, _value_texts)
# Near misses of the usual spelling: one piece of text inserted anywhere, keys reordered.
_near_usual = st.builds(
    lambda text, index, piece: text[:index] + piece + text[index:],
    _usual_values.map(usual_spelling),
    st.integers(0, 200),
    st.sampled_from(["", " ", "'", ",", "\\", "\n", "x", "}", "{"]),
) | st.permutations(PASSBACK_KEYS).map(lambda keys: repr(dict.fromkeys(keys, "v")))


@settings(max_examples=2000)
@given(_usual_values)
def test_the_shortcut_takes_exactly_the_usual_spelling_with_printable_plain_values(values: tuple) -> None:
    plain = all(set(value) <= set(PRINTABLE_PLAIN) for value in values)

    assert parse_usual_passback(usual_spelling(values)) == (values if plain else None)


@settings(max_examples=2000)
@given(_usual_values.map(usual_spelling) | _near_usual | st.text(max_size=200))
def test_the_shortcut_reads_only_what_the_parser_reads_and_only_storable_values(text: str) -> None:
    usual = parse_usual_passback(text)

    if usual is not None:
        assert parse_passback_params(text) == dict(zip(PASSBACK_KEYS, usual, strict=True))
        # Storable as they are (no NUL, no surrogate), so nothing is left to check downstream.
        assert all(set(value) <= set(PRINTABLE_PLAIN) for value in usual)
