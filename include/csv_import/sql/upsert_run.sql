-- A retried or cleared Airflow run finds its own row again (the no-op update makes RETURNING see it).
INSERT INTO csv_import.runs (dag_run_id, target_schema, target_table, mode, source)
VALUES (%(dag_run_id)s, %(target_schema)s, %(target_table)s, %(mode)s, %(source)s)
ON CONFLICT (dag_run_id, target_schema, target_table)
DO UPDATE SET mode = EXCLUDED.mode, source = EXCLUDED.source
RETURNING id
