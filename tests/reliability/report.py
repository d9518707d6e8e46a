"""Write docs/RELIABILITY.md from the fault table the reliability tests wrote.

    python -m tests.reliability.report [--table PATH] [--output PATH]

``make reliability`` runs tests/reliability (which writes the table as JSON) and then this.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devservices.environment import PROJECT_ROOT
from tests.reliability.conftest import TABLE_FILE

OUTPUT = PROJECT_ROOT / "docs" / "RELIABILITY.md"
COLUMNS = ("Fault", "How it was injected", "What the pipeline did", "Rows lost", "Rows doubled", "Emails")

INTRO = """\
# Reliability: the fault table of `learning_platform_etl`

Each row is one test of `tests/reliability/` (`test_faults.py`; landing retention's in
`test_landing_retention_faults.py`). It runs a day of the DAG task by
task with Airflow's retry semantics (a task that raises is tried again, except
`publish_report`, which the DAG never retries; `AirflowFailException` fails it at once;
`publish_report` and `send_email` run after a failed gate or publish, as their trigger rule
says) against the real components: the API simulator over HTTP, PostgreSQL,
an SMTP server (aiosmtpd) and the real gspread code against the Sheets fake. It injects one
fault into one of them, then compares what the day left behind with a clean run of the same
day from the same source data, in a database of its own:

- **rows lost**: attempts and quarantined records (every column but ids and load times) the
  clean run has and the faulted run does not;
- **rows doubled**: rows the faulted run has beyond the clean run's, duplicates included;
- the day's figures must equal the clean run's, and the sheet must hold one row per date;
- **emails**: report emails for the day in the outbox (one per successful run of the day).

A test fails on any row lost or doubled, so a green suite means every row below reads 0 / 0.
"""

RERUN = """\
## How to rerun it

```bash
make reliability   # runs tests/reliability, then rewrites this file from their output
```

The same tests run in `make test`; the table they write lands in
`.local/test-artifacts/reliability/faults.json`.
"""


def render(rows: list[dict[str, Any]], *, generated: str) -> str:
    lines = [INTRO, f"Generated {generated} from {len(rows)} rows recorded by the tests.\n"]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for row in rows:
        cells = (
            row["fault"],
            row["injection"],
            row["behaviour"],
            str(row["rows_lost"]),
            str(row["rows_doubled"]),
            str(row["emails"]),
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append("")
    lines.append(RERUN)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--table", type=Path, default=TABLE_FILE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if not args.table.exists():
        sys.exit(f"{args.table} not found: run `make reliability` (or pytest tests/reliability) first")
    rows = json.loads(args.table.read_text())
    written = datetime.fromtimestamp(args.table.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    generated = f"{written} on {os.cpu_count()} cores, Python {platform.python_version()}"
    args.output.write_text(render(rows, generated=generated))
    print(f"wrote {args.output} ({len(rows)} faults)")  # noqa: T201 - a command's report
    return 0


if __name__ == "__main__":
    sys.exit(main())
