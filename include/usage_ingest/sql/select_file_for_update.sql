-- Locked: two runs deciding about the same known file decide one after the other.
SELECT file_id, state, claimed_by, lease_until >= now() AS lease_live, disposed_to
FROM usage_ingest.files
WHERE name = %(name)s AND sha256 = %(sha256)s
FOR UPDATE
