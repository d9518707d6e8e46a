"""Connection strings from Airflow connections, and the per-day writer lock, on a real server."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import psycopg
import pytest

from devservices.environment import ConnectionSettings
from include.common.intervals import Interval
from include.common.postgres import WarehouseUnavailable, connect, conninfo_from_connection, lock_interval


def test_a_connection_maps_to_libpq_fields_and_passes_only_libpq_extras() -> None:
    connection = ConnectionSettings(
        host="db.example.org",
        port=6432,
        schema="warehouse",
        login="etl",
        password="pa ss'word",
        extra_dejson={"sslmode": "require", "connect_timeout": 3, "unrelated": "x"},
    )
    fields = psycopg.conninfo.conninfo_to_dict(conninfo_from_connection(connection))
    assert fields == {
        "host": "db.example.org",
        "port": "6432",
        "dbname": "warehouse",
        "user": "etl",
        "password": "pa ss'word",
        "sslmode": "require",
        "connect_timeout": "3",
    }


def test_an_unreachable_warehouse_names_the_connection_and_hides_the_password(postgres_server) -> None:
    conninfo = postgres_server.conninfo("postgres").replace("test-password", "wrong-Secret-1")
    with pytest.raises(WarehouseUnavailable, match="'learning_platform_db'") as error:
        connect(conninfo, conn_id="learning_platform_db", application_name="test")
    assert "wrong-Secret-1" not in str(error.value)


def test_writers_of_the_same_day_take_turns_and_other_days_do_not_wait(warehouse_conninfo) -> None:
    day = Interval.for_day(date(2026, 11, 22))
    same_day_test_mode = Interval(day.start, day.start + timedelta(hours=1))
    other_day = Interval.for_day(date(2026, 11, 23))
    with psycopg.connect(warehouse_conninfo) as holder:
        lock_interval(holder.cursor(), "pipeline", day)

        with psycopg.connect(warehouse_conninfo, autocommit=True) as other:
            other.execute("SET lock_timeout = '200ms'")
            lock_interval(other.cursor(), "pipeline", other_day)
            lock_interval(other.cursor(), "another_pipeline", day)
            with pytest.raises(psycopg.errors.LockNotAvailable):
                lock_interval(other.cursor(), "pipeline", same_day_test_mode)

        acquired = threading.Event()

        def wait_for_the_day() -> None:
            with psycopg.connect(warehouse_conninfo) as waiter:
                lock_interval(waiter.cursor(), "pipeline", day)
                acquired.set()

        thread = threading.Thread(target=wait_for_the_day)
        thread.start()
        assert not acquired.wait(0.3)
        holder.rollback()  # the transaction ends, and so does the lock
        thread.join(timeout=10)
        assert acquired.is_set()
