-- The run's report email, locked until the preparing transaction ends.
SELECT message_id, content_digest, handed_over_at, sent_at
FROM learning_platform.report_emails
WHERE report_date = %(day)s AND dag_run_id = %(dag_run_id)s AND clear_number = %(clear_number)s
FOR UPDATE
