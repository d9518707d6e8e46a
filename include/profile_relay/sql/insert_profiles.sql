-- One batch of generated profiles in one statement. A profile already stored (a retried batch
-- whose COMMIT did reach the server, or a zombie try of the generator) is the same person by
-- construction, so the first copy stays.
INSERT INTO profile_relay.profiles (run_id, seq, ticked_at, birthdate, profile)
SELECT %(run_id)s, batch.seq, batch.ticked_at, batch.birthdate, batch.profile::jsonb
FROM unnest(
    %(seqs)s::integer[], %(ticked_at)s::timestamptz[], %(birthdates)s::date[], %(profiles)s::text[]
) AS batch (seq, ticked_at, birthdate, profile)
ON CONFLICT (run_id, seq) DO NOTHING
