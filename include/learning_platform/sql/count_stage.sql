-- What extract landed and what validate made of it, for one interval.
SELECT
    (SELECT count(*) FROM learning_platform.raw_attempts
      WHERE window_start >= %(start)s AND window_start < %(end)s) AS fetched,
    (SELECT count(*) FROM learning_platform.staged_attempts
      WHERE window_start >= %(start)s AND window_start < %(end)s) AS valid,
    (SELECT count(*) FROM learning_platform.staged_attempts
      WHERE window_start >= %(start)s AND window_start < %(end)s AND defects <> '{}') AS flagged,
    (SELECT count(*) FROM learning_platform.staged_rejections
      WHERE window_start >= %(start)s AND window_start < %(end)s) AS rejected
