-- Judges the next unjudged profiles of a run and queues the in-range ones, in one statement (and
-- so one transaction with its caller's COMMIT). SKIP LOCKED lets several processors share a run:
-- each takes profiles no other holds, and a profile judged by a committed transaction no longer
-- matches "judged_at IS NULL", so every profile is judged once.
-- Age is completed years on the run's reference date; PostgreSQL's age() counts a 29 February
-- birthday a year older on 1 March in common years, as include.profile_relay.profiles.age_on does.
WITH run AS (
    SELECT reference_date, age_min, age_max FROM profile_relay.runs WHERE run_id = %(run_id)s
),
claimed AS (
    SELECT p.seq, p.birthdate
    FROM profile_relay.profiles AS p
    WHERE p.run_id = %(run_id)s AND p.judged_at IS NULL
    ORDER BY p.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
judged AS (
    UPDATE profile_relay.profiles AS p
    SET age = aged.age,
        in_range = aged.age BETWEEN run.age_min AND run.age_max,
        judged_at = clock_timestamp()
    FROM claimed
    CROSS JOIN run
    CROSS JOIN LATERAL (
        SELECT extract(YEAR FROM age(run.reference_date, claimed.birthdate))::integer AS age
    ) AS aged
    WHERE p.run_id = %(run_id)s AND p.seq = claimed.seq
    RETURNING p.seq, p.in_range
),
queued AS (
    INSERT INTO profile_relay.outbox (run_id, seq)
    SELECT %(run_id)s, seq FROM judged WHERE in_range
    ON CONFLICT (run_id, seq) DO NOTHING
    RETURNING seq
)
SELECT (SELECT count(*) FROM judged) AS judged,
       (SELECT count(*) FROM queued) AS queued,
       (SELECT max(seq) FROM judged) AS last_seq
