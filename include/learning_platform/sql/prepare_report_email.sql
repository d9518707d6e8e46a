-- Record the message about to be sent, taking over a row whose message never left; returns no
-- row when another try of the run has handed its message over in the meantime.
INSERT INTO learning_platform.report_emails AS e (
    report_date, dag_run_id, clear_number, message_id, content_digest, recipients
)
VALUES (%(day)s, %(dag_run_id)s, %(clear_number)s, %(message_id)s, %(content_digest)s, %(recipients)s)
ON CONFLICT (report_date, dag_run_id, clear_number) DO UPDATE SET
    message_id     = excluded.message_id,
    content_digest = excluded.content_digest,
    recipients     = excluded.recipients,
    prepared_at    = excluded.prepared_at
WHERE e.handed_over_at IS NULL
RETURNING message_id
