-- What the volume check compares a date with: the judged counts (fetched less boundary copies)
-- of the latest earlier dates on record. Only dates whose figures cover an interval as long as
-- this one (a test-mode hour is compared with hours, never with whole days), and never a date
-- the operator declared quiet, whose low count would drag the baseline down.
SELECT s.fetched - s.boundary_copies
FROM learning_platform.daily_stats AS s
WHERE s.stats_date < %(day)s
  AND s.interval_end - s.interval_start = %(end)s::timestamptz - %(start)s::timestamptz
  AND s.stats_date <> ALL (%(quiet_days)s::date[])
ORDER BY s.stats_date DESC
LIMIT %(history_days)s
