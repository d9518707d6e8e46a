-- The landing and staging ledger rows of the day [start, end), whose rows retention dropped.
WITH staging AS (
    DELETE FROM learning_platform.staging_batches
    WHERE interval_start >= %(start)s AND interval_start < %(end)s
)
DELETE FROM learning_platform.landing_batches
WHERE interval_start >= %(start)s AND interval_start < %(end)s
