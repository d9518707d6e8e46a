"""``csv_column_sums``' REST API: a FastAPI app that Airflow's API server mounts at ``/column-sums``.

A request is a DAG run: ``POST /tasks`` creates one (its run id is the task id) in the API
server's own metadata session, as the core ``POST /api/v2/dags/{dag_id}/dagRuns`` route does, and
a worker sums the file. ``GET /tasks/{task_id}`` reads the run's state from the metadata DB and,
once the run is done, its stored result from the warehouse (``column_sums.results``). Nothing
here calls Airflow over HTTP, and the API server holds no state of its own: more replicas serve
more clients.

Who may call: Airflow does not authenticate a plugin's app, so this one asks for the caller
Airflow's own REST API would accept (its JWT, as a bearer header or the UI's cookie) on every
route, and for Airflow's permission on the DAG's runs: POST to submit, GET to read. The
dependencies read the process-wide auth manager: the core API's ``AuthManagerDep``,
``DagBagDep`` and ``Readable*FilterDep`` read ``request.app.state``, which in a mounted app is
this app's, not the API server's, and would fail.

The answer's state is the run's, refined by the stored result:

============================  =========================================================
run                           answer
============================  =========================================================
queued, running               the same, no result yet
success, result is the sums   ``success`` with ``result``
success, result is a problem  ``failed`` with ``error`` = the file's ``{code, message}``
success, no result stored     ``failed`` with ``error.code`` = ``internal_error``
failed                        ``failed`` with ``error.code`` = ``internal_error``
============================  =========================================================
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any

import psycopg
from airflow._shared.timezones import timezone
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.dagbag import create_dag_bag
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.common.exceptions import init_error_handlers
from airflow.api_fastapi.core_api.security import GetUserDep, get_user, requires_access_dag
from airflow.exceptions import ParamValidationError
from airflow.models.dag import DagModel
from airflow.models.dagbag import DBDagBag
from airflow.models.dagrun import DagRun
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from fastapi import Depends, FastAPI, HTTPException, Query, status
from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from include.column_sums import results
from include.column_sums.problems import CsvProblem
from include.column_sums.results import Outcome, StoredResult
from include.column_sums.settings import DAG_ID, SETTINGS_VARIABLE, configured_results_conn_id
from include.column_sums.storage import parse_location
from include.common.failures import ConfigurationError
from include.common.postgres import WarehouseUnavailable, connect, conninfo_from_airflow

log = logging.getLogger(__name__)

URL_PREFIX = "/column-sums"  # not under /api/v2, /ui, /execution, /auth or /pluginsv2: refused there
# A warehouse that is down must answer 503 within a request's patience, not hang it.
WAREHOUSE_CONNECT_TIMEOUT_S = 3
INTERNAL_ERROR = "internal_error"

# The DAG is named here, not taken from the path: the routes have no {dag_id}, and without it
# an auth manager with per-DAG permissions (FAB) would check "any DAG" instead of this one.
may_submit = Depends(requires_access_dag("POST", DagAccessEntity.RUN, DAG_ID))
may_read = Depends(requires_access_dag("GET", DagAccessEntity.RUN, DAG_ID))


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


IN_PROGRESS = (DagRunState.QUEUED, DagRunState.RUNNING)

# --- bodies and answers ------------------------------------------------------------------------


class SubmitBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"location": "s3://sums/data.csv"}, {"location": "drop/data.csv"}]},
    )

    location: str = Field(
        min_length=1,
        max_length=1024,  # the DAG's Param says the same
        description="s3://bucket/path/file.csv, or a path relative to the deployment's local root.",
    )

    @field_validator("location")
    @classmethod
    def _has_the_form_of_a_location(cls, location: str) -> str:
        # Only the form: whether the file exists and may be read is the task's to find.
        try:
            parse_location(location)
        except CsvProblem as problem:
            raise ValueError(str(problem)) from None
        return location


class Submitted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "0f8e5c1d2b3a4f6e8d7c6b5a49382716",
                    "state": "queued",
                    "location": "drop/data.csv",
                }
            ]
        }
    )

    task_id: str
    state: TaskStatus
    location: str


class Cell(BaseModel):
    row: int = Field(description="1-based data record, the header not counted")
    line: int = Field(description="1-based line of the file where the record starts")
    value: str


class ColumnResult(BaseModel):
    index: int = Field(description="1-based position in the header: 10, 20, 30 …")
    name: str = Field(description="the column's name in the header")
    sum: str = Field(description="exact decimal sum, as text so that no digit is lost")
    numeric_cells: int
    blank_cells: int
    non_numeric_cells: int
    non_numeric_samples: list[Cell] = Field(description="the first few non-numeric cells")


class RaggedRow(BaseModel):
    row: int
    line: int
    fields: int


class SumsResult(BaseModel):
    rows: int = Field(description="data records, the header and blank lines not counted")
    header_columns: int
    bytes_read: int
    columns: list[ColumnResult] = Field(description="the 10th, 20th, 30th … columns, in order")
    ragged_rows: int = Field(description="records whose number of fields differs from the header's")
    ragged_samples: list[RaggedRow]


class TaskError(BaseModel):
    code: str = Field(
        description="the file's problem (not_found, too_few_columns, no_header, …) or internal_error"
    )
    message: str = Field(description="what the file's owner (or, for internal_error, an operator) must do")


class TaskState(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "0f8e5c1d2b3a4f6e8d7c6b5a49382716",
                    "state": "success",
                    "location": "drop/data.csv",
                    "submitted_by": "alice",
                    "queued_at": "2026-12-06T17:00:00Z",
                    "started_at": "2026-12-06T17:00:01Z",
                    "ended_at": "2026-12-06T17:00:04Z",
                    "result": {
                        "rows": 2,
                        "header_columns": 20,
                        "bytes_read": 180,
                        "columns": [
                            {
                                "index": 10,
                                "name": "c10",
                                "sum": "12.50",
                                "numeric_cells": 1,
                                "blank_cells": 0,
                                "non_numeric_cells": 1,
                                "non_numeric_samples": [{"row": 2, "line": 3, "value": "n/a"}],
                            },
                        ],
                        "ragged_rows": 0,
                        "ragged_samples": [],
                    },
                    "error": None,
                },
                {
                    "task_id": "7a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    "state": "failed",
                    "location": "drop/narrow.csv",
                    "submitted_by": "alice",
                    "queued_at": "2026-12-06T17:00:00Z",
                    "started_at": "2026-12-06T17:00:01Z",
                    "ended_at": "2026-12-06T17:00:02Z",
                    "result": None,
                    "error": {"code": "too_few_columns", "message": "the header has 4 columns: …"},
                },
            ]
        }
    )

    task_id: str
    state: TaskStatus
    location: str | None
    submitted_by: str | None
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    result: SumsResult | None = Field(default=None, description="the sums, when state is success")
    error: TaskError | None = Field(default=None, description="why, when state is failed")


class TaskList(BaseModel):
    tasks: list[TaskState] = Field(description="newest first; results left out (GET the task for them)")
    total_entries: int = Field(description="all of the caller's tasks, however many are listed")


class InProgress(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"queued": 3, "running": 2, "in_progress": 5}]})

    queued: int
    running: int
    in_progress: int


# --- the app --------------------------------------------------------------------------------------

# get_user app-wide: a route added later without may_* is still never anonymous.
app = FastAPI(
    title="CSV column sums",
    version="1",
    description=(
        "Sums the 10th, 20th, 30th … columns of a CSV file on S3 or the workers' local disk; each "
        "request is a run of the Airflow DAG `csv_column_sums`. Log in as for Airflow's REST API: "
        '`POST /auth/token` with `{"username", "password"}`, then send '
        "`Authorization: Bearer <access_token>`. 401: no or an expired token; 403: an invalid "
        "token, or a user who may not trigger (POST) or read (GET) the DAG's runs."
    ),
    dependencies=[Depends(get_user)],
)
# The API server's handlers do not reach into a mounted app: database errors get its JSON shapes.
init_error_handlers(app)


@cache
def dag_bag() -> DBDagBag:
    """The serialized DAGs; the API server's own bag is in the root app's state, not this app's."""
    return create_dag_bag()


