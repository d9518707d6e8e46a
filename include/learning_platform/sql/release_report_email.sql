-- The server refused the content with an answer of its own: nothing was delivered, a retry may send.
UPDATE learning_platform.report_emails
SET handed_over_at = NULL
WHERE message_id = %(message_id)s AND sent_at IS NULL
