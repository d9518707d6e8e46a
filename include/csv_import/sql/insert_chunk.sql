-- The chunk's ledger row, in case the plan was not recorded (a file imported whole).
INSERT INTO csv_import.chunks (run_id, file_id, number, start_byte, end_byte, first_line)
VALUES (%(run_id)s, %(file_id)s, %(number)s, %(start)s, %(end)s, %(first_line)s)
ON CONFLICT (run_id, file_id, number) DO NOTHING
