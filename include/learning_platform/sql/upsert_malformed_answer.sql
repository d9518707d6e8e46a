-- The window's latest malformed answer replaces the one kept before.
INSERT INTO learning_platform.malformed_answers
    (window_start, window_end, dag_run_id, error, body_bytes, body_head, broken_at, body_at_break)
VALUES
    (%(start)s, %(end)s, %(dag_run_id)s, %(error)s, %(body_bytes)s, %(body_head)s, %(broken_at)s,
     %(body_at_break)s)
ON CONFLICT (window_start, window_end) DO UPDATE SET
    dag_run_id    = excluded.dag_run_id,
    received_at   = excluded.received_at,
    error         = excluded.error,
    body_bytes    = excluded.body_bytes,
    body_head     = excluded.body_head,
    broken_at     = excluded.broken_at,
    body_at_break = excluded.body_at_break
