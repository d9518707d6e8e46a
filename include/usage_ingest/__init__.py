"""``usage_files_ingest``: finished usage files → per-consumer totals and hourly usage, exactly once."""
