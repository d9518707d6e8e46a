-- The plan's whole_file_reason survives a repeated registration of the same file.
INSERT INTO csv_import.run_files (
    run_id, file_id, size, fingerprint, delimiter, quotechar, encoding, header, columns
) VALUES (
    %(run_id)s, %(file_id)s, %(size)s, %(fingerprint)s, %(delimiter)s, %(quotechar)s, %(encoding)s,
    %(header)s, %(columns)s
)
ON CONFLICT (run_id, file_id) DO UPDATE SET
    size = EXCLUDED.size,
    fingerprint = EXCLUDED.fingerprint,
    delimiter = EXCLUDED.delimiter,
    quotechar = EXCLUDED.quotechar,
    encoding = EXCLUDED.encoding,
    header = EXCLUDED.header,
    columns = EXCLUDED.columns
