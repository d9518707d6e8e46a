-- The day's statistics and what the report shows with them. `compute_stats` replaces a date's
-- rows in one transaction; `check_quality` records its verdict on those very figures.

-- One row per report date: the original script's figures and the counts they came from.
CREATE TABLE learning_platform.daily_stats (
    stats_date                      date        PRIMARY KEY,
    interval_start                  timestamptz NOT NULL,  -- the interval the figures cover
    interval_end                    timestamptz NOT NULL,  -- (shorter than the day in test mode)
    fetched                         integer     NOT NULL,
    loaded                          integer     NOT NULL,
    quarantined                     integer     NOT NULL,
    flagged                         integer     NOT NULL,
    unique_users                    integer     NOT NULL,
    runs                            integer     NOT NULL,
    submits                         integer     NOT NULL,
    successful_submits              integer     NOT NULL,
    -- NULL when the denominator is zero: "no data" is not "nobody succeeded".
    success_share                   numeric,
    avg_submits_per_user            numeric,
    avg_successful_submits_per_user numeric,
    dag_run_id                      text        NOT NULL,
    computed_at                     timestamptz NOT NULL DEFAULT now(),
    -- runs + submits = loaded is not a constraint but a quality check: a mismatch is reported.
    CHECK (successful_submits <= submits),
    CHECK (fetched = loaded + quarantined)
);

-- The same figures per course (the course id opens `lis_result_sourcedid`); NULL: no course named.
CREATE TABLE learning_platform.daily_course_stats (
    stats_date         date    NOT NULL REFERENCES learning_platform.daily_stats ON DELETE CASCADE,
    course_id          text,
    unique_users       integer NOT NULL,
    runs               integer NOT NULL,
    submits            integer NOT NULL,
    successful_submits integer NOT NULL,
    success_share      numeric,
    CONSTRAINT daily_course_stats_unique UNIQUE NULLS NOT DISTINCT (stats_date, course_id)
);

-- Quarantined records of the day per reason (a record with two reasons counts under both).
CREATE TABLE learning_platform.daily_quarantine_reasons (
    stats_date date    NOT NULL REFERENCES learning_platform.daily_stats ON DELETE CASCADE,
    reason     text    NOT NULL,
    records    integer NOT NULL,
    PRIMARY KEY (stats_date, reason)
);

-- The data-quality verdict on the date's current figures. Recomputing the figures deletes it,
-- so a report never shows a verdict on figures that have since changed.
CREATE TABLE learning_platform.daily_quality_checks (
    stats_date date        NOT NULL REFERENCES learning_platform.daily_stats ON DELETE CASCADE,
    check_name text        NOT NULL,
    passed     boolean     NOT NULL,
    observed   text        NOT NULL,
    expected   text        NOT NULL,
    dag_run_id text        NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stats_date, check_name)
);
