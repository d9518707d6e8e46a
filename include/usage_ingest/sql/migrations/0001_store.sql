-- The usage_ingest schema: which files were claimed and by whom, how far each part of a file has
-- been applied (the checkpoint that moves in the same transaction as the sums), the totals and
-- hourly usage those sums go to, the lines set aside, and the duplicates seen. The CHECK
-- constraints make the states the pipeline must never reach unrepresentable: a checkpoint outside
-- its range, lines counted twice, a file done whose lines do not add up.

-- One row per file content under a name: (name, sha256) is a file's identity, so the same content
-- dropped again is found here (a duplicate) and a name reused for other content is a new row.
CREATE TABLE files (
    file_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (name <> ''),
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- The file as planned: a range task refuses a file that no longer matches (its writer was
    -- still writing). numeric: st_dev and st_ino are unsigned 64-bit numbers.
    path text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    mtime timestamptz NOT NULL,
    device numeric(20, 0) NOT NULL CHECK (device >= 0),
    inode numeric(20, 0) NOT NULL CHECK (inode >= 0),
    -- The UTC hour the file's usage is booked to: its mtime when first claimed, kept so that
    -- every retry and takeover books the same hour.
    arrival_hour timestamptz NOT NULL,
    lines bigint NOT NULL CHECK (lines >= 0),
    state text NOT NULL DEFAULT 'claimed' CHECK (state IN ('claimed', 'done')),
    claimed_by text NOT NULL,
    -- Only saves work (a live lease keeps other runs away); correctness rests on the checkpoints.
    lease_until timestamptz NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    -- Set when the file is marked done, from its ranges' counters.
    finished_at timestamptz,
    lines_applied bigint CHECK (lines_applied >= 0),
    lines_quarantined bigint CHECK (lines_quarantined >= 0),
    -- Where the done file went: its archive path, or its marked name.
    disposed_to text,
    UNIQUE (name, sha256),
    CHECK (
        (state = 'claimed' AND finished_at IS NULL AND lines_applied IS NULL AND lines_quarantined IS NULL)
        OR (state = 'done' AND finished_at IS NOT NULL AND lines_applied + lines_quarantined = lines)
    ),
    CHECK (disposed_to IS NULL OR state = 'done')
);

-- The parts of a file, each processed by one mapped task, and each one's checkpoint: lines that
-- start before committed_offset are in the totals, the others are not.
CREATE TABLE ranges (
    file_id bigint NOT NULL REFERENCES files,
    range_no integer NOT NULL CHECK (range_no >= 0),
    start_offset bigint NOT NULL CHECK (start_offset >= 0),
    end_offset bigint NOT NULL CHECK (end_offset >= start_offset),
    first_line bigint NOT NULL CHECK (first_line >= 1),
    lines bigint NOT NULL CHECK (lines >= 0),
    committed_offset bigint NOT NULL CHECK (committed_offset BETWEEN start_offset AND end_offset),
    next_line bigint NOT NULL,
    lines_applied bigint NOT NULL DEFAULT 0 CHECK (lines_applied >= 0),
    lines_quarantined bigint NOT NULL DEFAULT 0 CHECK (lines_quarantined >= 0),
    batches integer NOT NULL DEFAULT 0 CHECK (batches >= 0),
    done boolean GENERATED ALWAYS AS (committed_offset = end_offset) STORED,
    PRIMARY KEY (file_id, range_no),
    -- Every committed line is counted once, as applied or as quarantined ...
    CHECK (next_line = first_line + lines_applied + lines_quarantined),
    -- ... never more lines than the range has, and all of them once the range is done.
    CHECK (lines_applied + lines_quarantined <= lines),
    CHECK (committed_offset < end_offset OR lines_applied + lines_quarantined = lines),
    CHECK (committed_offset > start_offset OR batches = 0)
);

-- The checkpoint log: one row per committed batch, written in the batch's transaction. Its key
-- makes a second commit of the same part of a range impossible, whatever the code above it does.
CREATE TABLE batches (
    file_id bigint NOT NULL,
    range_no integer NOT NULL,
    start_offset bigint NOT NULL CHECK (start_offset >= 0),
    end_offset bigint NOT NULL CHECK (end_offset > start_offset),
    first_line bigint NOT NULL CHECK (first_line >= 1),
    lines_applied bigint NOT NULL CHECK (lines_applied >= 0),
    lines_quarantined bigint NOT NULL CHECK (lines_quarantined >= 0),
    consumers integer NOT NULL CHECK (consumers >= 0),
    committed_at timestamptz NOT NULL DEFAULT now(),
    committed_by text NOT NULL,
    PRIMARY KEY (file_id, range_no, start_offset),
    FOREIGN KEY (file_id, range_no) REFERENCES ranges
);

-- The central totals: what every applied line added, per consumer. bigint arithmetic raises on
-- overflow, so a total is exact or its batch is refused; it never wraps. Every batch updates up
-- to a batch's worth of rows: the free space left in each page lets an update stay on its page
-- (a HOT update, no new index entry), which keeps the upserts' cost and the index's size flat.
CREATE TABLE consumer_totals (
    consumer_id bigint PRIMARY KEY CHECK (consumer_id >= 0),
    amount bigint NOT NULL CHECK (amount >= 0),
    updated_at timestamptz NOT NULL
) WITH (fillfactor = 70);

-- The same sums by the UTC hour the files arrived in: usage over time, per consumer. Updated
-- like the totals by every batch of the hour's files, so it leaves the same room for updates.
CREATE TABLE usage_hourly (
    hour timestamptz NOT NULL,
    consumer_id bigint NOT NULL CHECK (consumer_id >= 0),
    amount bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (hour, consumer_id),
    CHECK (date_part('minute', hour) = 0 AND date_part('second', hour) = 0)
) WITH (fillfactor = 70);

-- The lines that were not applied, and why: one reason per line (include.usage_ingest.model).
CREATE TABLE quarantine (
    file_id bigint NOT NULL REFERENCES files,
    line_number bigint NOT NULL CHECK (line_number >= 1),
    reason text NOT NULL CHECK (
        reason IN (
            'empty', 'not_two_fields', 'consumer_not_integer', 'amount_not_integer', 'negative',
            'out_of_range'
        )
    ),
    -- The line's bytes as read (never decoded), at most RAW_TEXT_LIMIT of them.
    raw bytea NOT NULL CHECK (octet_length(raw) <= 1000),
    range_no integer NOT NULL,
    batch_start bigint NOT NULL,
    PRIMARY KEY (file_id, line_number),
    FOREIGN KEY (file_id, range_no, batch_start) REFERENCES batches
);

-- Files found again after their content was applied: disposed of, never applied twice.
CREATE TABLE duplicate_drops (
    name text NOT NULL,
    sha256 text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    mtime timestamptz NOT NULL,
    file_id bigint NOT NULL REFERENCES files,
    run_id text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    disposed_to text NOT NULL,
    PRIMARY KEY (run_id, name, sha256)
);

CREATE INDEX files_claimed_by ON files (claimed_by);
