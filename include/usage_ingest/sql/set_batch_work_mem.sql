-- Enough for the upserts to sort a batch's sums (200k consumers: about 15 MB) in memory rather
-- than on disk; for this transaction only.
SELECT pg_catalog.set_config('work_mem', '64MB', true)
