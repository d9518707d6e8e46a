-- After a replace, the target holds no rows of the files its drop did not contain.
UPDATE csv_import.files SET status = 'removed', rows_imported = 0
WHERE target_schema = %(target_schema)s AND target_table = %(target_table)s AND status = 'imported'
  AND id NOT IN (SELECT file_id FROM csv_import.run_files WHERE run_id = %(run_id)s)
