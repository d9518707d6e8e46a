-- Compare-and-set before the content goes out: only the try whose message the row holds, and
-- only if nothing went out yet. No row: another try took the row over; send nothing.
UPDATE learning_platform.report_emails
SET handed_over_at = now()
WHERE message_id = %(message_id)s AND handed_over_at IS NULL
RETURNING handed_over_at