@app.post(
    "/tasks",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[may_submit],
    responses={503: {"description": f"{DAG_ID} is not loaded or is paused"}},
)
def submit(body: SubmitBody, user: GetUserDep, session: SessionDep) -> Submitted:
    """Ask for a file's sums: a run of the DAG, committed before this answers."""
    dag_model = session.scalar(select(DagModel).where(DagModel.dag_id == DAG_ID, ~DagModel.is_stale))
    if dag_model is None or dag_model.has_import_errors:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the DAG {DAG_ID} is not loaded: an operator must fix its import errors in Airflow",
        )
    if dag_model.is_paused:
        # A paused DAG would keep every request queued forever.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the DAG {DAG_ID} is paused: an operator must unpause it"
        )
    dag = dag_bag().get_latest_version_of_dag(DAG_ID, session=session)
    if dag is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the DAG {DAG_ID} is not serialized yet: try again shortly"
        )
    task_id = uuid.uuid4().hex  # unguessable, and fits [scheduler] allowed_run_id_pattern
    try:
        dag.create_dagrun(
            run_id=task_id,
            logical_date=None,  # no (dag_id, logical_date) clash however many requests come at once
            run_after=timezone.utcnow(),
            conf={"location": body.location},  # shown in Airflow's UI: never anything secret
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=user.get_name(),
            state=DagRunState.QUEUED,
            session=session,
        )
    except ParamValidationError as error:  # the DAG's params refused what the body allowed
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    log.info("%s submitted task %s", user.get_name(), task_id)
    # SessionDep commits when this returns, before the 202 is sent.
    return Submitted(task_id=task_id, state=TaskStatus.QUEUED, location=body.location)


