-- A run in time: the gaps between the generator's ticks (median, 95th percentile, max, in
-- seconds), the delay from a profile's tick to its delivery (median), and the first delivery
-- against the first and last ticks (a first delivery before the last tick: the stages overlapped).
WITH ticks AS (
    SELECT ticked_at,
           extract(EPOCH FROM ticked_at - lag(ticked_at) OVER (ORDER BY seq))::float8 AS gap
    FROM profile_relay.profiles
    WHERE run_id = %(run_id)s
),
lags AS (
    SELECT extract(EPOCH FROM d.sent_at - p.ticked_at)::float8 AS lag
    FROM profile_relay.deliveries AS d
    JOIN profile_relay.profiles AS p USING (run_id, seq)
    WHERE d.run_id = %(run_id)s
)
SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) FROM ticks) AS tick_median,
       (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY gap) FROM ticks) AS tick_p95,
       (SELECT max(gap) FROM ticks) AS tick_max,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) FROM lags) AS lag_median,
       (SELECT min(ticked_at) FROM ticks) AS first_tick,
       (SELECT max(ticked_at) FROM ticks) AS last_tick,
       (SELECT min(sent_at) FROM profile_relay.deliveries WHERE run_id = %(run_id)s) AS first_delivery
