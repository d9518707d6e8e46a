-- The landing (raw_attempts) and the staging (staged_attempts, staged_rejections) partitioned by
-- the UTC day of window_start, so that retention removes a day by dropping its partitions: no
-- matter the day's size, and no dead rows left behind, where a DELETE of a day's million rows
-- writes each of them to the WAL and leaves the table as large as before until VACUUM.
--
-- 1. One partition per UTC day, named <table>_YYYYMMDD, FOR VALUES FROM (the day's 00:00 UTC)
--    TO (the next day's): a window starting at exactly midnight belongs to the day it starts.
--    No default partition: a row of a day without its partition is an error, where a catch-all
--    would take it silently and make every new partition scan it. The writers create a day's
--    partitions before writing it (include/learning_platform/partitions.py).
--    Rows already landed are moved into partitions of their day here, and the primary key
--    (window_start, position) is built once they are in. This rewrites the landing and staging
--    once, in the migrate_schema task of the first run after the upgrade (landing and staging take
--    117 MB a day at 100k attempts: docs/PERFORMANCE.md): upgrade at a quiet time.
ALTER TABLE learning_platform.raw_attempts RENAME TO raw_attempts_unpartitioned;
ALTER TABLE learning_platform.staged_attempts RENAME TO staged_attempts_unpartitioned;
ALTER TABLE learning_platform.staged_rejections RENAME TO staged_rejections_unpartitioned;

CREATE TABLE learning_platform.raw_attempts
    (LIKE learning_platform.raw_attempts_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (window_start);
CREATE TABLE learning_platform.staged_attempts
    (LIKE learning_platform.staged_attempts_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (window_start);
CREATE TABLE learning_platform.staged_rejections
    (LIKE learning_platform.staged_rejections_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (window_start);

-- Names and bounds are spelled out with to_char, never with a date's or a timestamp's text, which
-- would follow the session's DateStyle and TimeZone.
DO $$
DECLARE
    stage_table text;
    day date;
BEGIN
    FOREACH stage_table IN ARRAY ARRAY['raw_attempts', 'staged_attempts', 'staged_rejections'] LOOP
        FOR day IN EXECUTE
            'SELECT DISTINCT (window_start AT TIME ZONE ''UTC'')::date FROM learning_platform.'
            || quote_ident(stage_table || '_unpartitioned')
        LOOP
            EXECUTE 'CREATE TABLE learning_platform.'
                || quote_ident(stage_table || '_' || to_char(day, 'YYYYMMDD'))
                || ' PARTITION OF learning_platform.' || quote_ident(stage_table)
                || ' FOR VALUES FROM (' || quote_literal(to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00')
                || ') TO (' || quote_literal(to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00') || ')';
        END LOOP;
        EXECUTE 'INSERT INTO learning_platform.' || quote_ident(stage_table)
            || ' SELECT * FROM learning_platform.' || quote_ident(stage_table || '_unpartitioned');
        EXECUTE 'DROP TABLE learning_platform.' || quote_ident(stage_table || '_unpartitioned');
        EXECUTE 'ALTER TABLE learning_platform.' || quote_ident(stage_table)
            || ' ADD PRIMARY KEY (window_start, position)';
    END LOOP;
END
$$;

-- 2. load_batches names the landing whose verdict load published. Retention keeps a landing until
--    then: a day is published when every landing of it is the one load published (see
--    include/learning_platform/landing_retention.py). Counts or times cannot say it: a new landing
--    may hold as many records as the old one, and now() is when a transaction began, not when it
--    got the day's lock.
ALTER TABLE learning_platform.load_batches ADD COLUMN landing_id uuid;

--    Rows of earlier releases: the interval's current landing was published when load ran after
--    it was landed and after the verdict on it was staged (load publishes only the verdict on the
--    current landing); ledger rows migration 0004 wrote for a published interval were written in
--    one transaction (landed_at = staged_at) and describe it. Any other row keeps NULL: its day
--    counts as not published, and its landing is kept until the day is run again. When in doubt,
--    keep.
UPDATE learning_platform.load_batches AS b
SET landing_id = l.landing_id
FROM learning_platform.landing_batches AS l
JOIN learning_platform.staging_batches AS s
  ON s.interval_start = l.interval_start AND s.interval_end = l.interval_end AND s.landing_id = l.landing_id
WHERE l.interval_start = b.interval_start
  AND l.interval_end = b.interval_end
  AND (
      (l.landed_at <= b.loaded_at AND s.staged_at <= b.loaded_at)
      OR (l.landed_at = s.staged_at AND l.dag_run_id = b.dag_run_id)
  );
