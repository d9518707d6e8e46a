SELECT id, dag_run_id, target_schema, target_table, mode, source, published_at, publish_method, publish_note
FROM csv_import.runs
WHERE id = %(run_id)s
