"""Splitting a streamed JSON array into its elements' texts, whatever the chunk boundaries."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.common.json_stream import MalformedJSON, NotAnArray, array_elements

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@given(
    values=st.lists(JSON_VALUES, max_size=12),
    size=st.integers(min_value=1, max_value=64),
    indent=st.sampled_from([None, 2]),
    ascii_only=st.booleans(),
)
def test_every_element_comes_back_whatever_the_chunks(values, size, indent, ascii_only) -> None:
    body = json.dumps(values, indent=indent, ensure_ascii=ascii_only).encode()

    texts = list(array_elements(chunked(body, size)))

    assert [json.loads(text) for text in texts] == values


# Strings and keys full of what separates elements, so that splits guessed from the text go wrong.
TRICKY_TEXT = st.text(alphabet=',{}[]":\\ x', max_size=12)
TRICKY_VALUES = st.recursive(
    st.none() | st.integers() | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
    max_leaves=8,
)


@given(values=st.lists(TRICKY_VALUES, max_size=12), size=st.integers(min_value=1, max_value=256))
def test_the_texts_are_slices_of_the_body_whatever_the_chunks(values, size) -> None:
    body = json.dumps(values, separators=(",", ":"))

    texts = list(array_elements(chunked(body.encode(), size)))

    assert "[" + ",".join(texts) + "]" == body
    assert [json.loads(text) for text in texts] == values


def test_what_only_the_standard_library_reads_is_split_all_the_same() -> None:
    elements = ['{"a": 1}', '{"a": NaN}', '{"a": 2}', '{"a": "\\ud800"}', '{"a": 3}', '{"a": -Infinity}']
    body = ("[" + ", ".join(elements) + "]").encode()
    for size in range(1, len(body) + 1):
        assert list(array_elements(chunked(body, size))) == elements


def test_the_texts_are_the_elements_verbatim() -> None:
    body = b'[ {"a": 1} , 12 ,"\\u0000x", [1, 2] ,true]'
    assert list(array_elements(chunked(body, 3))) == ['{"a": 1}', "12", '"\\u0000x"', "[1, 2]", "true"]


def test_a_number_split_across_chunks_is_one_number() -> None:
    assert list(array_elements([b"[12", b"34, 5", b"6]"])) == ["1234", "56"]


def test_an_empty_array_has_no_elements() -> None:
    assert list(array_elements([b" [ ", b"] \n"])) == []


@pytest.mark.parametrize(
    "body",
    [b'[{"a": 1}, {"a": 2', b"[1, 2", b"[1, 2,", b"", b"[1,]", b"[,1]", b"[1 2]", b"[1] x", b'[{"a": }]'],
)
def test_a_cut_or_broken_body_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedJSON):
        list(array_elements(chunked(body, 4) or [b""]))


@pytest.mark.parametrize(
    "body", [b'[{"a": 1}, , {"a": 2}]', b'[{"a": 1},{"a": 2},]', b'[{"a": 1},{"a": 2,},{"a": 3}]']
)
def test_a_broken_record_among_good_ones_is_malformed_whatever_the_chunks(body: bytes) -> None:
    for size in range(1, len(body) + 1):
        with pytest.raises(MalformedJSON):
            list(array_elements(chunked(body, size)))


def test_another_json_value_is_not_an_array() -> None:
    with pytest.raises(NotAnArray, match=r"starting with '\{'"):
        list(array_elements([b'{"error": "x"}']))


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(MalformedJSON, match="not UTF-8"):
        list(array_elements([b'["\xff"]']))


def test_a_long_element_is_not_rescanned_for_every_chunk() -> None:
    element = json.dumps("x" * 200_000)
    body = ("[" + element + "]").encode()
    assert list(array_elements(chunked(body, 100))) == [element]


@pytest.mark.parametrize(
    "element",
    [
        "7" * 5000,
        '{"n": ' + "9" * 5000 + ', "s": "]}\\"["}',
        "[" * 3000 + '"]"' + "]" * 3000,
    ],
)
def test_an_element_beyond_the_decoders_limits_is_split_by_its_structure(element: str) -> None:
    body = f"[1, {element}, {element}, 2]".encode()
    chunks = [body[start : start + 64] for start in range(0, len(body), 64)]

    assert list(array_elements(chunks)) == ["1", element, element, "2"]


@pytest.mark.parametrize(
    "body", [b"[1, " + b"[" * 3000, b'[1, {"n": ' + b"9" * 5000, b'[{"s": "' + b"[" * 3000]
)
def test_a_body_cut_inside_such_an_element_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedJSON):
        list(array_elements([body]))
