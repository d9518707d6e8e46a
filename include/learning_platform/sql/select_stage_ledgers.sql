-- The interval's landing and the verdict validate staged, if any (NULLs when it staged none).
SELECT l.landing_id, l.records, s.landing_id, s.valid, s.flagged, s.rejected, s.boundary_copies
FROM learning_platform.landing_batches AS l
LEFT JOIN learning_platform.staging_batches AS s
       ON s.interval_start = l.interval_start AND s.interval_end = l.interval_end
WHERE l.interval_start = %(start)s AND l.interval_end = %(end)s
