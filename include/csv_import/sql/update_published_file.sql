UPDATE csv_import.files SET
    status = 'imported',
    size = %(size)s,
    fingerprint = %(fingerprint)s,
    rows_imported = %(rows)s,
    rows_rejected = %(rejects)s,
    lines = %(rows)s + %(rejects)s,
    bytes = %(size)s,
    imported_by_run = %(run_id)s,
    imported_at = now()
WHERE id = %(file_id)s
