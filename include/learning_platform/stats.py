"""Stage 4: the day's statistics, computed in SQL from what ``load`` published.

The day's attempts are read once, into one row per course and student, and every figure is a
sum over those rows. One transaction replaces the date's figures, its per-course breakdown and its quarantine
counts, and drops any quality verdict on the previous figures: rerunning a date leaves the
same rows, and a failure leaves the previous ones.
"""

from __future__ import annotations

import logging

import psycopg

from include.common.failures import PermanentFailure
from include.common.intervals import Interval
from include.learning_platform.warehouse import interval_params, lock_day, sql

log = logging.getLogger(__name__)


class NothingPublished(PermanentFailure):
    """No load has published the interval: there is nothing to compute statistics from."""


def compute_daily_stats(conn: psycopg.Connection, interval: Interval, *, dag_run_id: str) -> None:
    """Replace the statistics of ``interval.day`` with figures computed from ``interval``."""
    params = interval_params(interval, day=interval.day, dag_run_id=dag_run_id)
    with conn.transaction(), conn.cursor() as cursor:
        lock_day(cursor, interval)
        # The day's (course, student) pairs take ~20 MB at a million attempts: with the default
        # 4 MB the planner sorts the million rows on disk instead of grouping them in memory.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(sql("create_day_course_students"), params)
        cursor.execute(sql("upsert_daily_stats"), params)
        if cursor.fetchone() is None:
            raise NothingPublished(
                f"{interval}: no load has published this interval; "
                "clear this run from `load` (Clear on the load task, with downstream tasks)"
            )
        cursor.execute(sql("delete_daily_details"), params)
        cursor.execute(sql("insert_daily_course_stats"), params)
        courses = cursor.rowcount
        cursor.execute(sql("insert_daily_quarantine_reasons"), params)
        # Not left to ON COMMIT: a caller's outer transaction may compute several days.
        cursor.execute("DROP TABLE day_course_students")
    log.info("compute_stats %s: figures of %s replaced (%d courses)", interval, interval.day, courses)
