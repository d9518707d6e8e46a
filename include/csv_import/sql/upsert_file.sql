-- The ledger row of a source file for this target, created the first time any run sees it.
INSERT INTO csv_import.files (target_schema, target_table, url, member)
VALUES (%(target_schema)s, %(target_table)s, %(url)s, %(member)s)
ON CONFLICT (target_schema, target_table, url, member) DO UPDATE SET url = EXCLUDED.url
RETURNING id
