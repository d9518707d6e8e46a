DELETE FROM csv_import.rejects
WHERE run_id = %(run_id)s AND file_id = %(file_id)s AND chunk = %(number)s
