-- Claim the warehouse for what the run does, unless a run claimed it before; either way, the
-- purpose it is claimed for (the CTE's insert is invisible to the second SELECT, so exactly one
-- of the two branches has a row).
WITH claimed AS (
    INSERT INTO learning_platform.warehouse_purpose (purpose, claimed_by)
    VALUES (%(purpose)s, %(dag_run_id)s)
    ON CONFLICT (singleton) DO NOTHING
    RETURNING purpose, claimed_by
)
SELECT purpose, claimed_by FROM claimed
UNION ALL
SELECT purpose, claimed_by FROM learning_platform.warehouse_purpose
