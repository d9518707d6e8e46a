-- Only a done file is disposed of: a file moved away before its usage was all in would be lost.
UPDATE usage_ingest.files
SET disposed_to = %(disposed_to)s
WHERE file_id = %(file_id)s AND state = 'done'
RETURNING file_id
