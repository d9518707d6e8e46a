UPDATE learning_platform.report_emails
SET sent_at = now()
WHERE message_id = %(message_id)s
RETURNING sent_at
