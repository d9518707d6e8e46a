"""The elements of a JSON array as they arrive, so that memory holds one element, not the body.

A source that answers a whole window in one JSON array (no paging) would otherwise hold the
window twice: the body, then the decoded records. ``array_elements`` splits the byte stream
into each element's JSON text, checking that it is JSON; callers store that text verbatim or
decode it later.

Splitting is most of a day's extract, and element by element the Python loop costs more than
the decoding. So each time a chunk arrives, the elements it completes are split at once by
msgspec (three times faster): where the last of them ends is guessed (the last comma followed by
the character the current element starts with, as an API's records look alike), and the guess
is kept only if msgspec reads everything before it as array elements. A wrong guess, or JSON
that msgspec refuses and the standard library reads (NaN, a lone surrogate escape, deep
nesting), leaves the chunk to the loop, which splits it with the standard library's decoder.
Both give the same texts: JSON has a single reading, and what msgspec accepts the loop accepts
too (beyond the decoder's limits, by ``_structural_end``).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator

import msgspec

_WHITESPACE = " \t\n\r"
_AFTER_ELEMENT = _WHITESPACE + ",]"
_DECODER = json.JSONDecoder()
_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])
# Matched where an element starts: group 2 is the last comma before the same first character.
_GUESSED_SPLIT = re.compile(r"(?s)(.).*(,)[ \t\n\r]*\1")


# How much of the stream a MalformedJSON quotes from where reading failed, for whoever keeps it.
EXCERPT_CHARS = 64 * 1024


class MalformedJSON(ValueError):
    """The stream is not one JSON array (or it ended before the array did).

    ``offset`` is how many characters of the stream came before the part that could not be read,
    ``excerpt`` up to :data:`EXCERPT_CHARS` of the stream from there (empty at its end).
    """

    def __init__(self, message: str, *, offset: int = 0, excerpt: str = "") -> None:
        super().__init__(message)
        self.offset = offset
        self.excerpt = excerpt


class NotAnArray(ValueError):
    """The stream holds a JSON value that is not an array."""


def array_elements(chunks: Iterable[bytes]) -> Iterator[str]:
    """The JSON text of each element of the UTF-8 JSON array that ``chunks`` make up.

    Raises :class:`NotAnArray` at once for another JSON value, and :class:`MalformedJSON` for
    invalid JSON or a stream that ends before the array does (a body cut short).
    """
    utf8 = codecs.getincrementaldecoder("utf-8")()
    chunks = iter(chunks)
    buffer, position, ended = "", 0, False
    consumed = 0  # characters of the stream dropped from the front of the buffer

    def malformed(message: str) -> MalformedJSON:
        return MalformedJSON(
            message, offset=consumed + position, excerpt=buffer[position : position + EXCERPT_CHARS]
        )

    state, new_data = _OPEN, False
    # Parse again only once the buffer has grown past this: a long element is not rescanned per chunk.
    needed = 1
    while True:
        if len(buffer) - position < needed and not ended:
            chunk = next(chunks, None)
            ended = chunk is None
            try:
                text = utf8.decode(chunk or b"", final=ended)
            except UnicodeDecodeError as error:
                raise malformed(f"the body is not UTF-8: {error.reason}") from None
            consumed += position
            buffer, position, new_data = buffer[position:] + text, 0, True
            continue
        position = _skip_whitespace(buffer, position)
        if position == len(buffer):
            if not ended:
                needed = 1
                continue
            if state == _DONE:
                return
            raise malformed("the body ended before the JSON array did")
        char = buffer[position]
        if state == _DONE:
            raise malformed(f"unexpected {char!r} after the end of the JSON array")
        if state == _OPEN:
            if char != "[":
                raise NotAnArray(f"expected a JSON array, got a value starting with {char!r}")
            state, position = _FIRST, position + 1
        elif state == _SEPARATOR:
            if char not in ",]":
                raise malformed(f"expected ',' or ']' between array elements, got {char!r}")
            state, position = (_VALUE if char == "," else _DONE), position + 1
        elif char == "]" and state == _FIRST:
            state, position = _DONE, position + 1
        elif new_data and (split := _complete_elements(buffer, position)):
            # The elements that the new data completes, at once (see the module's docstring).
            texts, position = split
            yield from texts
            state, new_data, needed = _SEPARATOR, False, 1
        else:
            # One guess per chunk: after a wrong one, the elements are split here one by one.
            new_data = False
            try:
                _, end = _DECODER.raw_decode(buffer, position)
            except json.JSONDecodeError as error:
                if ended:
                    raise malformed(f"invalid JSON in the array: {error.msg}") from None
                needed = 2 * (len(buffer) - position) + 1
                continue
            except (ValueError, RecursionError):
                # Beyond the decoder's limits, not JSON's: a number of more than 4,300 digits, or
                # arrays nested a thousand deep. One such record must not block the whole body:
                # its text is passed on by its structure, and whoever decodes it rejects it.
                end = _structural_end(buffer, position)
                if end is None:
                    if ended:
                        raise malformed("the body ended inside an array element") from None
                    needed = 2 * (len(buffer) - position) + 1
                    continue
            if end == len(buffer) or buffer[end] not in _AFTER_ELEMENT:
                # A number may go on in the next chunk ("12" then "3", "0" then ".5"): an element
                # counts only once what follows it is whitespace, a comma or the closing bracket.
                if not ended:
                    needed = len(buffer) - position + 1
                    continue
                if end < len(buffer):
                    raise malformed(f"unexpected {buffer[end]!r} after an array element")
            yield buffer[position:end]
            state, position, needed = _SEPARATOR, end, 1


# Where the parser stands: before "[", after "[", after ",", after an element, after "]".
_OPEN, _FIRST, _VALUE, _SEPARATOR, _DONE = range(5)


def _complete_elements(buffer: str, position: int) -> tuple[list[str], int] | None:
    """The texts of the elements from ``position`` to a guessed comma between two of them, and
    where that comma is; ``None`` if there is no such comma or msgspec refuses what precedes it."""
    guess = _GUESSED_SPLIT.match(buffer, position)
    if guess is None:
        return None
    try:
        elements = _ELEMENTS.decode("[" + buffer[position : guess.start(2)] + "]")
    except (msgspec.DecodeError, RecursionError):
        return None
    return [str(element, "utf-8") for element in elements], guess.start(2)


def _structural_end(text: str, start: int) -> int | None:
    """Where the JSON value at ``start`` ends, from its brackets and strings alone (no decoding,
    no recursion); ``None`` while ``text`` ends before the value does."""
    if text[start] not in "[{":
        if text[start] == '"':
            end = _string_end(text, start)
            return None if end is None else end
        position = start
        while position < len(text) and text[position] not in _AFTER_ELEMENT:
            position += 1
        return position
    depth, position = 0, start
    while position < len(text):
        char = text[position]
        if char == '"':
            end = _string_end(text, position)
            if end is None:
                return None
            position = end
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return None


def _string_end(text: str, start: int) -> int | None:
    """The position after the JSON string opening at ``start``; ``None`` if it is not closed yet."""
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2
        elif char == '"':
            return position + 1
        else:
            position += 1
    return None


def _skip_whitespace(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position
