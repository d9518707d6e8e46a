-- The checkpoint moves past the batch in the transaction that added the batch's sums.
UPDATE usage_ingest.ranges
SET committed_offset = %(end)s,
    next_line = %(next_line)s,
    lines_applied = lines_applied + %(lines_applied)s,
    lines_quarantined = lines_quarantined + %(lines_quarantined)s,
    batches = batches + 1
WHERE file_id = %(file_id)s AND range_no = %(range_no)s
