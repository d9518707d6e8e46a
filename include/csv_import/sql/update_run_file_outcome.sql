UPDATE csv_import.run_files SET outcome = %(outcome)s, outcome_detail = %(detail)s
WHERE run_id = %(run_id)s AND file_id = %(file_id)s
