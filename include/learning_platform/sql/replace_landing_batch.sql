-- The interval's new landing (with a new landing_id). The ledger rows of other intervals it
-- overlaps go: their records in this interval were just deleted, so they no longer describe
-- a landing.
WITH overlapped AS (
    DELETE FROM learning_platform.landing_batches
    WHERE interval_start < %(end)s AND interval_end > %(start)s AND interval_start <> %(start)s
)
INSERT INTO learning_platform.landing_batches (interval_start, interval_end, records, dag_run_id)
VALUES (%(start)s, %(end)s, %(records)s, %(dag_run_id)s)
ON CONFLICT (interval_start) DO UPDATE SET
    interval_end = excluded.interval_end,
    landing_id   = excluded.landing_id,
    records      = excluded.records,
    dag_run_id   = excluded.dag_run_id,
    landed_at    = excluded.landed_at
