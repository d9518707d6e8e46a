SELECT r.file_id, f.url, f.member, r.size, r.fingerprint, r.delimiter, r.quotechar, r.escapechar,
       r.encoding, r.header, r.columns, r.rejected_reason, r.rejected_detail, r.whole_file_reason,
       r.outcome, r.outcome_detail
FROM csv_import.run_files AS r
JOIN csv_import.files AS f ON f.id = r.file_id
WHERE r.run_id = %(run_id)s
ORDER BY f.url, f.member NULLS FIRST
