"""Waiting for a finished usage file without holding a worker slot.

``WaitForFinishedFiles`` looks once, in the worker; with nothing finished yet it defers to
``FinishedFilesTrigger``, which polls the folder in the triggerer (one asyncio coroutine among
many, the scan in a thread) and wakes the task when a file is finished. Each run waits at most
``timeout``; with ``soft_fail`` a run that saw nothing arrive ends skipped, and the next
scheduled run waits again. The trigger keeps no state: a triggerer restart re-creates it from
its serialized arguments and it scans afresh, which is all it ever does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.usage_ingest.finished import find_finished
from include.usage_ingest.settings import IngestSpec

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_POLL_SECONDS = 10.0


class FinishedFilesTrigger(BaseTrigger):
    """Fires once, with the number of finished files, when ``incoming`` holds at least one."""

    def __init__(self, incoming: str, pattern: str, settle_seconds: float, poll_seconds: float) -> None:
        super().__init__()
        self.incoming = incoming
        self.pattern = pattern
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "incoming": self.incoming,
                "pattern": self.pattern,
                "settle_seconds": self.settle_seconds,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            # The scan touches the (network) file system: in a thread, so other triggers keep running.
            found = await asyncio.to_thread(
                find_finished,
                Path(self.incoming),
                self.pattern,
                settle_seconds=self.settle_seconds,
                now=datetime.now(UTC),
            )
            if found:
                yield TriggerEvent({"finished": len(found)})
                return
            await asyncio.sleep(self.poll_seconds)


class WaitForFinishedFiles(BaseSensorOperator):
    """Succeeds when the run's incoming folder holds a finished file; waits deferred otherwise.

    The folder, pattern and settle time are the run's (params, then the Variable), read when the
    task runs, so the sensor looks where the rest of the run will.
    """

    def __init__(self, *, poll_seconds: float = DEFAULT_POLL_SECONDS, **kwargs: Any) -> None:
        super().__init__(poke_interval=poll_seconds, **kwargs)
        self.poll_seconds = poll_seconds

    def execute(self, context: Context) -> int:
        spec = self._spec(context)
        found = self._scan(spec)
        if found:
            return found
        self.log.info(
            "nothing finished matching %s in %s yet: waiting in the triggerer", spec.pattern, spec.incoming
        )
        self.defer(
            trigger=FinishedFilesTrigger(
                incoming=str(spec.incoming),
                pattern=spec.pattern,
                settle_seconds=spec.settle_seconds,
                poll_seconds=self.poll_seconds,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> bool:
        return bool(self._scan(self._spec(context)))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> int:
        finished = int((event or {}).get("finished", 0))
        self.log.info("%d finished file(s) waiting", finished)
        return finished

    def _spec(self, context: Context) -> IngestSpec:
        return IngestSpec.from_airflow(context["params"], context["dag_run"], task_id=self.task_id)

    def _scan(self, spec: IngestSpec) -> int:
        found = find_finished(
            spec.incoming, spec.pattern, settle_seconds=spec.settle_seconds, now=datetime.now(UTC)
        )
        if found:
            self.log.info("%d finished file(s) in %s, oldest %s", len(found), spec.incoming, found[0].name)
        return len(found)
