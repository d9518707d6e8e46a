"""The passback_params parser accepts flat dicts of strings and never evaluates anything."""

from __future__ import annotations

import ast
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.learning_platform.passback import (
    MAX_PASSBACK_CHARS,
    PassbackParseError,
    _parse_simple_dict,
    parse_passback_params,
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
