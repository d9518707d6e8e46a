UPDATE csv_import.run_files SET whole_file_reason = %(reason)s
WHERE run_id = %(run_id)s AND file_id = %(file_id)s
