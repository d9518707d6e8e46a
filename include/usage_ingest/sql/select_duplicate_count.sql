SELECT count(*) FROM usage_ingest.duplicate_drops WHERE run_id = %(run_id)s
