INSERT INTO {target} ({columns})
SELECT {columns} FROM {staging}
WHERE _source_file_id = ANY(%(file_ids)s)
