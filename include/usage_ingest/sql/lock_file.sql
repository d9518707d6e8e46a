-- Locked: two attempts at finishing the same file mark it done once.
SELECT state FROM usage_ingest.files WHERE file_id = %(file_id)s FOR UPDATE
