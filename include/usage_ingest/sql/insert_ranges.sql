-- A new file's ranges, all in one statement; each checkpoint starts at its range's start.
INSERT INTO usage_ingest.ranges (
    file_id, range_no, start_offset, end_offset, first_line, lines, committed_offset, next_line
)
SELECT %(file_id)s, r.range_no, r.start_offset, r.end_offset, r.first_line, r.lines, r.start_offset, r.first_line
FROM unnest(
    %(range_nos)s::integer[], %(starts)s::bigint[], %(ends)s::bigint[], %(first_lines)s::bigint[],
    %(lines)s::bigint[]
) AS r (range_no, start_offset, end_offset, first_line, lines)
