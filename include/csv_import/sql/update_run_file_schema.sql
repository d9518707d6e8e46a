UPDATE csv_import.run_files
SET delimiter = %(delimiter)s,
    quotechar = %(quotechar)s,
    escapechar = %(escapechar)s,
    encoding = %(encoding)s,
    header = %(header)s,
    columns = %(columns)s,
    rejected_reason = %(rejected_reason)s,
    rejected_detail = %(rejected_detail)s
WHERE run_id = %(run_id)s AND file_id = %(file_id)s
