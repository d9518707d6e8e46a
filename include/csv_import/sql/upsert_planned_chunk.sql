-- A planned chunk; a chunk already imported keeps its ledger (a replanned file is a new run's).
INSERT INTO csv_import.chunks (run_id, file_id, number, start_byte, end_byte, first_line)
VALUES (%(run_id)s, %(file_id)s, %(number)s, %(start)s, %(end)s, %(first_line)s)
ON CONFLICT (run_id, file_id, number) DO UPDATE SET
    start_byte = EXCLUDED.start_byte, end_byte = EXCLUDED.end_byte, first_line = EXCLUDED.first_line
WHERE csv_import.chunks.done_at IS NULL
