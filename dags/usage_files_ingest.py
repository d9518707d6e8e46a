"""
### Usage files ingest: usage files in a folder → per-consumer totals in PostgreSQL, exactly once

A service writes files of lines `<consumer id> <amount>` into a folder (10 MB to several GB
each). Every five minutes this DAG takes the files its writers have finished, sums the amounts
per consumer and **adds** the sums to the totals in the store (schema `usage_ingest` in the
connection's database), then moves each file out of the folder. Every line is either added or
quarantined with its reason; nothing is added twice, whatever crashes or retries.

| task | what it does | writes |
|---|---|---|
| `wait_for_files` | looks for a finished file; if none, waits in the triggerer (no worker slot) up to 4½ minutes, then the run ends skipped | nothing |
| `migrate_schema` | checks that failure alerts can reach someone, creates or upgrades the store | `usage_ingest.*` |
| `claim_files` | reads each finished file once (sha256, lines, line-aligned ranges) and claims it for this run; a file already added is a duplicate: moved away and recorded, never added again | `usage_ingest.files`, `ranges`, `duplicate_drops` |
| `process_range` | one mapped task per range (big files are split, so several workers share one), at most 4 at once: parses the range in batches and commits each batch's sums with its checkpoint | `consumer_totals`, `usage_hourly`, `quarantine`, `batches` |
| `finish_files` | checks each file's account (applied + quarantined = lines), marks it done, moves it to the archive (or renames it `.done`), logs the run's summary and emits an event on the asset `usage_ingest.consumer_totals` | `usage_ingest.files` |
| `mark_run_failed` | runs only when another task failed, and fails, so that the run shows failed | nothing |

**Finished files.** A file matching `pattern` whose last write is at least `settle_seconds` old.
Names starting with `.` or ending `.part`, `.tmp`, `.done` never match: a writer should write
`.<name>.part` and rename it when complete. A file that changes after it was claimed fails its
range task, naming the file: raise `settle_seconds` above the writer's longest pause.

**Exactly once.** Each batch's sums and its range's checkpoint commit in one transaction, so a
retry resumes from the last committed batch and a second process on the same range skips what
the first committed. A file is `(name, sha256)`: the same content dropped again is a duplicate
(`usage_ingest.duplicate_drops`); the same name with other content is a new file.

**The period.** A file's usage is booked to the UTC hour it arrived (its mtime when claimed) in
`usage_ingest.usage_hourly`, stored with the file so a rerun books the same hour.

**Params** (empty: the Variable `usage_files_ingest`'s value, then the default). `incoming`: the
folder (absolute). `archive` (default: `archive/` beside incoming). `pattern` (`*.usage`; `**`
for subfolders). `after_processing`: `archive` or `mark`. `settle_seconds` (30). `range_mb`
(256): files above it are split. `batch_mb` (256) and `max_batch_consumers` (200,000): a batch
commits at whichever comes first. `max_files_per_run` (100). `connection` (`warehouse_db`).

**Several workers.** Runs overlap safely (at most 2 at once): claims live in the store, so two
runs take different files, and a claim whose run died is taken over after its 30-minute lease.
The folder must be the same path on every worker (a network mount in production).

**Why a sensor and a five-minute schedule, not an asset watcher.** Files must be claimed in the
store anyway, and a watcher's trigger keeps no state across triggerer restarts and would fire
once per file. The schedule bounds the latency, the deferred sensor holds no worker slot while
waiting, and overlapping runs are safe because claims are in the store.

**Downstream DAGs** schedule on the asset `usage_ingest.consumer_totals`; its events carry the
run's files, lines applied and quarantined, duplicates and the connection and database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, TriggerRule, chain, dag, task

from include.common.dag_defaults import default_args
from include.common.params import optional_integer, optional_text
from include.common.run_state import mark_run_failed
from include.usage_ingest.assets import CONSUMER_TOTALS, TOTALS_UPDATES
from include.usage_ingest.settings import IngestSpec
from include.usage_ingest.trigger import WaitForFinishedFiles

if TYPE_CHECKING:
    from airflow.sdk import TaskInstance
    from airflow.sdk.types import DagRunProtocol, OutletEventAccessorsProtocol

# How many ranges are processed at once across all runs: each holds one database connection and
# one core, and concurrent batches take turns on the totals' rows they share.
MAX_PARALLEL_RANGES = 4
# A run waits for a file for less than the schedule's five minutes, so runs do not pile up.
WAIT_SECONDS = 270
POLL_SECONDS = 10


@dag(
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two runs at once claim different files: a long run on a big file does not hold up the next drop.
    max_active_runs=2,
    default_args=default_args(owner="data-platform"),
    tags=["usage", "imports"],
    description="Usage files in a folder → per-consumer totals in PostgreSQL, each line added exactly once.",
    doc_md=__doc__,
    params={
        "incoming": optional_text(
            "Incoming folder",
            "Absolute path of the folder the writers fill. Empty: the Variable usage_files_ingest.",
        ),
        "archive": optional_text(
            "Archive folder", "Absolute path; outside incoming. Empty: archive/ beside incoming."
        ),
        "pattern": optional_text("Pattern", "Glob relative to incoming; ** for subfolders. Empty: *.usage."),
        "after_processing": Param(
            None,
            type=["null", "string"],
            enum=[None, "archive", "mark"],
            values_display={
                "null": "As configured (archive if unset)",
                "archive": "archive: move into the archive folder",
                "mark": "mark: rename in place to <name>.done",
            },
            title="After processing",
            description="Where a processed file goes; it is never deleted.",
        ),
        "settle_seconds": optional_integer(
            "Settle seconds", "A file is finished this long after its last write. Empty: 30.", minimum=0
        ),
        "range_mb": optional_integer("Range MB", "Files above this are split across tasks. Empty: 256."),
        "batch_mb": optional_integer("Batch MB", "A batch commits after this many MiB. Empty: 256."),
        "max_batch_consumers": optional_integer(
            "Max consumers per batch", "A batch commits before holding more consumers. Empty: 200000."
        ),
        "max_files_per_run": optional_integer(
            "Max files per run", "The rest waits for the next run. Empty: 100."
        ),
        "connection": optional_text(
            "Database connection", "Postgres connection id of the store. Empty: warehouse_db."
        ),
    },
)
def usage_files_ingest() -> None:
    # As in csv_folder_import: TaskFlow injects params, dag_run and ti; IngestSpec reads them once
    # per task; task bodies import the pipeline's modules when they run, keeping parsing light.
    wait_for_files = WaitForFinishedFiles(
        task_id="wait_for_files",
        poll_seconds=POLL_SECONDS,
        timeout=WAIT_SECONDS,
        soft_fail=True,
    )

    @task(multiple_outputs=False)
    def migrate_schema(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.usage_ingest import tasks

        return tasks.migrate(IngestSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    # Returns the ranges' keys and labels (a few bytes each): the plan itself is in the store.
    @task
    def claim_files(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> list[dict]:
        from include.usage_ingest import tasks

        return tasks.claim(IngestSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(
        multiple_outputs=False,
        max_active_tis_per_dag=MAX_PARALLEL_RANGES,
        map_index_template="{{ task.op_kwargs['byte_range']['label'] }}",
    )
    def process_range(
        byte_range: dict, params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance
    ) -> dict:
        from include.usage_ingest import tasks

        spec = IngestSpec.from_airflow(params, dag_run, task_id=ti.task_id)
        return tasks.process(spec, byte_range["file_id"], byte_range["range_no"])

    # Downstream of claim_files too: a run whose ranges were all committed before (a rerun, a
    # claim taken over) maps no range, and its files must still be marked done. None succeeded
    # (the sensor skipped): nothing to finish.
    # Its summary reads the totals (inlet): declared, the asset is registered when the DAG is parsed,
    # not by the first events through the alias, which two runs at once would both try to create.
    @task(
        multiple_outputs=False,
        inlets=[CONSUMER_TOTALS],
        outlets=[TOTALS_UPDATES],
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )
    def finish_files(
        params: dict[str, Any],
        dag_run: DagRunProtocol,
        ti: TaskInstance,
        outlet_events: OutletEventAccessorsProtocol,
    ) -> dict:
        from include.usage_ingest import tasks

        return tasks.finish(IngestSpec.from_airflow(params, dag_run, task_id=ti.task_id), outlet_events)

    migrated, claimed = migrate_schema(), claim_files()
    chain(wait_for_files, migrated, claimed)
    processed = process_range.expand(byte_range=claimed)
    finished = finish_files()
    [claimed, processed] >> finished
    [wait_for_files, migrated, claimed, processed, finished] >> mark_run_failed()


usage_files_ingest()
