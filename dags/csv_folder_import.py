"""
### CSV folder import: a folder or bucket of CSV files → one warehouse table, every line accounted for

Imports a drop of CSV files (a local folder, or an S3 prefix through Airflow's object storage)
into one PostgreSQL table: it reads every file's dialect and types, creates or widens the table,
imports big files in parallel line-aligned chunks, and publishes the drop in one transaction.
Every data line is either imported (carrying its file and line) or kept as a reject with its
reason; nothing is dropped silently.

| task | what it does | writes |
|---|---|---|
| `migrate_schema` | checks that failure alerts can reach someone, then creates or upgrades the pipeline's ledger in the destination database | `csv_import.*` |
| `discover_files` | lists the files matching the pattern (and the CSV members of `.zip` archives), with size and fingerprint; files already imported unchanged are skipped | the run's file list |
| `infer_schema` | samples every file: its dialect (delimiter, quote, encoding, header) and each column's type, widened across files (integer → bigint → numeric → text; booleans, dates, timestamps) | the run's columns |
| `prepare_table` | creates the table, or adds the new columns (never drops or retypes one), and the run's staging table | the table's definition |
| `plan_chunks` | splits big files into line-aligned chunks where that is safe, and says why where it is not | the run's plan |
| `import_chunk` | one mapped task per chunk, a bounded number at once: reads its byte range as a stream, checks every line, COPYs the rows into staging, keeps the rejects | staging, `csv_import.rejects` |
| `publish` | checks every file's account (rows + rejects = lines), the rejected share, then moves the drop into the table in one transaction, `ANALYZE`s it, and emits an asset event with files, rows, bytes and rejects | the table, `csv_import.files` |
| `mark_run_failed` | runs only when another task failed, and fails, so that the run shows failed | nothing |

**When it runs.** Quarterly (06:00 UTC on the 1st of January, April, July and October), reading
the drop the Variable `csv_folder_import` points at, and whenever triggered from the form.

**Params** (empty: the Variable's value, then the default). `source`: `s3://bucket/prefix` or
an absolute folder path. `pattern`: a glob relative to it, `**` for subfolders (default
`**/*.csv`; `.zip` archives it matches are read member by member). `table`: `schema.table`.
`connection`: the destination's Postgres connection (default `warehouse_db`).
`storage_connection`: the AWS connection for `s3://` sources. `mode`: `append` imports the
files not imported yet, and a file whose content changed replaces exactly its own rows;
`replace` makes the table exactly this drop. `delimiter`, `quotechar`, `encoding`, `header`:
detected per file unless given; `escapechar`: for files that escape quotes instead of doubling
them (never detected). `column_types`: overrides, e.g. `{"postcode": "text"}`.
`max_rejected_share`: the run fails, publishing nothing, when more of the lines are rejected.

**Reruns are safe.** A rerun imports nothing twice: the file ledger (`csv_import.files`: path,
size, fingerprint) skips what is already in, and two runs at once never publish a file twice.
A failed run leaves the table as it was: nothing is visible before `publish` commits.

**Rejected lines** sit in `csv_import.rejects` (run, file, line, column, reason, the line's text):
`wrong_field_count`, `type_mismatch`, `invalid_encoding`, `unterminated_quote`, `empty_file`,
`header_mismatch`, `unreadable_file`. Each imported row carries `_source_file_id` (the ledger's
id of its file) and `_source_line`.

**Downstream DAGs** schedule on the table's asset, `postgres://<connection>/<database>/<schema>/<table>`
(named `csv_import.<schema>.<table>`), whose events carry the run's files, rows, bytes and rejects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, TriggerRule, chain, dag, task

from include.common.dag_defaults import default_args
from include.common.params import optional_text
from include.common.run_state import mark_run_failed
from include.csv_import.assets import IMPORTS
from include.csv_import.spec import ImportSpec

if TYPE_CHECKING:
    from airflow.sdk import TaskInstance
    from airflow.sdk.types import DagRunProtocol, OutletEventAccessorsProtocol

# How many chunks import at once across all runs of this DAG: each holds one database connection
# and one core. Size it to the workers' slots and the database's max_connections.
MAX_PARALLEL_IMPORTS = 4


@dag(
    schedule=CronTriggerTimetable("0 6 1 1,4,7,10 *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # One drop at a time is the normal case; a second run waits rather than racing the first
    # for the same files (it would import nothing twice, but waste the work).
    max_active_runs=1,
    default_args=default_args(owner="data-platform"),
    tags=["imports", "quarterly"],
    description="A folder or bucket of CSV files → one warehouse table; every line imported or rejected.",
    doc_md=__doc__,
    params={
        "source": optional_text(
            "Source", "s3://bucket/prefix, or an absolute folder path. Empty: the Variable csv_folder_import."
        ),
        "pattern": optional_text(
            "Pattern", "Glob relative to the source; ** for subfolders. Empty: **/*.csv."
        ),
        "table": optional_text("Destination table", "schema.table, lowercase. Empty: the Variable's."),
        "connection": optional_text("Database connection", "Postgres connection id. Empty: warehouse_db."),
        "storage_connection": optional_text(
            "Storage connection", "AWS connection id for s3:// sources. Empty: the Variable's, or none."
        ),
        "mode": Param(
            None,
            type=["null", "string"],
            enum=[None, "append", "replace"],
            values_display={
                "null": "As configured (append if unset)",
                "append": "append: import the files not imported yet",
                "replace": "replace: the table becomes exactly this drop",
            },
            title="Mode",
            description="append skips files already imported; a changed file replaces its own rows.",
        ),
        "delimiter": optional_text("Delimiter", "One character, \\t for a tab. Empty: detected per file."),
        "quotechar": optional_text("Quote character", "Empty: detected per file."),
        "escapechar": optional_text(
            "Escape character", 'For files that escape quotes (\\") instead of doubling them. Never detected.'
        ),
        "encoding": optional_text("Encoding", "e.g. utf-8, cp1252. Empty: detected per file."),
        "header": Param(
            None,
            type=["null", "boolean"],
            title="First line is a header",
            description="Empty: detected per file.",
        ),
        "column_types": Param(
            None,
            type=["null", "object"],
            title="Column types",
            description='Overrides of inferred types, by column: {"postcode": "text", "floor_area": "numeric"}.',
        ),
        "max_rejected_share": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            title="Max rejected share",
            description="The run fails, publishing nothing, above this share of rejected lines. Empty: 0.01.",
        ),
    },
)
def csv_folder_import() -> None:
    # As in learning_platform_etl: TaskFlow injects params, dag_run and ti; ImportSpec reads them
    # once per task; task bodies import the pipeline's modules when they run, keeping parsing light.
    @task(multiple_outputs=False)
    def migrate_schema(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.csv_import import tasks

        return tasks.migrate(ImportSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False)
    def discover_files(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.csv_import import tasks

        return tasks.discover(ImportSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False)
    def infer_schema(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.csv_import import tasks

        return tasks.infer(ImportSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(multiple_outputs=False)
    def prepare_table(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.csv_import import tasks

        return tasks.prepare(ImportSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    # Returns the chunks' keys and labels (a few bytes each): the plan itself is in the ledger.
    @task
    def plan_chunks(params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> list[dict]:
        from include.csv_import import tasks

        return tasks.plan(ImportSpec.from_airflow(params, dag_run, task_id=ti.task_id))

    @task(
        multiple_outputs=False,
        max_active_tis_per_dag=MAX_PARALLEL_IMPORTS,
        map_index_template="{{ task.op_kwargs['chunk']['label'] }}",
    )
    def import_chunk(chunk: dict, params: dict[str, Any], dag_run: DagRunProtocol, ti: TaskInstance) -> dict:
        from include.csv_import import tasks

        spec = ImportSpec.from_airflow(params, dag_run, task_id=ti.task_id)
        return tasks.import_chunk(spec, chunk["file_id"], chunk["number"])

    # none_failed: with nothing to import, import_chunk maps to no task and is skipped; publish
    # still runs, to record the run (and to leave the table as it is).
    @task(multiple_outputs=False, outlets=[IMPORTS], trigger_rule=TriggerRule.NONE_FAILED)
    def publish(
        params: dict[str, Any],
        dag_run: DagRunProtocol,
        ti: TaskInstance,
        outlet_events: OutletEventAccessorsProtocol,
    ) -> dict:
        from include.csv_import import tasks

        return tasks.publish(ImportSpec.from_airflow(params, dag_run, task_id=ti.task_id), outlet_events)

    plan = plan_chunks()
    pipeline = [migrate_schema(), discover_files(), infer_schema(), prepare_table(), plan]
    chain(*pipeline)
    imported = import_chunk.expand(chunk=plan)
    published = publish()
    imported >> published
    [*pipeline, imported, published] >> mark_run_failed()


csv_folder_import()
