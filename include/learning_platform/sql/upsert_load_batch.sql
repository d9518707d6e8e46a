-- The interval's load, naming the landing it published. The ledger rows of other intervals it
-- overlaps go: their attempts and quarantine in this interval were just replaced.
WITH overlapped AS (
    DELETE FROM learning_platform.load_batches
    WHERE interval_start < %(end)s AND interval_end > %(start)s AND interval_start <> %(start)s
)
INSERT INTO learning_platform.load_batches (
    interval_start, interval_end, landing_id, fetched, loaded, quarantined, flagged, boundary_copies,
    dag_run_id
)
VALUES (
    %(start)s, %(end)s, %(landing_id)s, %(fetched)s, %(loaded)s, %(quarantined)s, %(flagged)s,
    %(boundary_copies)s, %(dag_run_id)s
)
ON CONFLICT (interval_start) DO UPDATE SET
    interval_end    = excluded.interval_end,
    landing_id      = excluded.landing_id,
    fetched         = excluded.fetched,
    loaded          = excluded.loaded,
    quarantined     = excluded.quarantined,
    flagged         = excluded.flagged,
    boundary_copies = excluded.boundary_copies,
    dag_run_id      = excluded.dag_run_id,
    loaded_at       = excluded.loaded_at
