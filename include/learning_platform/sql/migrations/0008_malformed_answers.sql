-- What the API sent for a window it answered with malformed JSON on every retry of a try, for
-- an operator to see why (extract's error names the window). Streamed bodies are never held
-- whole, so what is kept is bounded: the body's start (what kind of answer it was: a proxy's
-- page, another encoding) and the text from where reading failed. One row per window, the
-- latest answer; the API client key is masked wherever the answer quoted it.
CREATE TABLE learning_platform.malformed_answers (
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    dag_run_id    text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    error         text        NOT NULL,  -- why the body could not be read
    body_bytes    bigint      NOT NULL,  -- bytes received in all
    body_head     bytea       NOT NULL,  -- the body's first bytes (64 KiB at most)
    broken_at     bigint      NOT NULL,  -- characters of the body before the unreadable part
    body_at_break text        NOT NULL,  -- the body from there (64 Ki characters at most)
    PRIMARY KEY (window_start, window_end),
    CHECK (window_start < window_end)
);