@app.get("/in-progress", dependencies=[may_read])
def in_progress(
    user: GetUserDep,
    session: SessionDep,
    mine: Annotated[bool, Query(description="count only the caller's tasks")] = False,
) -> InProgress:
    """How many tasks are queued and running (everyone's, or the caller's)."""
    query = select(DagRun.state, func.count()).where(DagRun.dag_id == DAG_ID, DagRun.state.in_(IN_PROGRESS))
    if mine:
        query = query.where(DagRun.triggering_user_name == user.get_name())
    counts = dict(session.execute(query.group_by(DagRun.state)).tuples().all())
    queued, running = counts.get(DagRunState.QUEUED.value, 0), counts.get(DagRunState.RUNNING.value, 0)
    return InProgress(queued=queued, running=running, in_progress=queued + running)


_COLUMNS = (
    DagRun.run_id,
    DagRun.state,
    DagRun.conf,
    DagRun.triggering_user_name,
    DagRun.queued_at,
    DagRun.start_date,
    DagRun.end_date,
)


@app.get(
    "/tasks",
    dependencies=[may_read],
    responses={503: {"description": "the warehouse holding the results cannot be reached"}},
)
def my_tasks(
    user: GetUserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many, newest first")] = 100,
) -> TaskList:
    """The caller's own tasks, newest first, with their states but not their results."""
    mine = (DagRun.dag_id == DAG_ID, DagRun.triggering_user_name == user.get_name())
    rows = session.execute(select(*_COLUMNS).where(*mine).order_by(DagRun.id.desc()).limit(limit)).all()
    total = session.scalar(select(func.count()).select_from(DagRun).where(*mine)) or 0
    finished = [row.run_id for row in rows if row.state == DagRunState.SUCCESS]
    stored: Mapping[str, StoredResult] = {}
    if finished:
        with results_connection() as conn:
            stored = results.load_results(conn, finished)
    tasks = [task_state(row, stored.get(row.run_id), with_result=False) for row in rows]
    return TaskList(tasks=tasks, total_entries=total)


