-- How regular the generator's ticks were: the gaps between consecutive ticks of a run, in seconds.
SELECT count(gap) AS gaps,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap,
       min(gap) AS min_gap,
       max(gap) AS max_gap
FROM (
    SELECT extract(EPOCH FROM ticked_at - lag(ticked_at) OVER (ORDER BY seq))::float8 AS gap
    FROM profile_relay.profiles
    WHERE run_id = %(run_id)s
) AS gaps
