"""The deferrable wait for a finished file: the sensor looks once, the trigger polls in asyncio."""

from __future__ import annotations

import asyncio
import importlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import TaskDeferred

from include.usage_ingest.trigger import FinishedFilesTrigger, WaitForFinishedFiles


def write(path: Path, *, age_s: float) -> None:
    path.write_bytes(b"1 2\n")
    stamp = (datetime.now(UTC) - timedelta(seconds=age_s)).timestamp()
    os.utime(path, (stamp, stamp))


def trigger(incoming: Path) -> FinishedFilesTrigger:
    return FinishedFilesTrigger(
        incoming=str(incoming), pattern="*.usage", settle_seconds=30, poll_seconds=0.01
    )


def test_the_trigger_survives_serialization(tmp_path: Path) -> None:
    path, kwargs = trigger(tmp_path).serialize()
    module, _, name = path.rpartition(".")

    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)

    assert rebuilt.serialize() == (path, kwargs)
    assert kwargs == {
        "incoming": str(tmp_path),
        "pattern": "*.usage",
        "settle_seconds": 30,
        "poll_seconds": 0.01,
    }


def test_the_trigger_fires_once_with_the_count_of_finished_files(tmp_path: Path) -> None:
    write(tmp_path / "a.usage", age_s=60)
    write(tmp_path / "b.usage", age_s=60)
    write(tmp_path / "writing.usage", age_s=0)

    async def events() -> list:
        return [event async for event in trigger(tmp_path).run()]

    [event] = asyncio.run(events())
    assert event.payload == {"finished": 2}


def test_the_trigger_keeps_polling_until_a_file_has_settled(tmp_path: Path) -> None:
    write(tmp_path / "writing.usage", age_s=0)

    async def scenario() -> dict:
        run = trigger(tmp_path).run()
        waiting = asyncio.ensure_future(anext(run))
        # Several polls see only the unsettled file; the event waits for a finished one.
        done, _ = await asyncio.wait({waiting}, timeout=0.2)
        assert not done
        write(tmp_path / "writing.usage", age_s=60)
        return (await waiting).payload

    assert asyncio.run(scenario()) == {"finished": 1}


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("AIRFLOW_VAR_USAGE_FILES_INGEST", "{}")
    return {
        "params": {"incoming": str(tmp_path / "incoming")},
        "dag_run": SimpleNamespace(run_id="manual__1", dag_id="usage_files_ingest"),
    }


def sensor() -> WaitForFinishedFiles:
    return WaitForFinishedFiles(task_id="wait_for_files", timeout=270, poll_seconds=10, soft_fail=True)


def test_the_sensor_succeeds_at_once_when_a_file_is_finished(context: dict, tmp_path: Path) -> None:
    (tmp_path / "incoming").mkdir()
    write(tmp_path / "incoming" / "a.usage", age_s=60)

    assert sensor().execute(context) == 1


def test_the_sensor_defers_to_the_trigger_on_the_run_folder_otherwise(context: dict, tmp_path: Path) -> None:
    (tmp_path / "incoming").mkdir()
    write(tmp_path / "incoming" / "a.usage", age_s=0)

    with pytest.raises(TaskDeferred) as deferred:
        sensor().execute(context)

    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=270)
    assert deferred.value.trigger.serialize()[1] == {
        "incoming": str(tmp_path / "incoming"),
        "pattern": "*.usage",
        "settle_seconds": 30,
        "poll_seconds": 10,
    }
