-- A chunk's staged rows are its file's rows within the lines its previous attempt recorded.
DELETE FROM {staging}
WHERE _source_file_id = %(file_id)s AND _source_line BETWEEN %(first_line)s AND %(last_line)s
