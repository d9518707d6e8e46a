-- The interval's figures from day_course_students (create_day_course_students.sql) and the load
-- ledger, upserted by date. Fails (no row) when no load has published the interval: see
-- compute_stats. A student active in two courses has a row in each: counted once here.
WITH figures AS (
    SELECT
        count(DISTINCT user_id)                AS unique_users,
        coalesce(sum(runs), 0)                 AS runs,
        coalesce(sum(submits), 0)              AS submits,
        coalesce(sum(successful_submits), 0)   AS successful_submits
    FROM day_course_students
)
INSERT INTO learning_platform.daily_stats AS s (
    stats_date, interval_start, interval_end, fetched, loaded, quarantined, flagged, boundary_copies,
    unique_users, runs, submits, successful_submits,
    success_share, avg_submits_per_user, avg_successful_submits_per_user, dag_run_id
)
SELECT
    %(day)s, b.interval_start, b.interval_end, b.fetched, b.loaded, b.quarantined, b.flagged,
    b.boundary_copies,
    f.unique_users, f.runs, f.submits, f.successful_submits,
    f.successful_submits::numeric / NULLIF(f.submits, 0),
    f.submits::numeric / NULLIF(f.unique_users, 0),
    f.successful_submits::numeric / NULLIF(f.unique_users, 0),
    %(dag_run_id)s
FROM learning_platform.load_batches AS b, figures AS f
WHERE b.interval_start = %(start)s AND b.interval_end = %(end)s
ON CONFLICT (stats_date) DO UPDATE SET
    interval_start                  = excluded.interval_start,
    interval_end                    = excluded.interval_end,
    fetched                         = excluded.fetched,
    loaded                          = excluded.loaded,
    quarantined                     = excluded.quarantined,
    flagged                         = excluded.flagged,
    boundary_copies                 = excluded.boundary_copies,
    unique_users                    = excluded.unique_users,
    runs                            = excluded.runs,
    submits                         = excluded.submits,
    successful_submits              = excluded.successful_submits,
    success_share                   = excluded.success_share,
    avg_submits_per_user            = excluded.avg_submits_per_user,
    avg_successful_submits_per_user = excluded.avg_successful_submits_per_user,
    dag_run_id                      = excluded.dag_run_id,
    computed_at                     = excluded.computed_at
RETURNING stats_date
