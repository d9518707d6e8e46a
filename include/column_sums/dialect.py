"""How a CSV file is written, as far as summing it needs: delimiter, quote character, encoding.

The file is split into fields on its raw bytes, so the delimiter, the quote and the line break
must be single ASCII bytes that never occur inside another character: true of UTF-8 and of the
single-byte code pages (cp1252, latin-1 …), and not of UTF-16/32 or of multi-byte encodings
such as GB18030 or Shift-JIS, whose trailing bytes can be digits or delimiters. Those are
refused with the advice to convert the file, rather than summed wrongly.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from include.column_sums.problems import UnreadableEncoding

_BYTE_SAFE_MULTIBYTE = frozenset({"utf-8", "utf-8-sig"})


@dataclass(frozen=True, slots=True)
class Dialect:
    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        for name, value in (("delimiter", self.delimiter), ("quote", self.quote)):
            if len(value) != 1 or not value.isascii() or value in "\r\n0123456789.+- ":
                raise ValueError(
                    f"the {name} must be one ASCII character other than a digit, sign, dot, space "
                    f"or line break, not {value!r}"
                )
        if self.delimiter == self.quote:
            raise ValueError(f"the delimiter and the quote must differ, both are {self.delimiter!r}")

    def checked_encoding(self) -> str:
        """The codec's canonical name, or :class:`UnreadableEncoding` if fields cannot be split on bytes."""
        try:
            name = codecs.lookup(self.encoding).name
        except LookupError:
            raise UnreadableEncoding(
                f"unknown encoding {self.encoding!r}: name a Python codec such as utf-8 or cp1252"
            ) from None
        if name not in _BYTE_SAFE_MULTIBYTE and not _single_byte_ascii_compatible(name):
            raise UnreadableEncoding(
                f"the {name} encoding cannot be read byte by byte: convert the file to UTF-8 "
                "(for example with iconv) and submit it again"
            )
        return name


def _single_byte_ascii_compatible(name: str) -> bool:
    """Each byte is one character, and the ASCII bytes are ASCII: decoding byte by byte and all at
    once agree (a multi-byte codec joins a lead byte with the next)."""
    try:
        ascii_bytes = bytes(range(128))
        if codecs.decode(ascii_bytes, name) != ascii_bytes.decode("ascii"):
            return False
        one_by_one = "".join(codecs.decode(bytes([byte]), name, errors="replace") for byte in range(256))
        return codecs.decode(bytes(range(256)), name, errors="replace") == one_by_one
    except (UnicodeError, LookupError):
        return False


COMMA_SEPARATED = Dialect()
