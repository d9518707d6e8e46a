-- The csv_import schema: what each run was asked to do, what it imported, and what it rejected.
-- Stages hand work over through these tables (never XCom), each stage writing its rows in the
-- transaction that did the work, so a retry finds exactly what the previous attempt committed.

-- One row per Airflow run and target table. A retried or cleared run finds its row again.
CREATE TABLE runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_run_id text NOT NULL,
    target_schema text NOT NULL,
    target_table text NOT NULL,
    mode text NOT NULL CHECK (mode IN ('append', 'replace')),
    source text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    -- Set by publish, in the transaction that moved the drop into the target.
    published_at timestamptz,
    publish_method text CHECK (publish_method IN ('swap', 'truncate_insert', 'insert_select')),
    publish_note text,
    UNIQUE (dag_run_id, target_schema, target_table)
);

-- The schema inference chose for the run, in the target's column order.
CREATE TABLE run_columns (
    run_id bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
    position integer NOT NULL,
    name text NOT NULL,
    header text NOT NULL,
    type text NOT NULL,
    PRIMARY KEY (run_id, position),
    UNIQUE (run_id, name)
);

-- The file ledger: one row per target table and source file (or zip member), whatever the run.
-- Its id is the _source_file_id of every row the file put in the target. status 'imported'
-- means the target holds the rows of exactly this size and fingerprint, put there by
-- imported_by_run; 'registered' files were seen but never published; 'removed' files were
-- imported once and then replaced away by a 'replace' run whose drop did not contain them.
CREATE TABLE files (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_schema text NOT NULL,
    target_table text NOT NULL,
    url text NOT NULL,
    member text,
    status text NOT NULL DEFAULT 'registered' CHECK (status IN ('registered', 'imported', 'removed')),
    size bigint,
    fingerprint text,
    rows_imported bigint,
    rows_rejected bigint,
    lines bigint,
    bytes bigint,
    imported_by_run bigint REFERENCES runs,
    imported_at timestamptz,
    UNIQUE NULLS NOT DISTINCT (target_schema, target_table, url, member)
);

-- The files of a run as discovery and inference saw them, and what publish decided for each.
CREATE TABLE run_files (
    run_id bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
    file_id bigint NOT NULL REFERENCES files,
    -- As discovery saw the file: the run imports exactly this content or fails.
    size bigint NOT NULL,
    fingerprint text NOT NULL,
    -- How to read the file, from inference; null until then, and for a file rejected whole.
    delimiter text,
    quotechar text,
    escapechar text,
    encoding text,
    header boolean,
    -- The destination columns of the file's fields, in the file's order (Row.values' order).
    columns text[],
    -- A file inference rejected whole (empty, unreadable, header mismatch): why.
    rejected_reason text,
    rejected_detail text,
    -- Why the file is imported as one chunk, when the planner could not split it.
    whole_file_reason text,
    outcome text CHECK (outcome IN ('imported', 'replaced', 'skipped')),
    outcome_detail text,
    PRIMARY KEY (run_id, file_id)
);

-- The chunk ledger: the plan (range, first line) and, once imported, what the chunk held. A
-- chunk's rows in the run's staging table and its row here commit in one transaction, so
-- done_at set means its rows are staged, and done_at null means none are.
CREATE TABLE chunks (
    run_id bigint NOT NULL,
    file_id bigint NOT NULL,
    number integer NOT NULL,
    start_byte bigint NOT NULL,
    end_byte bigint,
    first_line bigint NOT NULL,
    -- The file's fingerprint when the chunk was imported: a chunk of a changed file is redone.
    fingerprint text,
    rows bigint,
    rejects bigint,
    last_line bigint,
    done_at timestamptz,
    PRIMARY KEY (run_id, file_id, number),
    FOREIGN KEY (run_id, file_id) REFERENCES run_files ON DELETE CASCADE
);

-- Every line (line null: a whole file) that was not imported, and why, written by the import of
-- its chunk. The rejects of a file's current rows are those of files.imported_by_run.
CREATE TABLE rejects (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id bigint NOT NULL,
    file_id bigint NOT NULL,
    chunk integer NOT NULL,
    line bigint,
    column_name text,
    reason text NOT NULL,
    raw text NOT NULL CHECK (char_length(raw) <= 2000),
    detail text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (run_id, file_id, chunk) REFERENCES chunks ON DELETE CASCADE
);
CREATE INDEX rejects_of_file ON rejects (file_id, run_id, line);
CREATE INDEX rejects_of_run ON rejects (run_id, reason);
