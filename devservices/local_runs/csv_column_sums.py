"""``make run DAG=csv_column_sums``: ask the REST API for a sample file's column sums, as a client would.

Generates a sample CSV (``--rows`` × ``--columns``, with blanks and junk: ``devservices.csv_columns``)
under the demo's local root and uploads it to a local S3 server (moto), then starts a local
Airflow (api-server with the ``/column-sums`` plugin, scheduler, dag-processor, triggerer,
LocalExecutor; metadata in the local PostgreSQL) with the Variable ``csv_column_sums`` pointing
at both, and the results in the local warehouse. Once the DAG is parsed it is a client of the
API (``devservices.column_sums_client``): it submits the file from disk, the same file from
S3, and a file that does not exist; prints the count of requests in progress while they run;
then each answer: the sums as a table, or the error.

The sums are checked against the generator's own account of what it wrote (each column's
exact sum, and its numeric, blank and non-numeric counts), and the missing file must be
answered ``not_found``. Last, the same session as ``curl`` lines (no secret printed) and the
address of the API's OpenAPI page. Everything it started is stopped before it exits.

Exits 0 when every check held, 1 otherwise, 2 (before starting anything) with bad options.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import requests

from devservices.airflow_cluster import ADMIN_USER, AirflowClusterError, LocalAirflow
from devservices.column_sums_client import FINISHED, ColumnSumsApiError, ColumnSumsClient
from devservices.column_sums_demo import (
    configure_demo_sums,
    curl_session,
    demo_root,
    docs_url,
    s3_environment,
    sample,
    serve_from_s3,
)
from devservices.csv_columns import Written
from devservices.environment import load_settings
from devservices.local_airflow import metadata_url
from devservices.local_services import LOCAL_DIR, start_local_services
from devservices.s3_server import LocalS3
from include.column_sums.settings import DAG_ID

DEFAULT_ROWS = 200_000
DEFAULT_COLUMNS = 30
# Kept apart from `make airflow`'s metadata (and home), so that both can run at once.
METADATA_DATABASE = "airflow_column_sums_run"
AIRFLOW_HOME = LOCAL_DIR / "column_sums" / "airflow"
MISSING = "no-such-file.csv"
REQUEST_TIMEOUT_S = 300
POLL_S = 0.5
JUNK_SHOWN = 3

log = logging.getLogger("make run")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    load_settings()
    # SIGTERM (a supervisor, `kill`) stops Airflow and the services as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        ok = _run(args)
    except KeyboardInterrupt:
        log.info("interrupted: stopped Airflow and the local services")
        return 130
    except (AirflowClusterError, ColumnSumsApiError, TimeoutError) as error:
        log.error(
            "%s\nstopped Airflow and the local services; the components' logs are in %s", error, AIRFLOW_HOME
        )
        return 1
    print(f"\n{DAG_ID}: {time.monotonic() - started:.0f} s in all, Airflow's start and stop included")
    return 0 if ok else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Request(NamedTuple):
    label: str
    location: str
    exists: bool = True  # False: the answer must be not_found


def _run(args: argparse.Namespace) -> bool:
    written = sample(args.rows, args.columns, args.seed)
    local_name = Path(written.path).name
    with ExitStack() as services:
        s3 = services.enter_context(LocalS3())
        # This process reads the connection too (the upload); Airflow's components get it from here.
        os.environ.update(s3_environment(s3))
        s3_location = serve_from_s3(s3, Path(written.path))
        configure_demo_sums(os.environ, root=demo_root(), force=True)
        local_postgres = start_local_services(services)
        password = secrets.token_urlsafe(16)
        airflow = LocalAirflow.on_free_ports(
            home=AIRFLOW_HOME,
            metadata_url=metadata_url(local_postgres, METADATA_DATABASE),
            admin_password=password,
            # As in production: the other DAGs stay paused, so nothing but the requests runs.
            # csv_column_sums is on from its first parse all the same (is_paused_upon_creation).
            dags_paused_at_creation=True,
        )
        services.enter_context(airflow)
        airflow.wait_until_ready([DAG_ID])
        log.info("Airflow is up at %s, %s parsed: asking the API as a client would", airflow.url, DAG_ID)

        client = ColumnSumsClient(airflow.url, ADMIN_USER, password)
        asked = [
            Request("from disk", local_name),
            Request("from S3", s3_location),
            Request("missing", MISSING, exists=False),
        ]
        submitted = {client.submit(request.location): request for request in asked}
        for task_id, request in submitted.items():
            print(f"submitted  {request.location} ({request.label}): task {task_id}", flush=True)
        answers = _wait_all(client, list(submitted))
        checks = []
        for task_id, request in submitted.items():
            answer = answers[task_id]
            print(f"\n{request.location} ({request.label}): {describe(answer)}")
            checks.append(check_sums(answer, written) if request.exists else check_missing(answer))
        print()
        for check in checks:
            print(check.message)
        print("\nThe same through curl (log in once; the token stays in $TOKEN):")
        for line in curl_session(
            airflow.url, ADMIN_USER, [request.location for request in asked], next(iter(submitted))
        ):
            print(f"  {line}")
        checks.append(check_docs(airflow.url))
        print(checks[-1].message)
        log.info("stopping Airflow, the S3 server and the local services")
    return all(check.ok for check in checks)


def _wait_all(client: ColumnSumsClient, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Poll until every task is finished, printing the in-progress count whenever it changes."""
    deadline = time.monotonic() + REQUEST_TIMEOUT_S
    answers: dict[str, dict[str, Any]] = {}
    last_count = None
    began = time.monotonic()
    while True:
        count = client.in_progress()
        if count != last_count:
            print(
                f"in progress {count['in_progress']} (queued {count['queued']}, running {count['running']}) "
                f"after {time.monotonic() - began:.1f} s",
                flush=True,
            )
            last_count = count
        for task_id in task_ids:
            if task_id not in answers:
                answer = client.task(task_id)
                if answer["state"] in FINISHED:
                    answers[task_id] = answer
        if len(answers) == len(task_ids):
            return answers
        if time.monotonic() > deadline:
            pending = sorted(set(task_ids) - answers.keys())
            raise TimeoutError(f"tasks {pending} not finished after {REQUEST_TIMEOUT_S} s")
        time.sleep(POLL_S)


