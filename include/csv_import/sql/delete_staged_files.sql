-- Rows of files publish skips (already imported by another run) leave the drop before a swap.
DELETE FROM {staging} WHERE _source_file_id = ANY(%(file_ids)s)
