UPDATE csv_import.runs SET published_at = now(), publish_method = %(method)s, publish_note = %(note)s
WHERE id = %(run_id)s
