INSERT INTO learning_platform.load_batches (
    interval_start, interval_end, landing_id, fetched, loaded, quarantined, flagged, dag_run_id
)
VALUES (
    %(start)s, %(end)s, %(landing_id)s, %(fetched)s, %(loaded)s, %(quarantined)s, %(flagged)s, %(dag_run_id)s
)
ON CONFLICT (interval_start) DO UPDATE SET
    interval_end = excluded.interval_end,
    landing_id   = excluded.landing_id,
    fetched      = excluded.fetched,
    loaded       = excluded.loaded,
    quarantined  = excluded.quarantined,
    flagged      = excluded.flagged,
    dag_run_id   = excluded.dag_run_id,
    loaded_at    = excluded.loaded_at
