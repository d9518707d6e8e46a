SELECT interval_start, interval_end, fetched, loaded, quarantined, flagged, boundary_copies, dag_run_id, loaded_at
FROM learning_platform.load_batches
WHERE interval_start = %(start)s
