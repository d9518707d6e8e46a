DELETE FROM csv_import.run_columns WHERE run_id = %(run_id)s
