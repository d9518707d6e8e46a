COPY usage_ingest.quarantine (file_id, line_number, reason, raw, range_no, batch_start) FROM STDIN
