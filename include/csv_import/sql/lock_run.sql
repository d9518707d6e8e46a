-- Two attempts at publishing one run (a task thought lost and its retry) take turns here; the
-- second then finds the run published.
SELECT published_at IS NOT NULL FROM csv_import.runs WHERE id = %(run_id)s FOR UPDATE