@app.get(
    "/tasks/{task_id}",
    dependencies=[may_read],
    responses={
        404: {"description": "no such task"},
        503: {"description": "the warehouse holding the results cannot be reached"},
    },
)
def task(task_id: str, session: SessionDep) -> TaskState:
    """A task's state and, once it succeeded, its sums (or, once it failed, why)."""
    # No pattern on task_id: any unknown id, well-formed or not, is simply not found.
    row = session.execute(
        select(*_COLUMNS).where(DagRun.dag_id == DAG_ID, DagRun.run_id == task_id)
    ).one_or_none()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no task {task_id!r}: submit one with POST /tasks")
    stored = None
    if row.state == DagRunState.SUCCESS:
        with results_connection() as conn:
            stored = results.load_result(conn, task_id)
    return task_state(row, stored)


def task_state(row: Any, stored: StoredResult | None, *, with_result: bool = True) -> TaskState:
    """The answer for the run ``row`` (``_COLUMNS``) and its stored result, as the table above says."""
    run_id, run_state, conf, user, queued_at, start_date, end_date = row
    result = error = None
    if run_state in IN_PROGRESS:
        state = TaskStatus(run_state)
    elif run_state == DagRunState.SUCCESS and stored is not None and stored.outcome is Outcome.SUMS:
        state = TaskStatus.SUCCESS
        result = SumsResult.model_validate(stored.result) if with_result else None
    elif run_state == DagRunState.SUCCESS and stored is not None:
        state, error = TaskStatus.FAILED, TaskError.model_validate(stored.result)
    elif run_state == DagRunState.SUCCESS:
        state, error = TaskStatus.FAILED, _internal_error(run_id, "its result is missing")
    else:
        state, error = TaskStatus.FAILED, _internal_error(run_id, "it failed")
    return TaskState(
        task_id=run_id,
        state=state,
        location=(conf or {}).get("location"),
        submitted_by=user,
        queued_at=queued_at,
        started_at=start_date,
        ended_at=end_date,
        result=result,
        error=error,
    )


def _internal_error(run_id: str, what: str) -> TaskError:
    return TaskError(
        code=INTERNAL_ERROR,
        message=(
            f"the service could not compute this task: {what} in the {DAG_ID} run {run_id}, an operator "
            "can see it in Airflow. Submit the file again later, or ask an operator."
        ),
    )


@contextmanager
def results_connection() -> Iterator[psycopg.Connection]:
    """A short-lived connection to the results' warehouse; 503 when it is unreachable or unset."""
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowNotFoundException

    # The API server is a "server" process: the SDK reads Variables and connections from the
    # environment, secrets backends and the metadata DB, as a task does through the API.
    try:
        conn_id = configured_results_conn_id(Variable.get(SETTINGS_VARIABLE, default=None))
        conninfo = make_conninfo(
            conninfo_from_airflow(conn_id), connect_timeout=str(WAREHOUSE_CONNECT_TIMEOUT_S)
        )
    except ConfigurationError as error:
        raise _unavailable(str(error)) from None
    except AirflowNotFoundException:
        raise _unavailable(
            f"the Airflow connection '{conn_id}' of the results is not defined: an operator must define "
            f"it, or name another as 'connection' in the Airflow Variable '{SETTINGS_VARIABLE}'"
        ) from None
    try:
        with connect(conninfo, conn_id=conn_id, application_name=f"{DAG_ID}.api") as conn:
            yield conn
    except WarehouseUnavailable as error:
        raise _unavailable(str(error)) from None
    except psycopg.OperationalError as error:  # the connection dropped mid-query
        raise _unavailable(f"the results' warehouse failed: {' '.join(str(error).split())}") from None


def _unavailable(reason: str) -> HTTPException:
    log.warning("column sums results unavailable: %s", reason)
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"results cannot be read now: {reason}")
