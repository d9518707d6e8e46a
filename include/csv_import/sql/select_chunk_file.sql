SELECT r.file_id, r.columns, r.delimiter
FROM csv_import.run_files AS r
JOIN csv_import.files AS f ON f.id = r.file_id
WHERE r.run_id = %(run_id)s AND f.url = %(url)s AND f.member IS NOT DISTINCT FROM %(member)s
