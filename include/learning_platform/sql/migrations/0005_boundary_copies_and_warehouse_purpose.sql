-- 1. Boundary copies. The API's windows include their end, so a record stamped exactly at a
--    window's end comes back twice: at the end of that window and at the start of the next one,
--    which owns it (our windows are half-open). The copy at the end is no defect of the source
--    and is neither loaded nor quarantined; each stage counts it, so that the account stays exact:
--    every landed record is loaded, quarantined or a boundary copy.
ALTER TABLE learning_platform.staging_batches
    ADD COLUMN boundary_copies integer NOT NULL DEFAULT 0 CHECK (boundary_copies >= 0),
    DROP CONSTRAINT staging_batches_check,
    ADD CONSTRAINT staging_batches_accounted CHECK (checked = valid + rejected + boundary_copies);

ALTER TABLE learning_platform.load_batches
    ADD COLUMN boundary_copies integer NOT NULL DEFAULT 0 CHECK (boundary_copies >= 0),
    DROP CONSTRAINT load_batches_check,
    ADD CONSTRAINT load_batches_accounted CHECK (fetched = loaded + quarantined + boundary_copies);

ALTER TABLE learning_platform.daily_stats
    ADD COLUMN boundary_copies integer NOT NULL DEFAULT 0 CHECK (boundary_copies >= 0),
    DROP CONSTRAINT daily_stats_check1,
    ADD CONSTRAINT daily_stats_accounted CHECK (fetched = loaded + quarantined + boundary_copies);

-- 2. What a warehouse is for: the days (`learning_platform_db`) or test-mode runs
--    (`learning_platform_test_db`). The first run that migrates a warehouse claims it; a run of
--    the other kind is refused, so that test mode can never write into the real days, even when
--    the two connections reach one database under two names. A warehouse that already holds a
--    whole published day is the days' warehouse.
CREATE TABLE learning_platform.warehouse_purpose (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    purpose    text        NOT NULL CHECK (purpose IN ('days', 'test_mode')),
    claimed_by text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO learning_platform.warehouse_purpose (purpose, claimed_by)
SELECT 'days', 'migration 0005'
WHERE EXISTS (
    SELECT FROM learning_platform.load_batches WHERE interval_end - interval_start >= interval '1 day'
);
