-- A changed file's old rows, found by the lineage they were imported with.
DELETE FROM {target} WHERE _source_file_id = ANY(%(file_ids)s)