def describe(answer: dict[str, Any]) -> str:
    """A task's answer for a person: the sums as a table, or its error."""
    if answer["state"] != "success":
        error = answer.get("error") or {}
        return f"{answer['state']}, {error.get('code')}: {error.get('message')}"
    result = answer["result"]
    head = (
        f"{result['rows']:,} rows, {result['header_columns']} columns, "
        f"{result['bytes_read'] / 1e6:.1f} MB; every 10th column:"
    )
    table = [("column", "sum", "numeric", "blank", "non-numeric", "first junk cells (row: value)")]
    for column in result["columns"]:
        junk = ", ".join(
            f"{cell['row']}: {cell['value']!r}" for cell in column["non_numeric_samples"][:JUNK_SHOWN]
        )
        table.append(
            (
                f"{column['index']} {column['name']}",
                column["sum"],
                f"{column['numeric_cells']:,}",
                f"{column['blank_cells']:,}",
                f"{column['non_numeric_cells']:,}",
                junk or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = [head]
    for row in table:
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    if result.get("ragged_rows"):
        lines.append(f"  {result['ragged_rows']:,} rows with another number of fields than the header")
    return "\n".join(lines)


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str


def check_sums(answer: dict[str, Any], written: Written) -> Check:
    """The answer's columns against the generator's account: names, exact sums and cell counts."""
    location = answer.get("location")
    if answer["state"] != "success":
        return Check(False, f"check      WRONG: {location} was not summed ({answer['state']})")
    got = {column["index"]: column for column in answer["result"]["columns"]}
    wrong = []
    for expected in written.expected:
        column = got.pop(expected.index, None)
        if column is None:
            wrong.append(f"column {expected.index} missing")
            continue
        actual = (
            column["name"],
            Decimal(column["sum"]),
            column["numeric_cells"],
            column["blank_cells"],
            column["non_numeric_cells"],
        )
        wanted = (
            expected.name,
            Decimal(expected.sum),
            expected.numeric,
            expected.blank,
            expected.non_numeric,
        )
        if actual != wanted:
            wrong.append(f"column {expected.index}: {actual} instead of {wanted}")
    wrong += [f"column {index} was not asked for" for index in got]
    if answer["result"]["rows"] != written.rows:
        wrong.append(f"{answer['result']['rows']:,} rows instead of {written.rows:,}")
    if wrong:
        return Check(False, f"check      WRONG for {location}: " + "; ".join(wrong))
    return Check(
        True,
        f"check      {location}: the {len(written.expected)} sums and their numeric, blank and "
        "non-numeric counts = the generator's",
    )


def check_missing(answer: dict[str, Any]) -> Check:
    error = answer.get("error") or {}
    if answer["state"] == "failed" and error.get("code") == "not_found":
        return Check(True, f"check      {answer.get('location')}: answered not_found, as it should")
    return Check(False, f"check      WRONG: {answer.get('location')} answered {answer['state']} {error}")


def check_docs(base_url: str) -> Check:
    """The API's OpenAPI page answers (it is public, as Airflow's own docs are)."""
    url = docs_url(base_url)
    response = requests.get(url, timeout=30)
    if response.ok and "swagger" in response.text.lower():
        return Check(True, f"API documentation (OpenAPI): {url}")
    return Check(False, f"check      WRONG: the API documentation {url} answered {response.status_code}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='make run DAG=csv_column_sums ARGS="..."',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="data rows of the sample (%(default)s)"
    )
    parser.add_argument(
        "--columns", type=int, default=DEFAULT_COLUMNS, help="columns of the sample, 10 or more (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the sample's seed: same seed, same bytes")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, not {args.rows}")
    if args.columns < 10:
        parser.error(f"--columns must be at least 10 (the 10th is the first summed), not {args.columns}")
    return args


if __name__ == "__main__":
    sys.exit(main())
