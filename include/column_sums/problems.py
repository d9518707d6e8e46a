"""What can make a file impossible to sum, as typed errors a result carries instead of a stack trace.

Each kind has a stable ``code`` a client can branch on and a message that says what the person
who owns the file must do. They are raised by :func:`include.column_sums.sums.sum_columns`; the
task that calls it stores :meth:`CsvProblem.to_json` as the request's result.
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
