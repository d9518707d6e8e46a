-- The column_sums schema: one row per request (a DAG run of csv_column_sums), written by its task
-- and read by the REST API. The task id the API hands out is the run's id, so a retried or
-- cleared run rewrites its own row and never adds a second one.
CREATE TABLE results (
    task_id text PRIMARY KEY,
    location text NOT NULL,
    -- 'sums': result holds the columns' sums and counts; 'problem': the file could not be summed
    -- and result holds {code, message} for whoever asked (empty file, no header, not found, ...).
    outcome text NOT NULL CHECK (outcome IN ('sums', 'problem')),
    result jsonb NOT NULL,
    problem_code text GENERATED ALWAYS AS (CASE WHEN outcome = 'problem' THEN result ->> 'code' END) STORED,
    -- What was read: the object's size and version (S3 ETag, or a local file's mtime in ns).
    source_size bigint CHECK (source_size >= 0),
    source_version text,
    rows bigint CHECK (rows >= 0),
    bytes_read bigint CHECK (bytes_read >= 0),
    -- How often a cut S3 download was resumed from the last byte read.
    resumes integer NOT NULL DEFAULT 0 CHECK (resumes >= 0),
    seconds double precision NOT NULL CHECK (seconds >= 0),
    try_number integer NOT NULL CHECK (try_number >= 1),
    computed_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'sums') = (rows IS NOT NULL))
);

CREATE INDEX results_problem_code ON results (problem_code) WHERE problem_code IS NOT NULL;
