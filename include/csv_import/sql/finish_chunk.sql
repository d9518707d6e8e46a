UPDATE csv_import.chunks SET
    start_byte = %(start)s,
    end_byte = %(end)s,
    first_line = %(first_line)s,
    fingerprint = %(fingerprint)s,
    rows = %(rows)s,
    rejects = %(rejects)s,
    last_line = %(last_line)s,
    done_at = now()
WHERE run_id = %(run_id)s AND file_id = %(file_id)s AND number = %(number)s
