"""What one run of ``usage_files_ingest`` works on: the folders, the store, the limits.

The trigger form's params say it for a manual run; the scheduled runs (every five minutes) have
the form's empty defaults, so the Variable ``usage_files_ingest`` (JSON, the params' keys) says
once per deployment where the incoming folder is (see ``include.common.settings``). A key in
neither takes the default below. :meth:`IngestSpec.from_airflow` reads both once per task into a
plain, validated value; the task bodies take it as an argument, so tests build one directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.common.failures import ConfigurationError, no_retry_on_permanent_failure
from include.common.settings import params_with_settings, relative_pattern, required_param
from include.usage_ingest.model import BatchLimits

if TYPE_CHECKING:
    from airflow.sdk.types import DagRunProtocol

SETTINGS_VARIABLE = "usage_files_ingest"
DEFAULT_CONN_ID = "warehouse_db"
DEFAULT_PATTERN = "*.usage"
DEFAULT_SETTLE_SECONDS = 30.0
DEFAULT_RANGE_MB = 256
# A batch is one transaction that upserts each of its distinct consumers, a cost paid per batch
# whatever its bytes: with 100,000 consumers, batches of 256 MiB (a whole default range) ingested
# 2 GB 2.5 times as fast as batches of 64 MiB (docs/PERFORMANCE.md). A crash redoes one batch.
DEFAULT_BATCH_MB = 256
DEFAULT_MAX_BATCH_CONSUMERS = 200_000
DEFAULT_MAX_FILES_PER_RUN = 100
# How long a run's claim on a file keeps other runs off it. Only about not doing work twice:
# every batch checks its range's checkpoint, so a run taking over a live claim applies nothing twice.
DEFAULT_LEASE = timedelta(minutes=30)
# Suffixes a finished file never has: a writer's temporary names, and our own "mark" disposal.
TEMPORARY_SUFFIXES = (".part", ".tmp")
MARKED_SUFFIX = ".done"

MIB = 1024 * 1024


class AfterProcessing(StrEnum):
    """Where a processed file goes: never deleted, never left where the pattern matches it."""

    ARCHIVE = "archive"  # moved under the archive folder, keeping its relative name
    MARK = "mark"  # renamed in place to <name>.done


@dataclass(frozen=True, slots=True)
class IngestSpec:
    """One run's ingest: which files, where they go afterwards, the store, the limits."""

    incoming: Path
    archive: Path
    pattern: str
    after_processing: AfterProcessing
    settle_seconds: float
    range_bytes: int
    limits: BatchLimits
    max_files_per_run: int
    # The Postgres connection of the store (schema usage_ingest).
    conn_id: str
    run_id: str
    lease: timedelta = DEFAULT_LEASE
    # The database sessions' application_name, so pg_stat_activity shows which task holds a lock.
    session_name: str = "usage_files_ingest"

    @classmethod
    @no_retry_on_permanent_failure
    def from_airflow(cls, params: Mapping[str, Any], dag_run: DagRunProtocol, *, task_id: str) -> IngestSpec:
        """The spec of a task of ``dag_run``: its params, gaps filled from the settings Variable.

        Fails its task at once (no retries) when the run cannot work as triggered.
        """
        return cls.from_params(
            params_with_settings(params, SETTINGS_VARIABLE),
            run_id=dag_run.run_id,
            session_name=f"{dag_run.dag_id}.{task_id}",
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, run_id: str, session_name: str = "") -> IngestSpec:
        """Validate ``params`` (the form's keys) into a spec; every error names the param to fix."""
        incoming = _folder("incoming", required_param(params, "incoming", SETTINGS_VARIABLE))
        archive = _folder("archive", params.get("archive") or str(incoming.parent / "archive"))
        if archive == incoming or incoming in archive.parents:
            raise ConfigurationError(
                f"archive {archive} is inside incoming {incoming}: the scan would find archived files "
                "again. Set the param 'archive' to a folder outside incoming (default: its sibling archive/)"
            )
        return cls(
            incoming=incoming,
            archive=archive,
            pattern=relative_pattern(params.get("pattern") or DEFAULT_PATTERN, base="incoming folder"),
            after_processing=_after_processing(params.get("after_processing") or AfterProcessing.ARCHIVE),
            settle_seconds=_number(params, "settle_seconds", DEFAULT_SETTLE_SECONDS, minimum=0),
            range_bytes=int(_number(params, "range_mb", DEFAULT_RANGE_MB, minimum=1)) * MIB,
            limits=BatchLimits(
                max_bytes=int(_number(params, "batch_mb", DEFAULT_BATCH_MB, minimum=1)) * MIB,
                max_consumers=int(
                    _number(params, "max_batch_consumers", DEFAULT_MAX_BATCH_CONSUMERS, minimum=1)
                ),
            ),
            max_files_per_run=int(_number(params, "max_files_per_run", DEFAULT_MAX_FILES_PER_RUN, minimum=1)),
            conn_id=params.get("connection") or DEFAULT_CONN_ID,
            run_id=run_id,
            session_name=session_name or "usage_files_ingest",
        )


def _folder(key: str, value: Any) -> Path:
    if not (isinstance(value, str) and value.strip().startswith("/")):
        raise ConfigurationError(
            f"{key} must be an absolute folder path, not {value!r}: a relative path would depend on "
            "the worker's working directory"
        )
    return Path(value.strip()).resolve()


def _after_processing(value: str) -> AfterProcessing:
    try:
        return AfterProcessing(value)
    except ValueError:
        raise ConfigurationError(f"after_processing must be 'archive' or 'mark', not {value!r}") from None


def _number(params: Mapping[str, Any], key: str, default: float, *, minimum: float) -> float:
    value = params.get(key, default)
    if value in (None, ""):
        value = default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a number, not {value!r}") from None
    if number < minimum:
        raise ConfigurationError(f"{key} must be at least {minimum:g}, not {number:g}")
    return number
