"""``csv_column_sums``' demo on this machine, for ``make run`` and ``make airflow`` alike.

A sample CSV (``devservices.csv_columns``: blanks, junk, quoted line breaks) generated once per
size into ``.local/column_sums/root``, the folder the Variable ``csv_column_sums`` names as its
``local_root``; the same file served from a local S3 server (:class:`devservices.s3_server.LocalS3`,
moto) through the connection ``column_sums_s3``; and the ``curl`` session that asks the REST API
for its sums, printed for a person to replay.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import MutableMapping
from dataclasses import asdict
from pathlib import Path

from devservices.csv_columns import ExpectedColumn, Written, write_csv
from devservices.local_services import LOCAL_DIR
from devservices.s3_server import LocalS3
from include.column_sums.settings import DEFAULT_CONN_ID, SETTINGS_VARIABLE

VARIABLE_ENV = f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}"
S3_CONN_ID = "column_sums_s3"
BUCKET = "column-sums-demo"
API_PREFIX = "/column-sums"

log = logging.getLogger("devservices")


def demo_root() -> Path:
    """The demo's ``local_root``: local locations of requests are relative to it."""
    return LOCAL_DIR / "column_sums" / "root"


def sample(rows: int, columns: int, seed: int = 1, *, root: Path | None = None) -> Written:
    """The sample of these arguments under ``root``, generated the first time it is asked for.

    What a correct sum ends with is kept beside it (``<name>.expected.json``): the generator's own
    account, so a later run checks against it without generating the file again.
    """
    root = root or demo_root()
    path = root / f"sample-{rows}x{columns}-seed{seed}.csv"
    expected_file = path.with_suffix(".expected.json")
    if path.exists() and expected_file.exists():
        stored = json.loads(expected_file.read_text())
        stored["expected"] = tuple(ExpectedColumn(**column) for column in stored["expected"])
        return Written(**stored)
    root.mkdir(parents=True, exist_ok=True)
    log.info("generating the sample %s (%s rows, %d columns)", path, f"{rows:,}", columns)
    # Written aside and renamed when complete: an interrupted run never leaves half a sample.
    partial = path.with_name(path.name + ".partial")
    written = write_csv(partial, rows=rows, columns=columns, seed=seed)
    partial.rename(path)
    written = Written(str(path), written.rows, written.columns, written.bytes, written.expected)
    expected_file.write_text(json.dumps(asdict(written), indent=2) + "\n")
    return written


def serve_from_s3(server: LocalS3, path: Path, key: str | None = None) -> str:
    """Upload ``path`` to the demo bucket of ``server``; its ``s3://`` location.

    Through boto3 itself, not the Amazon provider's hook: importing Airflow here would take over
    this process's logging and stdout, which the demo's report is printed to.
    """
    client = server.boto3_client()
    buckets = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if BUCKET not in buckets:
        client.create_bucket(Bucket=BUCKET)
    key = key or path.name
    client.upload_file(str(path), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def s3_environment(server: LocalS3) -> dict[str, str]:
    """The connection ``column_sums_s3`` to ``server``, for this process and Airflow's."""
    return server.environment(S3_CONN_ID)


def configure_demo_sums(
    environ: MutableMapping[str, str] = os.environ, *, root: Path | None = None, force: bool = False
) -> str:
    """Point the Variable ``csv_column_sums`` at the demo root, the demo's S3 connection and the
    local warehouse, unless the user set it already (``force``: whatever they set).

    Returns the Variable's value in effect.
    """
    if environ.get(VARIABLE_ENV, "").strip() and not force:
        log.info("%s is set: csv_column_sums reads where it says", VARIABLE_ENV)
        return environ[VARIABLE_ENV]
    settings = {
        "local_root": str(root or demo_root()),
        "aws_conn_id": S3_CONN_ID,
        "connection": DEFAULT_CONN_ID,
    }
    environ[VARIABLE_ENV] = json.dumps(settings)
    log.info(
        "csv_column_sums reads local files under %s and s3:// through %s", settings["local_root"], S3_CONN_ID
    )
    return environ[VARIABLE_ENV]


def curl_session(base_url: str, username: str, locations: list[str], task_id: str = "<task_id>") -> list[str]:
    """The shell lines that do what the demo's client does: log in, submit, count, read a result.

    The password is a placeholder, and the token stays in a shell variable: nothing printed is a secret.
    """
    api = f"{base_url}{API_PREFIX}"
    login = json.dumps({"username": username, "password": "<password>"})
    lines = [
        f"TOKEN=$(curl -s -X POST {base_url}/auth/token -H 'Content-Type: application/json' "
        f"-d {shlex.quote(login)} | jq -r .access_token)",
    ]
    for location in locations:
        body = json.dumps({"location": location})
        lines.append(
            f'curl -s -X POST {api}/tasks -H "Authorization: Bearer $TOKEN" '
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )
    lines += [
        f'curl -s {api}/in-progress -H "Authorization: Bearer $TOKEN"',
        f'curl -s {api}/tasks/{task_id} -H "Authorization: Bearer $TOKEN"',
        f'curl -s "{api}/tasks?limit=10" -H "Authorization: Bearer $TOKEN"',
    ]
    return lines


def docs_url(base_url: str) -> str:
    """Where the API's OpenAPI page is (FastAPI's, under the plugin's mount)."""
    return f"{base_url}{API_PREFIX}/docs"
