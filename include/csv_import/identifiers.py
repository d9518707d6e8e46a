"""Column names for PostgreSQL from whatever a CSV header says.

A header is data from outside: it can be empty, repeated, 300 characters long, in Cyrillic, or
``"; DROP TABLE x; --``. It becomes an identifier that is safe *and* convenient: lowercase
snake case of ASCII letters, digits and ``_`` (so nobody has to quote it in a query), never
empty, never starting with a digit, unique within the table, at most 63 bytes. The writer still
only ever passes it through ``psycopg.sql.Identifier``: safety does not rest on this module.

Why each rule
-------------
* PostgreSQL **truncates** a longer name to 63 bytes without an error, so two long headers that
  share a prefix would become one column; we truncate ourselves, then make names unique.
* The same header must give the same name in every file and every run (columns of a drop are
  united by name): so a header with no Latin letters falls back to a name derived from its text
  (``c_`` + a hash), never from its position; only an empty header is named by position.
* Accents are dropped (``Größe in m²`` → ``grosse_in_m2``, ``Café`` → ``cafe``) and Cyrillic is
  transliterated (``Стоимость`` → ``stoimost``), as a reader of the table would spell them.
* The lineage columns ``_source_file_id`` and ``_source_line`` are the pipeline's: names here
  never start with ``_``, so no header can take them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

# PostgreSQL truncates longer identifiers silently: two long names would then meet.
MAX_IDENTIFIER_BYTES = 63
# The columns every imported row carries besides its file's: the file (its ledger id) and line.
LINEAGE_COLUMNS = ("_source_file_id", "_source_line")

_NOT_WORD = re.compile(r"[^a-z0-9]+")
# Letters NFKD does not take apart: their usual ASCII spelling.
_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ð": "d", "þ": "th", "ł": "l", "đ": "d"})
# Cyrillic letters in the order of _LATIN (ъ and ь have no Latin letter).
_CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ"
_LATIN = "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya i yi ye g"
_TRANSLITERATE = str.maketrans(
    {letter: latin.strip("-") for letter, latin in zip(_CYRILLIC, _LATIN.split(" "), strict=True)}
)


def to_identifier(header: str, position: int) -> str:
    """The column name for one header, before names are made unique (``position`` is 1-based)."""
    text = unicodedata.normalize("NFKC", header).lower().translate(_SPECIAL).translate(_TRANSLITERATE)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _NOT_WORD.sub("_", text).strip("_")
    if not name:
        if not header.strip():
            return f"column_{position}"
        # Stable across files and runs, unlike a position; short enough to type.
        return "c_" + hashlib.blake2b(header.strip().encode(), digest_size=4).hexdigest()
    if name[0].isdigit():
        name = "c_" + name
    return name[:MAX_IDENTIFIER_BYTES].rstrip("_")


def unique_identifiers(headers: Iterable[str]) -> list[str]:
    """A safe, distinct column name for each header, in order.

    A repeated name gets ``_2``, ``_3``… (the first keeps the plain name), shortened first if
    needed so that the suffix survives PostgreSQL's 63-byte limit, and never one taken by a
    later header's plain name.
    """
    names = [to_identifier(header, position) for position, header in enumerate(headers, start=1)]
    plain = set(names)
    taken: set[str] = set()
    result = []
    for name in names:
        candidate, number = name, 1
        while candidate in taken or candidate in LINEAGE_COLUMNS or (number > 1 and candidate in plain):
            number += 1
            suffix = f"_{number}"
            candidate = name[: MAX_IDENTIFIER_BYTES - len(suffix)] + suffix
        taken.add(candidate)
        result.append(candidate)
    return result
