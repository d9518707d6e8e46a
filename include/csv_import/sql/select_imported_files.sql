-- Files whose current content (same fingerprint) the target already holds: append skips them.
SELECT f.url, f.member, f.fingerprint
FROM csv_import.files AS f
WHERE f.target_schema = %(target_schema)s AND f.target_table = %(target_table)s AND f.status = 'imported'
