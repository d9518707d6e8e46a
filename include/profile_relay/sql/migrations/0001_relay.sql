-- The profile_relay schema: the three stages of a run hand profiles over through these tables,
-- never through memory or XCom, so each stage can run on its own worker, crash and resume.
--   generate  -> profiles (one row per generated profile, judged later)
--   process   -> profiles.age / in_range, and outbox (the in-range profiles waiting to be sent)
--   send      -> deliveries (a profile leaves the outbox only in the transaction that records
--                the receiver's acknowledgement)
-- The CHECK constraints make the states the pipeline must never reach unrepresentable.

-- One row per DAG run: what it was triggered with, and when each stage finished. A retried or
-- cleared task finds the same row and resumes; a conflicting second registration is refused.
CREATE TABLE runs (
    run_id text PRIMARY KEY,
    dag_id text NOT NULL,
    count integer NOT NULL CHECK (count >= 1),
    -- Faker's seed for the run: profile n is generated from (seed, n), so any retry regenerates
    -- exactly the profiles a crash lost.
    seed bigint NOT NULL,
    locale text NOT NULL,
    -- Ages are counted on this date (the run's logical date), never the wall clock's.
    reference_date date NOT NULL,
    age_min integer NOT NULL CHECK (age_min >= 0),
    age_max integer NOT NULL CHECK (age_max >= age_min),
    interval_seconds numeric NOT NULL CHECK (interval_seconds >= 0),
    registered_at timestamptz NOT NULL DEFAULT now(),
    generated_at timestamptz,
    processed_at timestamptz,
    sent_at timestamptz,
    -- The stages finish in order: process after generate, send strictly after process.
    CHECK (processed_at IS NULL OR generated_at IS NOT NULL AND processed_at >= generated_at),
    CHECK (sent_at IS NULL OR processed_at IS NOT NULL AND sent_at > processed_at)
);

-- Every generated profile. seq runs 1..count without gaps once the run is generated.
CREATE TABLE profiles (
    run_id text NOT NULL REFERENCES runs ON DELETE CASCADE,
    seq integer NOT NULL CHECK (seq >= 1),
    -- When the generator's tick produced it (not when the row was stored: a store outage delays
    -- the row, never the tick).
    ticked_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    birthdate date NOT NULL,
    profile jsonb NOT NULL,
    -- Set once by process, in the transaction that queues an in-range profile.
    age integer CHECK (age >= 0),
    in_range boolean,
    judged_at timestamptz,
    PRIMARY KEY (run_id, seq),
    CHECK ((judged_at IS NULL) = (age IS NULL) AND (age IS NULL) = (in_range IS NULL))
);

-- What process has not judged yet: the index process's claim walks.
CREATE INDEX profiles_unjudged ON profiles (run_id, seq) WHERE judged_at IS NULL;

-- The processed store: in-range profiles waiting for the receiver. A row is deleted only by the
-- transaction that records its delivery.
CREATE TABLE outbox (
    run_id text NOT NULL,
    seq integer NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Failed sends of this profile so far: it stays here and goes again with the next batch.
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    PRIMARY KEY (run_id, seq),
    FOREIGN KEY (run_id, seq) REFERENCES profiles ON DELETE CASCADE
);

-- Profiles the receiver acknowledged, with the idempotency key it deduplicates on. One row per
-- profile at most: the key makes a second delivery record impossible.
CREATE TABLE deliveries (
    run_id text NOT NULL,
    seq integer NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    -- 'accepted': new to the receiver; 'duplicate': it already had it (an earlier send whose
    -- acknowledgement was lost), so it is delivered once all the same.
    outcome text NOT NULL CHECK (outcome IN ('accepted', 'duplicate')),
    attempts integer NOT NULL CHECK (attempts >= 1),
    queued_at timestamptz NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, seq),
    FOREIGN KEY (run_id, seq) REFERENCES profiles ON DELETE CASCADE
);

-- Every failed send, kept for the run's account (the summary counts them by kind).
CREATE TABLE send_failures (
    run_id text NOT NULL REFERENCES runs ON DELETE CASCADE,
    failed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    profiles integer NOT NULL CHECK (profiles >= 1),
    kind text NOT NULL CHECK (kind <> ''),
    detail text NOT NULL
);
CREATE INDEX send_failures_run ON send_failures (run_id, failed_at);
