-- What extract landed and what validate made of it, for one interval: one pass over each table,
-- each read through its primary key's range (window_start leads it).
SELECT
    (SELECT count(*) FROM learning_platform.raw_attempts
      WHERE window_start >= %(start)s AND window_start < %(end)s) AS fetched,
    staged.valid,
    staged.flagged,
    (SELECT count(*) FROM learning_platform.staged_rejections
      WHERE window_start >= %(start)s AND window_start < %(end)s) AS rejected
FROM (
    SELECT count(*) AS valid, count(*) FILTER (WHERE defects <> '{}') AS flagged
    FROM learning_platform.staged_attempts
    WHERE window_start >= %(start)s AND window_start < %(end)s
) AS staged
