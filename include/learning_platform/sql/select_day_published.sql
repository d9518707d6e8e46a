-- Whether load has published the day [start, end): it published at least one interval of the day,
-- and every landing of the day is the very landing load published for its interval.
SELECT EXISTS (
           SELECT FROM learning_platform.load_batches AS b
           WHERE b.interval_start >= %(start)s AND b.interval_start < %(end)s
       )
   AND NOT EXISTS (
           SELECT FROM learning_platform.landing_batches AS l
           WHERE l.interval_start < %(end)s AND l.interval_end > %(start)s
             AND NOT EXISTS (
                 SELECT FROM learning_platform.load_batches AS b
                 WHERE b.interval_start = l.interval_start
                   AND b.interval_end = l.interval_end
                   AND b.landing_id = l.landing_id
             )
       )
