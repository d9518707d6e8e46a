-- Validate's verdict on one landing. The ledger rows of other intervals it overlaps go: their
-- staged rows in this interval were just deleted.
WITH overlapped AS (
    DELETE FROM learning_platform.staging_batches
    WHERE interval_start < %(end)s AND interval_end > %(start)s AND interval_start <> %(start)s
)
INSERT INTO learning_platform.staging_batches (
    interval_start, interval_end, landing_id, checked, valid, flagged, rejected, boundary_copies
)
VALUES (
    %(start)s, %(end)s, %(landing_id)s, %(checked)s, %(valid)s, %(flagged)s, %(rejected)s,
    %(boundary_copies)s
)
ON CONFLICT (interval_start) DO UPDATE SET
    interval_end = excluded.interval_end,
    landing_id   = excluded.landing_id,
    checked      = excluded.checked,
    valid        = excluded.valid,
    flagged      = excluded.flagged,
    rejected     = excluded.rejected,
    boundary_copies = excluded.boundary_copies,
    staged_at    = excluded.staged_at
