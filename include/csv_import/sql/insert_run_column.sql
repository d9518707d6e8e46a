INSERT INTO csv_import.run_columns (run_id, position, name, header, type)
VALUES (%(run_id)s, %(position)s, %(name)s, %(header)s, %(type)s)
