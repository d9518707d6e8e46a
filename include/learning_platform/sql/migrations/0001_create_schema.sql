-- The learning platform pipeline's tables. Each run owns one UTC interval and replaces it
-- in every table it writes, so reruns and backfills never add rows.

-- Landing zone: every record exactly as the API returned it, with the window it was asked for.
CREATE TABLE learning_platform.raw_attempts (
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    position     integer     NOT NULL,  -- index of the record in the window's JSON array
    record       text        NOT NULL,  -- the record as JSON text (text, not jsonb: it may hold \u0000)
    dag_run_id   text        NOT NULL,
    extracted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, position)
);

-- Validation output, waiting for `load` to publish it atomically.
CREATE TABLE learning_platform.staged_attempts (
    window_start            timestamptz NOT NULL,
    position                integer     NOT NULL,
    user_id                 text        NOT NULL,
    oauth_consumer_key      text,
    lis_result_sourcedid    text,
    lis_outcome_service_url text,
    is_correct              boolean,
    attempt_type            text        NOT NULL,
    created_at              timestamptz NOT NULL,
    defects                 text[]      NOT NULL,
    PRIMARY KEY (window_start, position)
);

CREATE TABLE learning_platform.staged_rejections (
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    position     integer     NOT NULL,
    record       text        NOT NULL,
    reasons      text[]      NOT NULL,
    PRIMARY KEY (window_start, position)
);

-- The warehouse: one row per valid attempt.
CREATE TABLE learning_platform.attempts (
    attempt_id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id                 text        NOT NULL CHECK (char_length(user_id) = 32),
    oauth_consumer_key      text,
    lis_result_sourcedid    text,
    lis_outcome_service_url text,
    is_correct              boolean,
    attempt_type            text        NOT NULL CHECK (attempt_type IN ('run', 'submit')),
    created_at              timestamptz NOT NULL,
    defects                 text[]      NOT NULL DEFAULT '{}',  -- flaws that did not block loading
    -- lineage: where the row came from and which run put it here
    source_window_start     timestamptz NOT NULL,
    source_position         integer     NOT NULL,
    dag_run_id              text        NOT NULL,
    loaded_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attempts_is_correct_matches_type CHECK ((attempt_type = 'run') = (is_correct IS NULL)),
    CONSTRAINT attempts_source_unique UNIQUE (source_window_start, source_position)
);
CREATE INDEX attempts_created_at_idx ON learning_platform.attempts (created_at);

-- Quarantine: every rejected record, verbatim, with all its reasons.
CREATE TABLE learning_platform.quarantined_attempts (
    quarantine_id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record              text        NOT NULL,
    reasons             text[]      NOT NULL CHECK (cardinality(reasons) > 0),
    source_window_start timestamptz NOT NULL,
    source_window_end   timestamptz NOT NULL,
    source_position     integer     NOT NULL,
    dag_run_id          text        NOT NULL,
    quarantined_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quarantined_source_unique UNIQUE (source_window_start, source_position)
);

-- One row per interval published: the counts a reader can reconcile (fetched = loaded + quarantined).
CREATE TABLE learning_platform.load_batches (
    interval_start timestamptz PRIMARY KEY,
    interval_end   timestamptz NOT NULL,
    fetched        integer     NOT NULL,
    loaded         integer     NOT NULL,
    quarantined    integer     NOT NULL,
    flagged        integer     NOT NULL,  -- loaded rows that carry defects
    dag_run_id     text        NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (fetched = loaded + quarantined)
);
