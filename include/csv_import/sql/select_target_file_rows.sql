SELECT _source_file_id, count(*) FROM {target} WHERE _source_file_id = ANY(%(file_ids)s) GROUP BY 1
