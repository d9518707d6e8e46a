"""What can make a file impossible to sum, as typed errors a result carries instead of a stack trace.

Each kind has a stable ``code`` a client can branch on and a message that says what the person
who owns the file must do. They are raised by :func:`include.column_sums.sums.sum_columns` (the
content) and :func:`include.column_sums.storage.open_source` (where the file is); the task that
calls them stores :meth:`CsvProblem.to_json` as the request's result.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CsvProblem(Exception):
    """The file cannot be summed; ``str(problem)`` says why and what to do."""

    code: ClassVar[str] = "csv_problem"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self)}


class EmptyFile(CsvProblem):
    code = "empty_file"


class NoHeader(CsvProblem):
    code = "no_header"


class TooFewColumns(CsvProblem):
    code = "too_few_columns"


class UnreadableEncoding(CsvProblem):
    code = "unreadable_encoding"


class MalformedCsv(CsvProblem):
    code = "malformed_csv"


# Where the file is read from (include.column_sums.storage). Their messages never name the
# server's own folders: they go back to whoever asked, who only knows the location they gave.


class InvalidLocation(CsvProblem):
    code = "invalid_location"


class OutsideRoot(CsvProblem):
    code = "outside_root"


class NotFound(CsvProblem):
    code = "not_found"


class NotReadable(CsvProblem):
    code = "not_readable"


class StorageNotConfigured(CsvProblem):
    code = "storage_not_configured"


class SourceChanged(CsvProblem):
    code = "source_changed"
