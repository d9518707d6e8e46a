COPY learning_platform.raw_attempts (window_start, window_end, position, record, dag_run_id) FROM STDIN (FORMAT BINARY)
