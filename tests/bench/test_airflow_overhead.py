"""`make bench`'s measurement of Airflow's own per-task start-up: a failure is reported, not raised.

The measurement itself (a local Airflow running the flagship DAG) takes minutes and measures
speed, which is `make bench`'s business, not the suite's. What the suite keeps is the promise
that a failure to measure leaves the bench with the figures it has.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bench import airflow_overhead
from devservices.postgres import LocalPostgres, free_port
from devservices.simulator.process import SimulatorProcess


def test_a_failure_is_reported_as_not_measured(tmp_path: Path) -> None:
    """PostgreSQL is down: the figures say why they are missing, and nothing is raised."""
    server = LocalPostgres(state_dir=tmp_path / "postgres", port=free_port())
    simulator = SimulatorProcess(
        host="127.0.0.1",
        port=free_port(),
        client="bench",
        client_key="key",
        records_per_day=1000,
        log_file=tmp_path / "simulator.log",
    )

    figures = airflow_overhead.measure(server, simulator, tmp_path, date(2026, 3, 2))

    assert figures["measured"] is False
    assert figures["why"].startswith("OperationalError: ")
    assert not (tmp_path / "airflow").exists()
