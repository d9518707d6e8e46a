COPY csv_import.rejects (run_id, file_id, chunk, line, column_name, reason, raw, detail) FROM STDIN
