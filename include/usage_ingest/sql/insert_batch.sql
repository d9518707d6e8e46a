-- The checkpoint log's row; its key refuses a second commit of the same part of the range.
INSERT INTO usage_ingest.batches (
    file_id, range_no, start_offset, end_offset, first_line, lines_applied, lines_quarantined,
    consumers, committed_by
)
VALUES (
    %(file_id)s, %(range_no)s, %(start)s, %(end)s, %(first_line)s, %(lines_applied)s,
    %(lines_quarantined)s, %(consumers)s, %(committed_by)s
)
