-- The generator stores profiles in seq order from one writer, so what is stored is 1..max(seq)
-- and the next profile to make is the one after it (the primary key answers from its index).
SELECT coalesce(max(seq), 0) + 1 FROM profile_relay.profiles WHERE run_id = %(run_id)s
