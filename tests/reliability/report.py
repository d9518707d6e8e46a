"""Write docs/RELIABILITY.md from the fault table the reliability tests wrote.

    python -m tests.reliability.report [--table PATH] [--output PATH] [--only PIPELINE]

``make reliability`` runs tests/reliability (which writes the table as JSON) and then this.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devservices.environment import PROJECT_ROOT
from tests.reliability.table_file import TABLE_FILE

OUTPUT = PROJECT_ROOT / "docs" / "RELIABILITY.md"
COLUMNS = (
    "Fault",
    "Ran under",
    "How it was injected",
    "What the pipeline did",
    "Rows lost",
    "Rows doubled",
    "Emails",
)
AIRFLOW_COLUMNS = (
    "Fault",
    "Run",
    "How it was injected",
    "What Airflow recorded",
    "Task tries",
    "Rows lost",
    "Rows doubled",
    "Emails",
    "Alerts",
)
# The CSV import's table: the flagship's columns, with the rejects its manifest lists instead of
# emails (the import sends none but failure alerts).
CSV_COLUMNS = (*COLUMNS[:-1], "Rejects")
# The usage ingest's table: what it adds is sums, so units off beside lines, and its quarantine.
USAGE_COLUMNS = (
    "Fault",
    "How it was injected",
    "What the pipeline did",
    "Lines lost",
    "Lines doubled",
    "Units off",
    "Quarantined",
)
# The profile relay's table: what it must deliver is each in-range profile once, so the
# receiver's books beside the store's, and the generator's ticks while the fault lasted.
RELAY_COLUMNS = (
    "Fault",
    "How it was injected",
    "What the pipeline did",
    "In range",
    "Lost",
    "Doubled",
    "Out of range sent",
    "Duplicates the receiver dropped",
    "Generator's ticks during the fault",
)
# The column sums' table: what a request must get is one right answer, so requests against
# answers, the downloads resumed and the tries Airflow recorded.
SUMS_COLUMNS = (
    "Fault",
    "Ran under",
    "How it was injected",
    "What the pipeline did",
    "Requests",
    "Right answers",
    "Wrong",
    "Lost",
    "Results rows per request",
    "Resumed downloads",
    "Task tries",
)
HARNESS, AIRFLOW, BOTH = "harness", "Airflow", "both"
CSV_PIPELINE = "csv_folder_import"
USAGE_PIPELINE = "usage_files_ingest"
RELAY_PIPELINE = "user_profiles_relay"
SUMS_PIPELINE = "csv_column_sums"
PIPELINES = (CSV_PIPELINE, USAGE_PIPELINE, RELAY_PIPELINE, SUMS_PIPELINE)

INTRO = """\
# Reliability: the fault tables of `learning_platform_etl`, [`csv_folder_import`](#csv_folder_import), \
[`usage_files_ingest`](#usage_files_ingest), [`user_profiles_relay`](#user_profiles_relay) and \
[`csv_column_sums`](#csv_column_sums)

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

**Ran under** says where a row ran: the harness above, the real executor ("Airflow", see
[Under the real executor](#under-the-real-executor)), or both, each in a test of its own.
"""

AIRFLOW_INTRO = """## Under the real executor

The harness models Airflow. These rows (`test_faults_under_airflow.py`) ran under Airflow
itself: one deployment for the module (api-server, scheduler, dag-processor, triggerer, the
{executor}, PostgreSQL metadata), the DAG as deployed, with its 3 retries (1 s apart here,
exponential, through `[pipelines] retry_delay_seconds`), its trigger rules and its watcher
`mark_run_failed`. The first row is a run the scheduler created itself for yesterday's data
interval when the DAG was unpaused (run type `scheduled`); the others were triggered through
the REST API. Faults went in through real means: the simulator's fault rules and defects, a
connection changed through the REST API, a task process killed with SIGKILL. Each row compares
the warehouse Airflow's run wrote with the harness's run of the same day from the same source
data. **Task tries** are the try numbers Airflow recorded (tasks not listed: 1 try, or never
run); **alerts** are the failure alerts the SMTP server received for the run.
"""

CSV_INTRO = """## csv_folder_import

Each row is one test of `tests/reliability/test_csv_import_faults.py`. It imports a drop made by
the demo generator (`devservices/energy_certificates.py`: four data files of 1-2 MB, one zipped,
an empty file, one whose header matches nothing, defective lines of every kind) with the DAG's
task bodies (`tests/reliability/csv_import_harness.py`: Airflow's retries, 3 per task; a
`PermanentFailure` fails its task at once; every mapped `import_chunk` runs, `publish` only after
all succeeded) into a real PostgreSQL, in chunks of 1 MiB. Faults go in through real means: a
worker process SIGKILLed, the server stopped with `pg_ctl`, a file rewritten on disk, two runs'
sessions contending for the same table, an HTTP proxy between the import and the S3 test server
(moto) that closes the connection half-way through a body. To strike in the middle of a chunk,
whatever the machine's speed, a row trigger the test adds to the run's staging table holds the
chunk's COPY at a line on an advisory lock the test holds; it is dropped before the chunk is
tried again. What the table ends with is compared with the generator's manifest, never with the
importer's counts:

- **rows lost**: good lines of the manifest with no row in the table (found by lineage,
  `_source_file_id` and `_source_line`);
- **rows doubled**: rows beyond one per good line, duplicates included (a row from a line the
  manifest rejects fails the test as well);
- **rejects**: the rejects of the table's current rows (`csv_import.rejects` of each file's
  `imported_by_run`), by file, line and reason, against the manifest's.

A test fails on anything but 0 / 0 and the manifest's rejects.

A local file has no ETag: discovery pins its content digest and modification time, so an edit
made after discovery, even one that keeps the size, fails the chunk that opens the file
afterwards (`test_a_same_size_edit_between_a_files_chunks_fails_the_chunk`).
"""

USAGE_INTRO = """## usage_files_ingest

Each row is one test of `tests/reliability/test_usage_ingest_faults.py`. It drops files made by
the writer (`devservices/usage_writer.py`: 1-24 MB, 20-50 thousand consumers with a skew, bad
lines of every reason, odd but good spellings) and runs the DAG's steps with its task bodies
(`tests/reliability/usage_ingest_harness.py`: `claim_files`, `process_range`, `finish_files`)
against a real PostgreSQL, in batches of 256 KiB so that a file has many. A try of
`process_range` runs in a worker process of its own (it calls `process_range`, as the task does),
so that it can be SIGKILLed; a retry is a new worker, a later run is a new run id. Faults go in
through real means: SIGKILL, `pg_ctl stop -m immediate`, a TCP proxy between worker and
PostgreSQL that reads the protocol and drops the connection at one message (the COMMIT of a
batch whose reply it withholds; half of a batch's COPY data), files rewritten under a run, two
workers or two runs at once. To strike inside a batch whatever the machine's speed, the test
holds a lock the batch needs (a consumer's total row, the range's row, the files ledger) until
PostgreSQL shows the worker waiting for it. What the store ends with is compared with the
writer's manifest, never with the pipeline's counts:

- **lines lost**: lines of a file no committed batch covers (the `batches` log's line spans,
  against the manifest's line count of the file, identified by name and sha256);
- **lines doubled**: lines covered by more than one committed batch;
- **units off**: the sum over consumers of |total in `consumer_totals` − the manifest's|, plus
  the same over (hour, consumer) in `usage_hourly` against the manifest's sums of the files
  booked to each hour;
- **quarantined**: the quarantine's rows against the manifest's bad lines, by file, line number
  and reason.

A test also fails when a file's applied and quarantined lines differ from the manifest's or it
is not done, so a green suite means every row below reads 0 / 0 / 0.
"""

RELAY_INTRO = """## user_profiles_relay

Each row is one test of `tests/reliability/test_user_profiles_faults.py`. It runs one run's three
stages at the same time, as the DAG does: `generate`, `process` and `send`, each in a worker
process of its own calling the function its task's body calls
(`tests/reliability/profile_relay_harness.py`), against a real PostgreSQL and the real receiver
(`devservices/profile_receiver.py`), with 150-300 profiles one every 50 ms. It injects one fault,
through real means: the receiver's own faults (its listening socket closed; a batch stored and
its connection dropped unanswered; a POST held unanswered), SIGKILL, `pg_ctl stop` and `start`.
A killed or failed try is followed by a new worker running the same stage, as Airflow's retry
would. To strike inside a batch whatever the machine's speed, the receiver holds the POST, or
the test holds a lock on the deliveries table until PostgreSQL shows the sender waiting for it
(the receiver has stored the batch, the store has not recorded it). What the run ends with is
judged from the receiver's own store and the pipeline's, against the run's people regenerated
from its seed and their ages counted by the harness on the run's reference date:

- **in range**: the run's profiles aged 30..40, which the receiver must hold once each;
- **lost**: in-range profiles the receiver does not hold;
- **doubled**: people the receiver holds more than once (under two keys; one key is stored once);
- **out of range sent**: profiles the receiver holds whose age is outside 30..40;
- **duplicates the receiver dropped**: profiles posted again after the receiver had stored them
  (it answered `duplicate` and kept one copy): the price of at-least-once sending, which the
  idempotency key turns into exactly once;
- **generator's ticks during the fault**: the gaps between the ticks made while the fault lasted,
  against the 50 ms interval. Reported, not asserted: it depends on the machine. The tests assert
  only that ticks went on during the fault.

A test also fails when a profile the receiver holds differs from the one generated or belongs to
no in-range profile of the run, when the outbox is not empty, when the store's deliveries are not
exactly the in-range profiles, or when `sent_at` is not after `processed_at`, so a green suite
means every row below reads 0 / 0 / 0.
"""

SUMS_INTRO = """## csv_column_sums

Each row is one test of `tests/reliability/test_column_sums_faults.py`. The storage rows run the
task's body (`include.column_sums.tasks.sum_file`, what the DAG's task calls) against a real
PostgreSQL and the real S3 server (moto), through an HTTP proxy that cuts bodies half-way, resets
connections mid-body and answers 503 SlowDown and 500 InternalError, with the connection's own
client retries (the Amazon provider's default). The rows about Airflow ran under Airflow itself:
one deployment (api-server with the `/column-sums` plugin, scheduler, dag-processor, triggerer,
the LocalExecutor, PostgreSQL metadata), the DAG as deployed with its retries (1 s apart here),
requests made through Airflow's REST API or the plugin's. To strike mid-read whatever the
machine's speed, the proxy holds a GET after half its body until the test releases it (then the
body is cut); the test acts once the proxy holds the reader, never after a sleep. Every file is
made by the generator (`devservices/csv_columns.py`), whose expected sums and cell counts come
from its own choices:

- **right answers**: requests answered with every 10th column's exact sum and cell counts, the
  rows and bytes read equal to the file's (or, for a file replaced during the read, the problem
  `source_changed`, never sums of the two versions);
- **wrong**: a stored answer that is not the right one; **lost**: a request with none;
- **results rows per request**: rows of `column_sums.results` each request left (one: a retry
  replaces its row);
- **resumed downloads**: ranged GETs after a cut, each from the last byte received (checked
  against the proxy's log of every GET's `Range` and the bytes it sent);
- **task tries**: the try numbers Airflow recorded (harness rows: one try of the body).

A test fails on anything but every answer right and one row per request.
"""

RERUN = """\
## How to rerun it

```bash
make reliability   # runs tests/reliability, then rewrites this file from their output
```

The harness's rows (the flagship's, `csv_folder_import`'s, `usage_files_ingest`'s,
`user_profiles_relay`'s and `csv_column_sums`') and the executor's scheduled, SIGKILL and
quality-gate rows also run in `make test`, as do `csv_column_sums`' rows under Airflow; the
executor's other rows only here.
The table the tests write lands in `.local/test-artifacts/reliability/faults.json`.
"""


def render(rows: list[dict[str, Any]], *, generated: str) -> str:
    flagship = [row for row in rows if row.get("pipeline") not in PIPELINES]
    harness = [row for row in flagship if row.get("ran_under", HARNESS) == HARNESS]
    airflow = [row for row in flagship if row.get("ran_under") == "airflow"]
    where = ran_under(harness, airflow)
    # Each fault once: the harness's row where there is one, else the executor's.
    table = harness + [row for row in airflow if where[row["fault"]] == AIRFLOW]
    lines = [INTRO, f"Generated {generated} from {len(rows)} rows recorded by the tests.\n"]
    lines += _table(
        COLUMNS,
        (
            (
                row["fault"],
                where[row["fault"]],
                row["injection"],
                row["behaviour"],
                row["rows_lost"],
                row["rows_doubled"],
                row["emails"],
            )
            for row in table
        ),
    )
    if airflow:
        executors = sorted({row["executor"] for row in airflow})
        lines.append(AIRFLOW_INTRO.format(executor=" / ".join(executors)))
        lines += _table(
            AIRFLOW_COLUMNS,
            (
                (
                    row["fault"] + (" (also under the harness)" if where[row["fault"]] == BOTH else ""),
                    f"{row['airflow']['run_type']}: `{row['airflow']['run_id']}`",
                    row["injection"],
                    _recorded(row),
                    _tries(row["airflow"]) + _after_clearing(row),
                    row["rows_lost"],
                    row["rows_doubled"],
                    row["emails"],
                    row["alerts"],
                )
                for row in airflow
            ),
        )
    for pipeline in PIPELINES:
        own = [row for row in rows if row.get("pipeline") == pipeline]
        if own:
            lines += section(pipeline, own)
    lines.append(RERUN)
    return "\n".join(lines)


def section(pipeline: str, rows: list[dict[str, Any]]) -> list[str]:
    """The lines of ``pipeline``'s section (``## <pipeline>``, its intro and its table)."""
    return {
        CSV_PIPELINE: _csv_section,
        USAGE_PIPELINE: _usage_section,
        RELAY_PIPELINE: _relay_section,
        SUMS_PIPELINE: _sums_section,
    }[pipeline](rows)


def replace_section(document: str, pipeline: str, rows: list[dict[str, Any]]) -> str:
    """``document`` with ``pipeline``'s section rendered from ``rows`` (added before "How to rerun
    it" if it had none) and its frame (title, "How to rerun it") brought up to date; every other
    section, the flagship's tables and their "Generated" line, kept as they were."""
    heading = f"## {pipeline}"
    # Sections begin at their "## " headings; the first chunk is the title and the flagship's part.
    chunks = re.split(r"(?m)^(?=## )", document)
    rest = chunks[0].partition("\n")[2]
    chunks[0] = INTRO.partition("\n")[0] + "\n" + rest
    new = "\n".join(section(pipeline, rows))
    rerun = RERUN.partition("\n")[0]
    kept = [chunk for chunk in chunks[1:] if chunk.partition("\n")[0] not in (heading, rerun)]
    return "".join([chunks[0], *[chunk.rstrip("\n") + "\n\n" for chunk in kept], new + "\n", RERUN])


def _csv_section(rows: list[dict[str, Any]]) -> list[str]:
    return [CSV_INTRO, *_csv_table(rows)]


def _usage_section(rows: list[dict[str, Any]]) -> list[str]:
    return [
        USAGE_INTRO,
        *_table(
            USAGE_COLUMNS,
            (
                (
                    row["fault"],
                    row["injection"],
                    row["behaviour"],
                    row["lines_lost"],
                    row["lines_doubled"],
                    row["units_off"],
                    row["quarantined"],
                )
                for row in rows
            ),
        ),
    ]


def _relay_section(rows: list[dict[str, Any]]) -> list[str]:
    return [
        RELAY_INTRO,
        *_table(
            RELAY_COLUMNS,
            (
                (
                    row["fault"],
                    row["injection"],
                    row["behaviour"],
                    row["in_range"],
                    row["lost"],
                    row["doubled"],
                    row["out_of_range_sent"],
                    row["duplicates_dropped"],
                    row["ticks"],
                )
                for row in rows
            ),
        ),
    ]


def _sums_section(rows: list[dict[str, Any]]) -> list[str]:
    return [
        SUMS_INTRO,
        *_table(
            SUMS_COLUMNS,
            (
                (
                    row["fault"],
                    AIRFLOW if row["ran_under"] == "airflow" else HARNESS,
                    row["injection"],
                    row["behaviour"],
                    row["requests"],
                    row["right"],
                    row["wrong"],
                    row["lost"],
                    row["rows_per_request"],
                    row["resumes"],
                    row["tries"],
                )
                for row in rows
            ),
        ),
    ]


def _csv_table(rows: list[dict[str, Any]]) -> list[str]:
    where = ran_under(
        [row for row in rows if row.get("ran_under", HARNESS) == HARNESS],
        [row for row in rows if row.get("ran_under") == "airflow"],
    )
    return _table(
        CSV_COLUMNS,
        (
            (
                row["fault"],
                where[row["fault"]],
                row["injection"],
                row["behaviour"],
                row["rows_lost"],
                row["rows_doubled"],
                row["rejects"],
            )
            for row in rows
        ),
    )


def ran_under(harness: list[dict[str, Any]], airflow: list[dict[str, Any]]) -> dict[str, str]:
    """Per fault: ``harness``, ``Airflow`` or ``both``, matched by the fault's name."""
    in_harness = {row["fault"] for row in harness}
    in_airflow = {row["fault"] for row in airflow}
    return {
        fault: BOTH
        if fault in in_harness and fault in in_airflow
        else HARNESS
        if fault in in_harness
        else AIRFLOW
        for fault in in_harness | in_airflow
    }


def _recorded(row: dict[str, Any]) -> str:
    """The run's state, and which tasks ended how (success left out), in the DAG's order."""
    run = row["airflow"]
    by_state: dict[str, list[str]] = {}
    for task, task_run in run["tasks"].items():
        if task_run["state"] != "success":
            by_state.setdefault(task_run["state"], []).append(task)
    ended = [f"{', '.join(tasks)} {state}" for state, tasks in by_state.items()]
    text = "; ".join([f"run {run['state']}", *ended])
    if "after_clearing" in row:
        text += f"; cleared from extract: run {row['after_clearing']['state']}"
    return text


def _tries(run: dict[str, Any]) -> str:
    tries = [
        f"{task} {task_run['tries']}" for task, task_run in run["tasks"].items() if task_run["tries"] > 1
    ]
    return ", ".join(tries) or "1 each"


def _after_clearing(row: dict[str, Any]) -> str:
    if "after_clearing" not in row:
        return ""
    return "; after clearing: " + _tries(row["after_clearing"])


def _table(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for cells in rows:
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--table", type=Path, default=TABLE_FILE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--only",
        choices=PIPELINES,
        help="rewrite only this pipeline's section of the existing output from the table (after running "
        "its module alone, whose table holds only its rows), keeping the other sections as they were",
    )
    args = parser.parse_args(argv)
    if not args.table.exists():
        sys.exit(f"{args.table} not found: run `make reliability` (or pytest tests/reliability) first")
    rows = json.loads(args.table.read_text())
    if args.only:
        own = [row for row in rows if row.get("pipeline") == args.only]
        if not own:
            sys.exit(f"{args.table} has no row of {args.only}: run its fault tests first")
        args.output.write_text(replace_section(args.output.read_text(), args.only, own))
        print(f"rewrote the {args.only} section of {args.output} ({len(own)} faults)")  # noqa: T201
        return 0
    written = datetime.fromtimestamp(args.table.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    generated = f"{written} on {os.cpu_count()} cores, Python {platform.python_version()}"
    args.output.write_text(render(rows, generated=generated))
    print(f"wrote {args.output} ({len(rows)} faults)")  # noqa: T201 - a command's report
    return 0


if __name__ == "__main__":
    sys.exit(main())
